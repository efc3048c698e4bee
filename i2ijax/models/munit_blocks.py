"""Building blocks shared by MUNIT and UNIT (spec unit_munit.md §1), NHWC.

Both models of the NVlabs "v1" code are built from the same primitives:

* `Conv`: explicit padding (`pad2d`: 'reflect' = PyTorch `ReflectionPad2d`,
  'zero', 'replicate') then a VALID k×k conv *with* bias; kernel HWIO.
  Optional MUNIT spectral norm (norm 'sn', see below).
* `ConvBlock(features, k, stride, padding, norm, activation, pad_type)`:
  pad → conv → norm → activation (§1.1). norm ∈ {'none', 'in', 'adain',
  'ln', 'sn'}; activation ∈ {'relu', 'lrelu' (0.2), 'tanh', 'none', 'selu',
  'prelu'}.
* Norms (§1.2): `instance_norm` (no affine, biased var, eps 1e-5 in the
  sqrt), `adain(x, gamma, beta)` = γ·IN(x) + β with per-sample (B, C) γ, β
  (no "1 + γ"), and `LayerNorm`, the MUNIT one: per sample mean and
  *unbiased* std over (H, W, C), (x − μ)/(σ + 1e-5), per-channel γ·y + β,
  γ ~ U[0, 1), β = 0 (not Flax's `nn.LayerNorm`).
* `ResBlock` / `ResBlocks` (§1.3): x + ConvBlock(C,3,1,1,norm,act) →
  ConvBlock(C,3,1,1,norm,'none'), no activation after the sum. With
  norm='adain' `ResBlocks` takes the MLP output vector (B, 4·n·C) and
  slices it in MUNIT's exact order (`split_adain_params`).
* `upsample_nearest` (§1.4) and `downsample_avg`, the 3×3 / stride 2 /
  pad 1 average pool with `count_include_pad=False` (§1.6).
* `MsImageDis` (§1.6): `num_scales` independent `ImageDis` sub-networks,
  the image average-pooled between scales; returns one raw score map
  (B, h, w, 1) per scale.
* Initialisers (§1.5): `kernel_initializer('kaiming')` is the *untruncated*
  normal with std √(2/fan_in) (generators), 'gaussian' N(0, 0.02²)
  (discriminators), also 'xavier' and 'orthogonal' (gain √2); every conv /
  dense bias is 0. LN γ ~ U[0, 1) whatever the kernel init.

MUNIT's spectral norm (its own `SpectralNorm` wrapper, not PyTorch's hook;
fixture `munit_msimagedis_sn`): on *every* call, in train and eval mode, one
power iteration with l2n(a) = a / (‖a‖ + 1e-12):
  v = l2n(Wᵀu), u = l2n(W v), σ = u·(W v), conv with W/σ,
where W is the kernel as (Cout, Cin·k·k) in PyTorch's (Cin, kh, kw) order, u
and v are constants for the gradient and σ is differentiable in W. u and v
live in the 'batch_stats' collection (`u` (Cout,), `v` (Cin·k·k,)); they are
written back only when called with `update_stats=True` (and the collection
mutable), otherwise the call computes the same output without storing them.

Not implemented: norm 'bn' (needs running statistics; no config uses it).

Compute dtype (`layers.compute`): every block has a `dtype` (float32 by
default); params, spectral-norm vectors and the norms' statistics stay
float32, convs and dense layers run in `dtype`. `ResBlocks(remat=True)`
rematerialises each residual block.
"""

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from flax import linen as nn
from flax.linen.dtypes import promote_dtype

from i2ijax.layers import compute
from i2ijax.layers import conv
from i2ijax.layers import norm as layer_norms

EPS = 1e-5
SN_EPS = 1e-12
LRELU_SLOPE = 0.2
_DIMS = ('NHWC', 'HWIO', 'NHWC')
_PAD_MODES = {'reflect': 'reflect', 'zero': 'constant', 'replicate': 'edge'}
NORMS = ('none', 'in', 'adain', 'ln', 'sn')
ACTIVATIONS = ('relu', 'lrelu', 'tanh', 'none', 'selu', 'prelu')

# ------------------------------------------------------------ initialisers
KAIMING = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
GAUSSIAN = nn.initializers.normal(stddev=0.02)
_KERNEL_INITS = {
    'kaiming': KAIMING,
    'gaussian': GAUSSIAN,
    # PyTorch xavier_normal_(gain √2): var = 2²/(fan_in + fan_out).
    'xavier': nn.initializers.variance_scaling(2.0, 'fan_avg', 'normal'),
    'orthogonal': nn.initializers.orthogonal(scale=math.sqrt(2.0)),
}


