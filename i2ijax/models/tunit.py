"""TUNIT networks (spec tunit_cyclegan.md §1.3-§1.5), NHWC linen modules.

* `GuidingNetwork` E: VGG11-BN trunk (conv3×3 zero-pad 1 with bias → BN →
  ReLU, max-pool 2×2 at each 'M'), global average pool, and two linear
  heads on the pooled features: class logits (K) and the style code
  (style_dim). No L2 normalisation, no softmax. Returns (logits, style).
  BN: `use_running_average=not train`, momentum 0.9 (PyTorch 0.1), eps 1e-5,
  statistics in the 'batch_stats' collection.
* `Generator` G: content encoder (conv7 → n_downs × conv4 s2 → 2 residual
  blocks, all InstanceNorm without affine + ReLU, reflect padding) giving a
  16×16 content map; decoder (2 AdaIN residual blocks → n_downs × [nearest
  ×2, conv5, AdaIN, ReLU] → conv7, tanh); an MLP (style → 256 → 256 → A)
  producing every AdaIN parameter. Residual blocks return x + 0.1·f(x).
  `encode`, `decode` and `adain_params` are separate methods
  (`apply(..., method='encode')`) because a step decodes one content code
  with two styles.
* `Discriminator` D: multi-task pre-activation ResNet with FRN + TLU,
  K logits, and the logit at each sample's (pseudo-)domain.

AdaIN (§1.4.2): γ[n,c]·(x − μ)/√(σ² + 1e-5) + β[n,c], instance statistics
with the biased variance, γ and β taken as they are from the MLP output. The
MLP output is consumed layer by layer in forward order (res-block 1 conv a,
res-block 1 conv b, res-block 2 conv a, b, up-conv 1, up-conv 2, ...), each
layer of C channels taking first C *bias* values, then C *scale* values
(`split_adain_params`), so PyTorch weights port unchanged.

Sizes from the image size S (a power of two ≥ 32): G: nf = 64 if S < 256
else 32, n_downs = log2(S/16), bottleneck C_b = nf·2^n_downs; D: d0 = 64 if
S < 256 else 32, log2(S) − 2 stages of [res-block d→d, res-block d→min(2d,
cap) with avg-pool], ending at 4×4 before the head. Width fields (`nf`,
`nf_mlp`, `dim_in`, `max_conv_dim`, E's `widths`) can be overridden for
tiny test networks (the parity fixtures use nf 8, nf_mlp 32, dim_in 8,
max_conv_dim 64 and VGG widths / 8).

Init (§1.3-§1.5): G and D conv / dense kernels He-normal fan_in, E's convs
He-normal fan_out, all *untruncated* (`variance_scaling(2, ·, 'normal')`);
E's linear heads N(0, 0.01²); biases 0; BN γ = 1, β = 0; FRN γ = 1, β = τ = 0.

Parameter counts (tests/models/test_tunit_parity.py): E 9,296,778 (K = 10,
S = 128), G 27,333,763 (S = 128) and 7,143,299 (S = 64), D 70,935,242
(K = 10, S = 128).

Every network has a compute `dtype` (`layers.compute`): float32 params,
convs and dense layers in `dtype`, BN / IN / AdaIN / FRN statistics in
float32, float32 outputs. `remat` (G and D) recomputes G's residual blocks
and D's pre-activation blocks in the backward pass; E's VGG trunk (with
BatchNorm statistics updates) is never rematerialised.
"""

import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax
from flax import linen as nn
from flax.linen.dtypes import promote_dtype

from i2ijax.layers import compute
from i2ijax.layers import conv
from i2ijax.layers import norm as layer_norms
from i2ijax.layers.norm import instance_norm

EPS = 1e-5
FRN_EPS = 1e-6
RES_SCALE = 0.1
LRELU_SLOPE = 0.2
_DIMS = ('NHWC', 'HWIO', 'NHWC')

HE_FAN_IN = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
HE_FAN_OUT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
HEAD_INIT = nn.initializers.normal(stddev=0.01)

