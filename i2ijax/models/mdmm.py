"""MDMM networks (multi-domain DRIT++, spec §2.2), NHWC linen modules.

Faithful to HsinYingLee/MDMM's `networks.py` (concat variant) at any width:
`width=64` (content 256 channels) is the reference; the parity fixtures use
`width=8`. Reference quirks kept on purpose (spec §7):
  * B1: `LeakyReLUConv2d` never normalises, so neither D has a norm layer;
  * B2: the image D's adversarial head is a bias-free 1×1 conv with *zero*
    padding 1, so its output map has a ring of exact zeros
    (`zero_pad_head=False` removes the padding);
  * B12: the generator injects the domain code c once, before dec1, while z
    is re-concatenated before dec2, dec3 and dec4.
Generalisations (defaults = reference):
  * `ImageDiscriminator.num_layers` (6 in the reference) so that small crops
    work: every stride-2 layer reflect-pads by 1, which needs an input of at
    least 2 pixels, so the image side must be at least 2**(num_layers-1) + 1
    (33 for 6 layers, 17 for 5, 9 for 4);
  * `ContentDiscriminator(adaptive=True)` is the B3 fix (see its docstring);
    `adaptive=False` is the reference, which only runs on 53–60 px content
    maps (crops of about 212–240).

Shapes (B=2, N=3, width 64): E_c (2,54,54,256) at 216 [(2,27,27,256) at 108];
E_a μ, logσ² (2,8); G image (2,216,216,3); D adv (2,6,6,1) [(2,4,4,1)],
cls (2,3); D_c (2,3).

Every network has a compute `dtype` (float32 params either way, float32
outputs; `layers.compute`); E_c, E_a and G also `remat`, which
rematerialises their residual blocks and G's upsampling stages.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.layers import conv
from i2ijax.layers import init
from i2ijax.layers import norm


def tile(v: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
  """Broadcast (B, D) vectors to constant (B, height, width, D) maps."""
  return jnp.broadcast_to(v[:, None, None, :],
                          (v.shape[0], height, width, v.shape[-1]))


def concat_code(x: jnp.ndarray, *codes: jnp.ndarray) -> jnp.ndarray:
  """concat[x, tile(code_1), tile(code_2), ...] along channels."""
  h, w = x.shape[1:3]
  return jnp.concatenate([x] + [tile(c, h, w) for c in codes], axis=-1)


class ContentEncoder(nn.Module):
  """Shared content encoder E_c (spec §2.2.1): (B,H,W,3) → (B,H/4,W/4,4w).

  conv7 (LReLU 0.01) → 2 × [conv3 s2, IN, ReLU] → 4 × INSResBlock, then
  z_c + N(0, 1) noise from the 'noise' rng stream when `train` (float32).
  """
  width: int = 64
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool):
    w, dtype = self.width, self.dtype
    x = conv.LeakyReLUConv2d(w, 7, 1, 3, dtype=dtype, name='conv1')(x)
    x = conv.ReLUINSConv2d(2 * w, 3, 2, 1, dtype=dtype, name='down1')(x)
    x = conv.ReLUINSConv2d(4 * w, 3, 2, 1, dtype=dtype, name='down2')(x)
    res_block = compute.maybe_remat(conv.INSResBlock, self.remat)
    for i in range(4):
      x = res_block(dtype=dtype, name=f'res{i + 1}')(x)
    x = compute.float32(x)
    if train:
      x = x + jax.random.normal(self.make_rng('noise'), x.shape, x.dtype)
    return x


class AttributeTrunk(nn.Module):
  """Shared trunk of the concat attribute encoders (spec §2.2.2 rows 1–5).

  concat[x, tile(c)] → conv4 s2 (reflect 1, no activation) → BasicBlocks
  w→2w→3w→4w → LReLU(0.2) → global average. (B,H,W,3), (B,N) → (B, 4w).
  """
  width: int = 64
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, c):
    w = self.width
    x = concat_code(x, c)
    x = conv.Conv2d(w, 4, 2, 1, dtype=self.dtype, name='conv_in')(x)
    block = compute.maybe_remat(conv.BasicBlock, self.remat)
    for i, mult in enumerate((2, 3, 4)):
      x = block(mult * w, dtype=self.dtype, name=f'block{i + 1}')(x)
    x = nn.leaky_relu(x, 0.2)
    return jnp.mean(x, axis=(1, 2))


class AttributeEncoder(nn.Module):
  """Concat attribute encoder E_a (spec §2.2.2): returns (μ, log σ²).

  x (B,H,W,3), c (B,N) one-hot → μ, log σ² (B, nz). The reparameterisation
  z = μ + ε·exp(½ log σ²) is left to the caller, as in the reference.
  """
  width: int = 64
  nz: int = 8
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, c):
    f = AttributeTrunk(self.width, self.dtype, self.remat, name='trunk')(x, c)
    features = f.shape[-1]
    mu = init.dense(self.nz, features, name='fc', dtype=self.dtype)(f)
    logvar = init.dense(self.nz, features, name='fc_var',
                        dtype=self.dtype)(f)
    return compute.float32((mu, logvar))


class Generator(nn.Module):
  """Concat generator G (spec §2.2.4; options of §4.4 for GMVAE-MDMM).

  z_c (B,h,w,Cc), z (B,nz), c (B,D) → tanh image (B,4h,4w,3).
    out0 = INSResBlock(z_c)                [optional AdaIN(out0, c)]
    dec1 = 3 × INSResBlock on concat[out0, tile(c), tile(z)]   (t0 channels)
    dec2 = ConvT↑2 (t0+nz → (t0+nz)//2), LN, ReLU on concat[·, tile(z)]
    dec3 = same, (prev+nz → (prev+nz)//2)
    dec4 = ConvT 1×1 (prev+nz → 3) on concat[·, tile(z)], tanh.
  `double_convt` adds [ConvT k3 s1 p1 C→C, LN, ReLU] after dec2 and dec3;
  `use_adain` adds the fixed-profile AdaIN (MLP width `adain_hidden`,
  default content_channels) on out0 before the concat. nz and D are read
  from the inputs; `nz` is only checked.
  """
  content_channels: int = 256
  nz: int = 8
  use_adain: bool = False
  adain_hidden: int | None = None
  double_convt: bool = False
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, z_c, z, c):
    if z_c.shape[-1] != self.content_channels:
      raise ValueError(
          f'Generator(content_channels={self.content_channels}) got a content '
          f'code with {z_c.shape[-1]} channels: build it with '
          f'content_channels={z_c.shape[-1]}.')
    if z.shape[-1] != self.nz:
      raise ValueError(f'Generator(nz={self.nz}) got z of size '
                       f'{z.shape[-1]}: build it with nz={z.shape[-1]}.')
    dtype = self.dtype
    res_block = compute.maybe_remat(conv.INSResBlock, self.remat)
    up_block = compute.maybe_remat(conv.ReLUINSConvTranspose2d, self.remat)
    # The inputs join the activations in the compute dtype.
    z_c, z, c = z_c.astype(dtype), z.astype(dtype), c.astype(dtype)
    x = res_block(dtype=dtype, name='dec_share')(z_c)
    if self.use_adain:
      x = norm.AdaIN(self.adain_hidden or self.content_channels,
                     dtype=dtype, name='adain')(x, c)
    x = concat_code(x, c, z)
    for i in range(3):
      x = res_block(dtype=dtype, name=f'dec1_{i}')(x)
    for stage in ('dec2', 'dec3'):
      x = concat_code(x, z)
      channels = x.shape[-1] // 2
      x = up_block(channels, dtype=dtype, name=stage)(x)
      if self.double_convt:
        x = up_block(channels, 3, 1, 1, 0, dtype=dtype,
                     name=f'{stage}_extra')(x)
    x = concat_code(x, z)
    x = conv.ConvTranspose2d(3, 1, dtype=dtype, name='dec4')(x)
    return compute.float32(jnp.tanh(x))


class ImageDiscriminator(nn.Module):
  """Single-scale image D with a domain-classification head (spec §2.2.6).

  Trunk: `num_layers` × LeakyReLUConv2d(k3, s2, reflect 1), widths
  w, 2w, …, doubling each layer except the last (w·2^(n−2) twice); optional
  spectral norm on the trunk convs (state in 'batch_stats', updated when
  `train`). Heads on the trunk's (B,h,w,C) map:
    adv: 1×1 conv, no bias, zero padding 1 if `zero_pad_head` (B2) → (B,h+2,w+2,1)
    cls: k×k conv, k = max(1, image_size // 64), no bias, no padding, then a
         global average → (B, N).
  The image side must be at least 2**(num_layers−1) + 1 pixels.
  """
  num_domains: int
  image_size: int
  width: int = 64
  num_layers: int = 6
  zero_pad_head: bool = True
  spectral_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    smallest = 2**(self.num_layers - 1) + 1
    if min(x.shape[1:3]) < smallest:
      raise ValueError(
          f'ImageDiscriminator(num_layers={self.num_layers}) needs images of '
          f'at least {smallest}x{smallest} pixels, got {x.shape[1]}x'
          f'{x.shape[2]}: use num_layers <= '
          f'{max(1, int(min(x.shape[1:3]) - 1).bit_length())}.')
    channels = self.width
    for i in range(self.num_layers):
      if 0 < i < self.num_layers - 1:
        channels *= 2
      x = conv.LeakyReLUConv2d(channels, 3, 2, 1,
                               spectral_norm=self.spectral_norm,
                               dtype=self.dtype,
                               name=f'conv{i}')(x, update_stats=train)
    adv = conv.Conv2d(1, 1, padding=1 if self.zero_pad_head else 0,
                      pad_mode='zero', use_bias=False, dtype=self.dtype,
                      name='adv_head')(x)
    kernel = max(1, self.image_size // 64)
    if kernel > min(x.shape[1:3]):
      raise ValueError(
          f'The class head kernel {kernel} (image_size={self.image_size}) is '
          f'larger than the {x.shape[1]}x{x.shape[2]} trunk output: use fewer '
          'layers or check image_size.')
    cls = conv.Conv2d(self.num_domains, kernel, use_bias=False,
                      dtype=self.dtype, name='cls_head')(x)
    return compute.float32((adv, jnp.mean(cls, axis=(1, 2))))


class ContentDiscriminator(nn.Module):
  """Content discriminator D_c on z_c (spec §2.2.7): (B,h,w,C) → (B, N).

  Reference (`adaptive=False`): 3 × LeakyReLUConv2d(k7, s2, reflect 1) →
  LeakyReLUConv2d(k4, s1, no pad) → 1×1 conv (bias); it needs the map to end
  at exactly 1×1 (content maps of 53–60 px) and raises otherwise.
  `adaptive=True` (spec §7 B3 fix): the k7 blocks are added only while the
  padded input is at least 7 (at most 3), the k4 block only if the map is
  then at least 4×4, and a global average precedes the 1×1 classifier. It
  is identical to the reference where the reference runs (e.g. 54 px) and
  also works for 8 px content maps (32 px crops). `width` (default: the
  input channels, 256 in the reference) is the hidden width.
  """
  num_domains: int
  adaptive: bool = True
  width: int | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z_c):
    channels = self.width or z_c.shape[-1]
    x = z_c
    for i in range(3):
      if min(x.shape[1:3]) + 2 < 7:
        if self.adaptive:
          break
        raise ValueError(
            f'ContentDiscriminator(adaptive=False): k7 layer {i + 1} gets a '
            f'{x.shape[1] + 2}x{x.shape[2] + 2} padded input for '
            f'{z_c.shape[1]}x{z_c.shape[2]} content maps (spec bug B3); the '
            'reference only works for 53-60 px maps (crops of about 212-240): '
            'use adaptive=True.')
      x = conv.LeakyReLUConv2d(channels, 7, 2, 1, dtype=self.dtype,
                               name=f'conv{i}')(x)
    if not self.adaptive or min(x.shape[1:3]) >= 4:
      x = conv.LeakyReLUConv2d(channels, 4, 1, 0, dtype=self.dtype,
                               name='conv3')(x)
    if self.adaptive:
      x = jnp.mean(x, axis=(1, 2), keepdims=True)
    elif x.shape[1:3] != (1, 1):
      raise ValueError(
          f'ContentDiscriminator(adaptive=False) ends at {x.shape[1]}x'
          f'{x.shape[2]} for {z_c.shape[1]}x{z_c.shape[2]} content maps; the '
          'reference only works for 53-60 px maps (crops of about 212-240): '
          'use adaptive=True.')
    x = conv.Conv2d(self.num_domains, 1, dtype=self.dtype,
                    name='classifier')(x)
    return compute.float32(x.reshape(x.shape[0], self.num_domains))