def kernel_initializer(name: str):
  """Conv / dense kernel initialiser of MUNIT's `weights_init(name)`."""
  if name not in _KERNEL_INITS:
    raise ValueError(f'Unknown init {name!r}; use one of '
                     f'{sorted(_KERNEL_INITS)}.')
  return _KERNEL_INITS[name]


def dense(features: int, init: str = 'kaiming', name: str | None = None,
          dtype=jnp.float32):
  """`nn.Dense` initialised as MUNIT's Linear layers (kernel init, bias 0)."""
  return nn.Dense(features, kernel_init=kernel_initializer(init),
                  bias_init=nn.initializers.zeros, name=name, dtype=dtype)


def ln_gamma_init(key, shape, dtype=jnp.float32):
  """MUNIT LayerNorm scale: U[0, 1) (PyTorch `Tensor.uniform_()`)."""
  return jax.random.uniform(key, shape, dtype)


# --------------------------------------------------------- spatial helpers
def pad2d(x: jnp.ndarray, pad: int, pad_type: str = 'reflect') -> jnp.ndarray:
  """Pads H and W of (B, H, W, C) by `pad` on each side.

  'reflect' mirrors without repeating the edge (needs H, W > pad), 'zero'
  pads zeros, 'replicate' repeats the edge pixel.
  """
  if pad_type not in _PAD_MODES:
    raise ValueError(f'Unknown pad_type {pad_type!r}; use one of '
                     f'{sorted(_PAD_MODES)}.')
  if pad == 0:
    return x
  if pad_type == 'reflect' and min(x.shape[1], x.shape[2]) <= pad:
    raise ValueError(
        f'Reflection padding {pad} needs a feature map larger than {pad} '
        f'pixels, got {x.shape[1]}x{x.shape[2]}: use larger inputs, fewer '
        'downsampling layers or fewer discriminator scales.')
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                 mode=_PAD_MODES[pad_type])


def upsample_nearest(x: jnp.ndarray, factor: int = 2) -> jnp.ndarray:
  """`nn.Upsample(scale_factor=factor)` (nearest) on NHWC."""
  return x.repeat(factor, axis=1).repeat(factor, axis=2)


def downsample_avg(x: jnp.ndarray) -> jnp.ndarray:
  """AvgPool(3, stride 2, pad 1, count_include_pad=False): (B,H,W,C) →
  (B, ⌈H/2⌉, ⌈W/2⌉, C); border windows divide by their real pixel count."""
  window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
  pads = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = lax.reduce_window(x, 0.0, lax.add, window, strides, pads)
  ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
  count = lax.reduce_window(ones, 0.0, lax.add, window, strides, pads)
  return total / count


# ------------------------------------------------------------------ norms
def adain(x: jnp.ndarray, gamma: jnp.ndarray, beta: jnp.ndarray,
          eps: float = EPS) -> jnp.ndarray:
  """γ·IN(x) + β with per-sample γ, β of shape (B, C); x (B, H, W, C)."""
  return layer_norms.affine_instance_norm(x, gamma, beta, eps)


class LayerNorm(nn.Module):
  """MUNIT LayerNorm: (x − μ)/(σ_unbiased + eps)·γ_c + β_c per sample.

  μ and σ over all of (H, W, C); params `gamma` (C,) ~ U[0, 1), `beta` (C,)
  = 0. x: (B, H, W, C). Computed in float32 (at least), returned in x's
  dtype.
  """
  eps: float = EPS

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    gamma = self.param('gamma', ln_gamma_init, (channels,))
    beta = self.param('beta', nn.initializers.zeros, (channels,))
    axes = tuple(range(1, x.ndim))
    count = math.prod(x.shape[1:])
    y = compute.upcast(x)
    mean = jnp.mean(y, axis=axes, keepdims=True)
    var = jnp.sum(jnp.square(y - mean), axis=axes, keepdims=True) / (count - 1)
    y = (y - mean) / (jnp.sqrt(var) + self.eps)
    return (y * gamma + beta).astype(x.dtype)


def num_adain_params(channels: int, num_layers: int) -> int:
  """Length of the AdaIN vector for `num_layers` layers of `channels`."""
  return 2 * channels * num_layers


def split_adain_params(params: jnp.ndarray, channels: int, num_layers: int
                       ) -> list[tuple[jnp.ndarray, jnp.ndarray]]:
  """Slices an MLP output (B, ≥ 2·C·L) into L (gamma, beta) pairs.

  MUNIT order: layer j reads β = p[:, 2Cj : 2Cj + C] and then
  γ = p[:, 2Cj + C : 2Cj + 2C]; entries past 2·C·L are ignored.
  """
  pairs = []
  for j in range(num_layers):
    start = 2 * channels * j
    beta = params[:, start:start + channels]
    gamma = params[:, start + channels:start + 2 * channels]
    pairs.append((gamma, beta))
  return pairs