# torchvision's VGG11 configuration 'A'; 'M' is a 2×2 max-pool.
VGG11 = (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M')


def vgg11_widths(base: int = 64) -> tuple:
  """VGG11 with every width scaled by base/64 (base 8 = the parity fixture)."""
  return tuple(v if v == 'M' else v * base // 64 for v in VGG11)


def _log2(size: int, what: str) -> int:
  n = int(round(math.log2(size))) if size > 0 else -1
  if n < 0 or 2**n != size:
    raise ValueError(f'{what} must be a power of two, got {size}.')
  return n


class Conv(nn.Module):
  """[Nearest ×upsample →] pad (reflect or zero) → VALID k×k conv, optional
  bias.

  x: (B, H, W, Cin) → (B, H', W', features). Params `kernel` (k, k, Cin,
  Cout), `bias` (Cout,) = 0. `upsample` = f > 1 (stride 1): the conv of the
  nearest-upsampled map, computed as f² phase convs of x
  (`conv.upsample_conv`, same sums).
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  pad_mode: str = 'reflect'      # 'reflect' or 'zero'
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = HE_FAN_IN
  upsample: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features))
    x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
    if self.upsample > 1:
      if self.stride != 1:
        raise ValueError('An upsampling conv has stride 1, got '
                         f'{self.stride}.')
      y = conv.upsample_conv(x, kernel, self.upsample, self.padding,
                             self.pad_mode)
    else:
      y = self._padded_conv(x, kernel)
    if self.use_bias:
      bias = self.param('bias', nn.initializers.zeros, (self.features,))
      y = y + bias.astype(self.dtype)
    return y

  def _padded_conv(self, x, kernel):
    p = self.padding
    if self.pad_mode == 'reflect':
      if p and min(x.shape[1:3]) <= p:
        raise ValueError(f'Reflection padding {p} needs a feature map larger '
                         f'than {p} pixels, got {x.shape[1]}x{x.shape[2]}.')
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode='reflect')
      padding = [(0, 0), (0, 0)]
    elif self.pad_mode == 'zero':
      padding = [(p, p), (p, p)]
    else:
      raise ValueError(f'Unknown pad_mode {self.pad_mode!r}; use reflect or '
                       'zero.')
    return conv.conv_general_dilated(x, kernel, (self.stride, self.stride),
                                     padding, dimension_numbers=_DIMS)


def _max_pool2(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')


def _avg_pool2(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID')


# ------------------------------------------------------------------ E
class GuidingNetwork(nn.Module):
  """E: (B, S, S, 3) → (class logits (B, K), style code (B, style_dim)).

  `widths` is a VGG configuration (ints = conv widths, 'M' = max-pool);
  S must be large enough for its pools (S ≥ 32 for VGG11). `__call__(x,
  train)` runs BN with batch statistics and updates them when `train`
  (apply with `mutable=['batch_stats']`); otherwise BN uses the running
  statistics. Each call normalises with its own batch (spec A8).
  """
  num_clusters: int = 10
  style_dim: int = 128
  widths: Sequence[int | str] = VGG11
  dtype: Any = jnp.float32

  def _features(self, x, train: bool):
    """Pooled trunk features (B, last width)."""
    conv_index = 0
    for v in self.widths:
      if v == 'M':
        x = _max_pool2(x)
        continue
      x = Conv(v, 3, padding=1, pad_mode='zero', kernel_init=HE_FAN_OUT,
               dtype=self.dtype, name=f'conv{conv_index}')(x)
      # Statistics in float32 (Flax's default), output in `dtype`.
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=EPS, dtype=self.dtype,
                       name=f'bn{conv_index}')(x)
      x = nn.relu(x)
      conv_index += 1
    return jnp.mean(x, axis=(1, 2))

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = self._features(x, train)
    logits = nn.Dense(self.num_clusters, kernel_init=HEAD_INIT,
                      dtype=self.dtype, name='class_head')(h)
    style = nn.Dense(self.style_dim, kernel_init=HEAD_INIT,
                     dtype=self.dtype, name='style_head')(h)
    return compute.float32((logits, style))


# ------------------------------------------------------------------ G
def adain(x, scale, bias, eps: float = EPS):
  """scale·IN(x) + bias with per-sample (B, C) scale and bias; x (B,H,W,C)."""
  return layer_norms.affine_instance_norm(x, scale, bias, eps)


def adain_channels(nf: int, n_downs: int, n_res: int = 2) -> list[int]:
  """Channels of the decoder's AdaIN layers in forward order."""
  bottleneck = nf * 2**n_downs
  return ([bottleneck] * (2 * n_res) +
          [bottleneck // 2**(i + 1) for i in range(n_downs)])


def split_adain_params(params, channels: Sequence[int]):
  """Slices the MLP output (B, A) into per-layer (scale, bias) pairs.

  Layer j of C channels reads C bias values, then C scale values, after the
  2·C of every earlier layer. A = 2·Σ C.
  """
  pairs, start = [], 0
  for c in channels:
    bias = params[:, start:start + c]
    scale = params[:, start + c:start + 2 * c]
    pairs.append((scale, bias))
    start += 2 * c
  if start != params.shape[-1]:
    raise ValueError(f'AdaIN vector has {params.shape[-1]} entries, the '
                     f'decoder needs {start}.')
  return pairs


class ResBlock(nn.Module):
  """x + 0.1·norm(conv3(ReLU(norm(conv3(x))))), reflect pad 1 (§1.4).

  norm is InstanceNorm, or AdaIN when `adain_params` = ((scale_a, bias_a),
  (scale_b, bias_b)) is given. No activation after the sum.
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, adain_params=None):
    channels = x.shape[-1]
    def norm(y, j):
      if adain_params is None:
        return instance_norm(y)
      return adain(y, *adain_params[j])
    y = Conv(channels, 3, padding=1, dtype=self.dtype, name='conv1')(x)
    y = nn.relu(norm(y, 0))
    y = Conv(channels, 3, padding=1, dtype=self.dtype, name='conv2')(y)
    return x + RES_SCALE * norm(y, 1)


class ContentEncoder(nn.Module):
  """(B, S, S, 3) → content (B, S/2^n, S/2^n, nf·2^n), n = n_downs."""
  nf: int
  n_downs: int
  n_res: int = 2
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x):
    dtype = self.dtype
    res_block = compute.maybe_remat(ResBlock, self.remat)
    x = nn.relu(instance_norm(Conv(self.nf, 7, padding=3, dtype=dtype,
                                   name='conv_in')(x)))
    for i in range(self.n_downs):
      x = Conv(x.shape[-1] * 2, 4, stride=2, padding=1, dtype=dtype,
               name=f'down{i}')(x)
      x = nn.relu(instance_norm(x))
    for i in range(self.n_res):
      x = res_block(dtype, name=f'res{i}')(x)
    return x


class Decoder(nn.Module):
  """(content (B, h, w, C_b), AdaIN vector (B, A)) → image (B, h·2^n, ·, 3)."""
  n_downs: int
  n_res: int = 2
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, content, adain_vector):
    dtype = self.dtype
    res_block = compute.maybe_remat(ResBlock, self.remat)
    channels = adain_channels(content.shape[-1] // 2**self.n_downs,
                              self.n_downs, self.n_res)
    pairs = split_adain_params(adain_vector, channels)
    x = content.astype(dtype)
    for i in range(self.n_res):
      x = res_block(dtype, name=f'res{i}')(x, pairs[2 * i:2 * i + 2])
    for i in range(self.n_downs):
      x = Conv(x.shape[-1] // 2, 5, padding=2, upsample=2, dtype=dtype,
               name=f'up{i}')(x)                   # nearest ×2, conv5
      x = nn.relu(adain(x, *pairs[2 * self.n_res + i]))
    return jnp.tanh(Conv(3, 7, padding=3, dtype=dtype, name='conv_out')(x))


class StyleMLP(nn.Module):
  """style (B, style_dim) → AdaIN vector (B, out_dim): 3 dense layers."""
  hidden: int
  out_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, s):
    s = nn.relu(nn.Dense(self.hidden, kernel_init=HE_FAN_IN,
                         dtype=self.dtype, name='fc0')(s))
    s = nn.relu(nn.Dense(self.hidden, kernel_init=HE_FAN_IN,
                         dtype=self.dtype, name='fc1')(s))
    return nn.Dense(self.out_dim, kernel_init=HE_FAN_IN, dtype=self.dtype,
                    name='fc2')(s)


class Generator(nn.Module):
  """G for S×S images: `encode`, `decode`, `adain_params`, `__call__`.

  encode: (B, S, S, 3) → content (B, 16, 16, C_b);
  decode: (content, style (B, style_dim)) → image (B, S, S, 3) in (−1, 1);
  __call__(x, style) = decode(encode(x), style).
  `nf` None = 64 if S < 256 else 32 (the reference rule).
  """
  image_size: int = 128
  style_dim: int = 128
  nf: int | None = None
  nf_mlp: int = 256
  n_res: int = 2
  dtype: Any = jnp.float32
  remat: bool = False

  def setup(self):
    n = _log2(self.image_size, 'Generator image_size') - 4
    if n < 0:
      raise ValueError(f'Generator image_size must be >= 16, got '
                       f'{self.image_size}.')
    self.n_downs = n
    nf = self.width
    self.encoder = ContentEncoder(nf, n, self.n_res, self.dtype, self.remat)
    self.decoder = Decoder(n, self.n_res, self.dtype, self.remat)
    self.mlp = StyleMLP(self.nf_mlp, 2 * sum(adain_channels(nf, n,
                                                            self.n_res)),
                        self.dtype)

  @property
  def width(self) -> int:
    if self.nf is not None:
      return self.nf
    return 64 if self.image_size < 256 else 32

  def encode(self, x):
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f'Generator built for {self.image_size}px images got '
                       f'{x.shape[1]}x{x.shape[2]}.')
    return compute.float32(self.encoder(x))

  def adain_params(self, style):
    return compute.float32(self.mlp(style))

  def decode(self, content, style):
    return compute.float32(self.decoder(content, self.adain_params(style)))

  def __call__(self, x, style):
    return self.decode(self.encode(x), style)


# ------------------------------------------------------------------ D
class FilterResponseNorm(nn.Module):
  """FRN + TLU: max(γ·x/√(mean_{H,W} x² + 1e-6) + β, τ) per channel.

  No mean subtraction; params `gamma` = 1, `beta` = 0, `tau` = 0, (C,).
  """
  eps: float = FRN_EPS

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    gamma = self.param('gamma', nn.initializers.ones, (c,))
    beta = self.param('beta', nn.initializers.zeros, (c,))
    tau = self.param('tau', nn.initializers.zeros, (c,))
    y = compute.upcast(x)      # statistics in float32
    nu2 = jnp.mean(jnp.square(y), axis=(1, 2), keepdims=True)
    y = y * lax.rsqrt(nu2 + self.eps)
    return jnp.maximum(gamma * y + beta, tau).astype(x.dtype)


class ActFirstResBlock(nn.Module):
  """Pre-activation block: (shortcut + residual) / √2 (§1.5).

  residual = FRN → conv3 (Cin→Cin) → [avg-pool 2] → FRN → conv3 (Cin→out);
  shortcut = [conv1×1 without bias if Cin ≠ out] → [avg-pool 2].
  """
  features: int
  downsample: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    cin, dtype = x.shape[-1], self.dtype
    y = FilterResponseNorm(name='norm1')(x)
    y = Conv(cin, 3, padding=1, pad_mode='zero', dtype=dtype, name='conv1')(y)
    if self.downsample:
      y = _avg_pool2(y)
    y = FilterResponseNorm(name='norm2')(y)
    y = Conv(self.features, 3, padding=1, pad_mode='zero', dtype=dtype,
             name='conv2')(y)
    s = x
    if cin != self.features:
      s = Conv(self.features, 1, pad_mode='zero', use_bias=False, dtype=dtype,
               name='shortcut')(s)
    if self.downsample:
      s = _avg_pool2(s)
    return (s + y) / math.sqrt(2.0)


class Discriminator(nn.Module):
  """D: (x (B, S, S, 3), y (B,) int) → (logit at y (B,), logits (B, K)).

  `dim_in` None = 64 if S < 256 else 32; widths capped at `max_conv_dim`.
  S is read from x (a power of two ≥ 8).
  """
  num_domains: int
  dim_in: int | None = None
  max_conv_dim: int = 1024
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, y):
    size = x.shape[1]
    stages = _log2(size, 'Discriminator input size') - 2
    if stages < 1 or x.shape[2] != size:
      raise ValueError(f'Discriminator needs square inputs of >= 8 px, got '
                       f'{x.shape[1]}x{x.shape[2]}.')
    dim, dtype = self.dim_in or (64 if size < 256 else 32), self.dtype
    x = Conv(dim, 3, padding=1, pad_mode='zero', dtype=dtype, name='conv_in')(x)
    block = compute.maybe_remat(ActFirstResBlock, self.remat)
    for i in range(stages):
      out = min(2 * dim, self.max_conv_dim)
      x = block(dim, dtype=dtype, name=f'block{2 * i}')(x)
      x = block(out, downsample=True, dtype=dtype,
                name=f'block{2 * i + 1}')(x)
      dim = out
    x = nn.leaky_relu(x, LRELU_SLOPE)
    x = Conv(dim, 4, pad_mode='zero', dtype=dtype,
             name='conv_head')(x)                              # 4×4 → 1×1
    x = nn.leaky_relu(x, LRELU_SLOPE)
    logits = Conv(self.num_domains, 1, pad_mode='zero', dtype=dtype,
                  name='conv_out')(x)
    logits = compute.float32(logits.reshape(logits.shape[0],
                                            self.num_domains))
    selected = jnp.take_along_axis(logits, y[:, None].astype(jnp.int32),
                                   axis=1)[:, 0]
    return selected, logits
