"""MUNIT networks (spec unit_munit.md §3.2), NHWC linen modules.

One `Generator` per domain is MUNIT's `AdaINGen`: a content encoder E^c, a
style encoder E^s, an MLP that maps a style code to every AdaIN parameter of
the decoder, and the decoder G. Built from `models.munit_blocks` (reflect
padding, MUNIT LayerNorm, ResBlocks with MUNIT's AdaIN slicing); the
discriminator is `munit_blocks.MsImageDis`.

  E^c  conv7 (IN, ReLU) → n_downsample × conv4 s2 (IN, ReLU, channels ×2)
       → n_res ResBlocks (IN): content c (B, H/2^n, W/2^n, width·2^n),
       unbounded.
  E^s  conv7 (ReLU) → 2 × conv4 s2 (×2) → (n_style_down − 2) × conv4 s2
       (same width) → global average pool → 1×1 conv: s (B, style_dim).
       No norm. `n_style_down` is hard-coded to 4 in the reference.
  MLP  Dense(style_dim→mlp_dim)+ReLU → Dense(mlp_dim→mlp_dim)+ReLU →
       Dense(mlp_dim → 2·C·2·n_res), no output activation (§3.2.4).
  G    n_res ResBlocks (AdaIN in both convs) → n_downsample × [nearest ×2,
       conv5 (MUNIT LN, ReLU), channels ÷2] → conv7 (tanh).

AdaIN (seed Eq. 1): AdaIN(z, γ, β) = γ·(z − μ(z))/σ(z) + β per sample and
channel, with γ the raw MLP output (no 1 + γ). The MLP output p is consumed
layer by layer in module order (block 0 conv 1, block 0 conv 2, block 1
conv 1, ...), each layer taking β = p[2Cj : 2Cj + C] then γ = p[2Cj + C :
2Cj + 2C] (`munit_blocks.split_adain_params`). `i2ijax.layers.AdaIN` (the
GMVAE-MDMM one: own MLP, (1 + γ), [γ | β] order) does not fit and is not
used.

Init (§1.5): every generator conv and dense kernel is the *untruncated*
He normal, std √(2/fan_in) (`variance_scaling(2, 'fan_in', 'normal')`; JAX's
`he_normal` is truncated), biases 0, LN γ ~ U[0, 1), β = 0; discriminator
kernels N(0, 0.02²), biases 0.

Shapes (width 64, 256 px, defaults): c (B, 64, 64, 256), s (B, 8), AdaIN
vector (B, 4096), image (B, 256, 256, 3); parameters E^c 5,385,856,
E^s 2,764,936, decoder 5,754,627, MLP 1,120,768, generator 15,026,187,
D 8,271,171 (tests/models/test_munit_parity.py).

`dtype` / `remat` (`layers.compute`): every network computes in `dtype`
with float32 params; the generator's methods and D return float32; `remat`
rematerialises the residual blocks of E^c and G.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.models import munit_blocks as blocks


class ContentEncoder(nn.Module):
  """E^c: (B, H, W, 3) → content (B, H/2^n, W/2^n, width·2^n)."""
  width: int = 64
  n_downsample: int = 2
  n_res: int = 4
  pad_type: str = 'reflect'
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x):
    dim, dtype = self.width, self.dtype
    x = blocks.ConvBlock(dim, 7, 1, 3, 'in', 'relu', self.pad_type,
                         dtype=dtype, name='conv_0')(x)
    for i in range(self.n_downsample):
      dim *= 2
      x = blocks.ConvBlock(dim, 4, 2, 1, 'in', 'relu', self.pad_type,
                           dtype=dtype, name=f'down_{i}')(x)
    return blocks.ResBlocks(self.n_res, 'in', 'relu', self.pad_type,
                            dtype=dtype, remat=self.remat, name='res')(x)


class StyleEncoder(nn.Module):
  """E^s: (B, H, W, 3) → style code (B, style_dim). Needs H, W ≥ 16."""
  width: int = 64
  style_dim: int = 8
  n_downsample: int = 4    # hard-coded 4 in the reference (spec §3.2.2)
  pad_type: str = 'reflect'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    dim, dtype = self.width, self.dtype
    x = blocks.ConvBlock(dim, 7, 1, 3, 'none', 'relu', self.pad_type,
                         dtype=dtype, name='conv_0')(x)
    for i in range(self.n_downsample):
      if i < 2:
        dim *= 2
      x = blocks.ConvBlock(dim, 4, 2, 1, 'none', 'relu', self.pad_type,
                           dtype=dtype, name=f'down_{i}')(x)
    x = jnp.mean(x, axis=(1, 2), keepdims=True)
    x = blocks.Conv(self.style_dim, 1, dtype=dtype, name='head')(x)
    return x[:, 0, 0, :]


class MLP(nn.Module):
  """`num_blocks` Dense layers, ReLU between them: (B, D) → (B, features)."""
  features: int
  hidden: int = 256
  num_blocks: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, s):
    for i in range(self.num_blocks - 1):
      s = nn.relu(blocks.dense(self.hidden, name=f'dense_{i}',
                               dtype=self.dtype)(s))
    return blocks.dense(self.features, name=f'dense_{self.num_blocks - 1}',
                        dtype=self.dtype)(s)


class Decoder(nn.Module):
  """G: content (B, h, w, C) + AdaIN vector → image (B, h·2^n, w·2^n, 3)."""
  n_upsample: int = 2
  n_res: int = 4
  out_channels: int = 3
  pad_type: str = 'reflect'
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, content, adain_params):
    dtype = self.dtype
    x = blocks.ResBlocks(self.n_res, 'adain', 'relu', self.pad_type,
                         dtype=dtype, remat=self.remat, name='res')(
                             content.astype(dtype), adain_params)
    dim = x.shape[-1]
    for i in range(self.n_upsample):
      dim //= 2
      x = blocks.ConvBlock(dim, 5, 1, 2, 'ln', 'relu', self.pad_type,
                           dtype=dtype, upsample=2, name=f'up_{i}')(x)
    return blocks.ConvBlock(self.out_channels, 7, 1, 3, 'none', 'tanh',
                            self.pad_type, dtype=dtype, name='out')(x)


class Generator(nn.Module):
  """MUNIT `AdaINGen` of one domain: encoders, AdaIN MLP and decoder.

  Methods (call with `apply(..., method=...)`): `encode(x)` → (c, s),
  `encode_content(x)`, `encode_style(x)`, `adain_params(s)` (B, 4·n_res·C),
  `decode(c, s)` → image in [-1, 1]; `__call__(x)` reconstructs x.
  """
  width: int = 64
  style_dim: int = 8
  mlp_dim: int = 256
  n_downsample: int = 2
  n_res: int = 4
  n_style_down: int = 4
  pad_type: str = 'reflect'
  dtype: Any = jnp.float32
  remat: bool = False

  @property
  def content_channels(self) -> int:
    return self.width * 2**self.n_downsample

  @property
  def num_adain_params(self) -> int:
    return blocks.num_adain_params(self.content_channels, 2 * self.n_res)

  def setup(self):
    dtype, remat = self.dtype, self.remat
    self.enc_content = ContentEncoder(self.width, self.n_downsample,
                                      self.n_res, self.pad_type, dtype, remat)
    self.enc_style = StyleEncoder(self.width, self.style_dim,
                                  self.n_style_down, self.pad_type, dtype)
    self.mlp = MLP(self.num_adain_params, self.mlp_dim, dtype=dtype)
    self.dec = Decoder(self.n_downsample, self.n_res, pad_type=self.pad_type,
                       dtype=dtype, remat=remat)

  def encode_content(self, x):
    return compute.float32(self.enc_content(x))

  def encode_style(self, x):
    return compute.float32(self.enc_style(x))

  def encode(self, x):
    return self.encode_content(x), self.encode_style(x)

  def adain_params(self, style):
    return compute.float32(self.mlp(style))

  def decode(self, content, style):
    return compute.float32(self.dec(content, self.adain_params(style)))

  def __call__(self, x):
    return self.decode(*self.encode(x))


def discriminator(dim: int = 64, n_layer: int = 4, num_scales: int = 3,
                  norm: str = 'none', dtype=jnp.float32) -> blocks.MsImageDis:
  """MUNIT's multi-scale D (LReLU 0.2, reflect, N(0, 0.02²) init)."""
  return blocks.MsImageDis(dim=dim, n_layer=n_layer, num_scales=num_scales,
                           norm=norm, activation='lrelu', pad_type='reflect',
                           kernel_init='gaussian', dtype=dtype)