# ------------------------------------------------------------ conv blocks
def _l2n(v):
  return v / (jnp.linalg.norm(v) + SN_EPS)


class Conv(nn.Module):
  """[nearest ×upsample →] pad2d → VALID k×k conv with bias (+ optional
  MUNIT spectral norm).

  x: (B, H, W, Cin) → (B, H', W', features). Params `kernel` (k, k, Cin,
  Cout) and `bias` (Cout,) = 0. With `upsample` = f > 1 (stride 1) the layer
  is `nn.Upsample(scale_factor=f)` followed by the padded conv, computed
  without the upsampled map as f² phase convs (`conv.upsample_conv`: same
  sums, a 5×5 conv after ×2 costs four 3×3 convs).
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  spectral_norm: bool = False
  upsample: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, update_stats: bool = False):
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', kernel_initializer(self.kernel_init),
                        (k, k, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    if self.spectral_norm:
      kernel = self._spectral_normalize(kernel, update_stats)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.upsample > 1:
      if self.stride != 1:
        raise ValueError('An upsampling conv has stride 1, got '
                         f'{self.stride}.')
      return conv.upsample_conv(x, kernel, self.upsample, self.padding,
                                self.pad_type) + bias
    x = pad2d(x, self.padding, self.pad_type)
    if min(x.shape[1:3]) < k:
      raise ValueError(
          f'A {k}x{k} conv needs a (padded) input of at least {k} pixels, '
          f'got {x.shape[1]}x{x.shape[2]}.')
    y = conv.conv_general_dilated(x, kernel, (self.stride, self.stride),
                                  'VALID', dimension_numbers=_DIMS)
    return y + bias

  def _spectral_normalize(self, kernel, update_stats):
    # (Cout, Cin·k·k) in PyTorch's flattening order, so `v` matches it.
    w_mat = kernel.transpose(3, 2, 0, 1).reshape(self.features, -1)

    def init_vec(size):
      return lambda: _l2n(jax.random.normal(self.make_rng('params'), (size,)))

    u_var = self.variable('batch_stats', 'u', init_vec(w_mat.shape[0]))
    v_var = self.variable('batch_stats', 'v', init_vec(w_mat.shape[1]))
    w_const = lax.stop_gradient(w_mat)
    v = _l2n(w_const.T @ u_var.value)
    u = _l2n(w_const @ v)
    sigma = u @ (w_mat @ v)
    if update_stats and not self.is_initializing():
      u_var.value, v_var.value = u, v
    return kernel / sigma


def activate(x, activation: str, module: nn.Module | None = None):
  """The named activation; 'prelu' needs the owning `module` (one α=0.25)."""
  if activation == 'relu':
    return nn.relu(x)
  if activation == 'lrelu':
    return nn.leaky_relu(x, LRELU_SLOPE)
  if activation == 'tanh':
    return jnp.tanh(x)
  if activation == 'none':
    return x
  if activation == 'selu':
    return nn.selu(x)
  if activation == 'prelu':
    alpha = module.param('prelu', nn.initializers.constant(0.25), ())
    return jnp.where(x >= 0, x, alpha * x)
  raise ValueError(f'Unknown activation {activation!r}; use one of '
                   f'{ACTIVATIONS}.')


class ConvBlock(nn.Module):
  """MUNIT `Conv2dBlock`: pad → conv (bias) → norm → activation (§1.1).

  `__call__(x, adain_params=None, *, update_stats=False)`; with
  norm='adain', `adain_params` = (gamma, beta), each (B, features).
  Children: `conv` (`Conv`), and `norm` (`LayerNorm`) when norm='ln'.
  `upsample` = f > 1 puts MUNIT's `nn.Upsample(scale_factor=f)` (nearest)
  before the pad and conv (`Conv`).
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  norm: str = 'none'
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  upsample: int = 1

  @nn.compact
  def __call__(self, x, adain_params=None, *, update_stats: bool = False):
    if self.norm not in NORMS:
      raise ValueError(f'Unknown norm {self.norm!r}; use one of {NORMS}.')
    x = Conv(self.features, self.kernel_size, self.stride, self.padding,
             self.pad_type, self.kernel_init,
             spectral_norm=self.norm == 'sn', upsample=self.upsample,
             dtype=self.dtype, name='conv')(
                 x, update_stats=update_stats)
    if self.norm == 'in':
      x = layer_norms.instance_norm(x)
    elif self.norm == 'adain':
      if adain_params is None:
        raise ValueError("norm='adain' needs adain_params=(gamma, beta).")
      x = adain(x, *adain_params)
    elif self.norm == 'ln':
      x = LayerNorm(name='norm')(x)
    return activate(x, self.activation, self)


class ResBlock(nn.Module):
  """x + conv2(conv1(x)), 3×3 stride 1 pad 1 ConvBlocks; conv2 has no act.

  `adain_params`: with norm='adain', ((γ1, β1), (γ2, β2)) for conv1, conv2.
  """
  norm: str = 'in'
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, adain_params=None):
    channels = x.shape[-1]
    first, second = adain_params if adain_params is not None else (None, None)
    y = ConvBlock(channels, 3, 1, 1, self.norm, self.activation,
                  self.pad_type, self.kernel_init, self.dtype,
                  name='conv1')(x, first)
    y = ConvBlock(channels, 3, 1, 1, self.norm, 'none', self.pad_type,
                  self.kernel_init, self.dtype, name='conv2')(y, second)
    return x + y


class ResBlocks(nn.Module):
  """`num_blocks` ResBlocks named `block_0` … in sequence.

  With norm='adain', `adain_params` is the MLP output (B, 4·num_blocks·C):
  block i conv j uses layer 2i + j of `split_adain_params`. `remat`
  rematerialises each block in the backward pass.
  """
  num_blocks: int
  norm: str = 'in'
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, adain_params=None):
    layers = None
    if adain_params is not None:
      layers = split_adain_params(adain_params, x.shape[-1],
                                  2 * self.num_blocks)
    block = compute.maybe_remat(ResBlock, self.remat)
    for i in range(self.num_blocks):
      block_params = None if layers is None else layers[2 * i:2 * i + 2]
      x = block(self.norm, self.activation, self.pad_type, self.kernel_init,
                self.dtype, name=f'block_{i}')(x, block_params)
    return x


# ---------------------------------------------------------- discriminator
class ImageDis(nn.Module):
  """One scale of `MsImageDis`: (B, H, W, 3) → raw score map (B, H/2^n, ·, 1).

  layer_0: ConvBlock(dim, 4, 2, 1, norm 'none'); layer_i (i = 1…n−1):
  ConvBlock(dim·2^i, 4, 2, 1, `norm`); `head`: plain 1×1 conv to 1 channel.
  """
  dim: int = 64
  n_layer: int = 4
  norm: str = 'none'
  activation: str = 'lrelu'
  pad_type: str = 'reflect'
  kernel_init: str = 'gaussian'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, update_stats: bool = False):
    for i in range(self.n_layer):
      x = ConvBlock(self.dim * 2**i, 4, 2, 1, 'none' if i == 0 else self.norm,
                    self.activation, self.pad_type, self.kernel_init,
                    self.dtype, name=f'layer_{i}')(
                        x, update_stats=update_stats)
    return compute.float32(Conv(1, 1, kernel_init=self.kernel_init,
                                dtype=self.dtype, name='head')(x))


class MsImageDis(nn.Module):
  """Multi-scale discriminator (§1.6): list of `num_scales` score maps.

  Scale i (child `scale_i`, an `ImageDis`) sees the image average-pooled
  (`downsample_avg`) i times. With the defaults and a 256 px input the maps
  are (B, 16, 16, 1), (B, 8, 8, 1), (B, 4, 4, 1); inputs must be ≥ 64 px
  (reflect padding of the smallest map, spec §6.3).
  """
  dim: int = 64
  n_layer: int = 4
  num_scales: int = 3
  norm: str = 'none'
  activation: str = 'lrelu'
  pad_type: str = 'reflect'
  kernel_init: str = 'gaussian'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, update_stats: bool = False
               ) -> Sequence[jnp.ndarray]:
    outs = []
    for i in range(self.num_scales):
      outs.append(ImageDis(self.dim, self.n_layer, self.norm, self.activation,
                           self.pad_type, self.kernel_init, self.dtype,
                           name=f'scale_{i}')(x, update_stats=update_stats))
      if i + 1 < self.num_scales:
        x = downsample_avg(x)
    return outs


def min_dis_input_size(n_layer: int, num_scales: int) -> int:
  """Smallest power-of-two input size `MsImageDis` accepts with reflect pad.

  The last padded map has size S / 2^(num_scales − 1 + n_layer − 1) and
  reflect padding 1 needs ≥ 2 pixels.
  """
  return 2 ** (num_scales + n_layer - 1)
