"""UNIT networks (spec unit_munit.md §4.4, §4.6), NHWC.

Per domain, the v1 code's `VAEGen` (NVlabs/MUNIT `networks.py`):
  encoder: ConvBlock(width, 7, 1, 3, IN, ReLU) → n_downsample ×
    ConvBlock(×2 channels, 4, 2, 1, IN, ReLU) → n_res × ResBlock(IN); its
    output is the latent mean h (B, S/4, S/4, 4·width), no activation;
  decoder: n_res × ResBlock(IN) → n_downsample × [nearest ×2 →
    ConvBlock(÷2 channels, 5, 1, 2, MUNIT LayerNorm, ReLU)] →
    ConvBlock(3, 7, 1, 3, none, tanh).
Reflect padding, kaiming-normal(fan_in) kernels, zero biases (§1.5).
With the defaults (width 64, n_downsample 2, n_res 4) one domain has
11,140,483 parameters and h is (B, 64, 64, 256) for a 256 px input.

`UNITGenerator` holds both domains with the paper's weight sharing (§4.1,
§4.6): the last `shared_layers` encoder res blocks (`enc_shared`) and the
first `shared_layers` decoder res blocks (`dec_shared`) are single modules
used by both domains, so their parameters exist once and receive gradient
from both. The latent z = h + η (training) is formed *after* `enc_shared`,
i.e. it enters `dec_shared`. `shared_layers=0` is the public v1 code
exactly (two independent `VAEGen`s: `enc_a`+`dec_a`, `enc_b`+`dec_b`);
`shared_layers=1` is the paper's 1 + 1 shared res blocks, which removes
2 × 1,180,160 parameters from the sum of the two domains at the defaults.
Deviation from the paper's Table 3 (LeakyReLU, transposed convs, no norms,
N512): the v1 layer types are used throughout, as the spec recommends (§8.3).

`DomainDiscriminators` holds `dis_a` and `dis_b`, two independent
`munit_blocks.MsImageDis` (never shared for translation).

`dtype` / `remat` (`layers.compute`): both networks compute in `dtype` with
float32 params and return float32; `remat` rematerialises the generator's
residual blocks (shared ones included).
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.models import munit_blocks as blocks

DOMAINS = ('a', 'b')


class EncoderFront(nn.Module):
  """Stem conv, stride-2 convs and `n_res` res blocks, all IN + ReLU.

  x (B, S, S, C) → (B, S/2^n, S/2^n, width·2^n). Children `conv_0` …
  `conv_{n_downsample}` and `res` (`ResBlocks`).
  """
  width: int = 64
  n_downsample: int = 2
  n_res: int = 4
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x):
    common = dict(norm='in', activation=self.activation,
                  pad_type=self.pad_type, kernel_init=self.kernel_init,
                  dtype=self.dtype)
    x = blocks.ConvBlock(self.width, 7, 1, 3, name='conv_0', **common)(x)
    features = self.width
    for i in range(self.n_downsample):
      features *= 2
      x = blocks.ConvBlock(features, 4, 2, 1, name=f'conv_{i + 1}',
                           **common)(x)
    return blocks.ResBlocks(self.n_res, 'in', self.activation, self.pad_type,
                            self.kernel_init, self.dtype, self.remat,
                            name='res')(x)


class DecoderBack(nn.Module):
  """`n_res` IN res blocks, upsampling convs with MUNIT LN, tanh output.

  z (B, s, s, C) → (B, s·2^n, s·2^n, out_channels) in [-1, 1]. Children
  `res`, `up_0` … `up_{n_upsample−1}`, `out`.
  """
  n_res: int = 4
  n_upsample: int = 2
  out_channels: int = 3
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, z):
    x = blocks.ResBlocks(self.n_res, 'in', self.activation, self.pad_type,
                         self.kernel_init, self.dtype, self.remat,
                         name='res')(z.astype(self.dtype))
    features = z.shape[-1]
    for i in range(self.n_upsample):
      features //= 2
      x = blocks.ConvBlock(features, 5, 1, 2, 'ln', self.activation,
                           self.pad_type, self.kernel_init, self.dtype,
                           upsample=2, name=f'up_{i}')(x)
    return blocks.ConvBlock(self.out_channels, 7, 1, 3, 'none', 'tanh',
                            self.pad_type, self.kernel_init, self.dtype,
                            name='out')(x)


class VAEGen(nn.Module):
  """One domain's VAE (the v1 `VAEGen`): `encode(x)` → mean h, `decode(h)`.

  The noise of the reparameterisation is added by the caller (z = h + η).
  """
  width: int = 64
  n_downsample: int = 2
  n_res: int = 4
  out_channels: int = 3
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  remat: bool = False

  def setup(self):
    common = (self.activation, self.pad_type, self.kernel_init, self.dtype,
              self.remat)
    self.enc = EncoderFront(self.width, self.n_downsample, self.n_res,
                            *common)
    self.dec = DecoderBack(self.n_res, self.n_downsample, self.out_channels,
                           *common)

  def encode(self, x):
    return compute.float32(self.enc(x))

  def decode(self, h):
    return compute.float32(self.dec(h))

  def __call__(self, x):
    return self.decode(self.encode(x))


class UNITGenerator(nn.Module):
  """Both domains' encoders and decoders with `shared_layers` shared blocks.

  `encode(x, domain)` → latent mean h; `decode(z, domain)` → image, with
  `domain` a Python int (0 = a, 1 = b). Children `enc_a`, `enc_b`
  (`EncoderFront` with n_res − shared_layers blocks), `enc_shared`,
  `dec_shared` (`ResBlocks` of shared_layers blocks; absent from the params
  when 0), `dec_a`, `dec_b` (`DecoderBack`).
  """
  width: int = 64
  n_downsample: int = 2
  n_res: int = 4
  shared_layers: int = 1
  out_channels: int = 3
  activation: str = 'relu'
  pad_type: str = 'reflect'
  kernel_init: str = 'kaiming'
  dtype: Any = jnp.float32
  remat: bool = False

  def setup(self):
    if not 0 <= self.shared_layers <= self.n_res:
      raise ValueError(f'shared_layers={self.shared_layers} must be in '
                       f'[0, n_res={self.n_res}].')
    own = self.n_res - self.shared_layers
    common = (self.activation, self.pad_type, self.kernel_init, self.dtype,
              self.remat)

    def enc():
      return EncoderFront(self.width, self.n_downsample, own, *common)

    def dec():
      return DecoderBack(own, self.n_downsample, self.out_channels, *common)

    def shared():
      return blocks.ResBlocks(self.shared_layers, 'in', *common)

    self.enc_a, self.enc_b = enc(), enc()
    self.enc_shared, self.dec_shared = shared(), shared()
    self.dec_a, self.dec_b = dec(), dec()

  def encode(self, x, domain: int):
    """Latent mean h = E_domain(x): (B, S/2^n, S/2^n, width·2^n)."""
    front = (self.enc_a, self.enc_b)[domain]
    return compute.float32(self.enc_shared(front(x)))

  def decode(self, z, domain: int):
    """G_domain(z): (B, S, S, out_channels) in [-1, 1]."""
    back = (self.dec_a, self.dec_b)[domain]
    return compute.float32(back(self.dec_shared(z.astype(self.dtype))))

  def __call__(self, x):
    """Initialises every part: (G_a(E_a(x)), G_b(E_b(x)))."""
    return tuple(self.decode(self.encode(x, d), d) for d in (0, 1))


class DomainDiscriminators(nn.Module):
  """`dis_a`, `dis_b`: independent multi-scale LSGAN discriminators.

  `__call__(x, domain, update_stats=False)` → list of score maps of D_domain
  (`domain` a Python int).
  """
  dim: int = 64
  n_layer: int = 4
  num_scales: int = 3
  norm: str = 'none'
  activation: str = 'lrelu'
  pad_type: str = 'reflect'
  kernel_init: str = 'gaussian'
  dtype: Any = jnp.float32

  def setup(self):
    def make():
      return blocks.MsImageDis(self.dim, self.n_layer, self.num_scales,
                               self.norm, self.activation, self.pad_type,
                               self.kernel_init, self.dtype)

    self.dis_a, self.dis_b = make(), make()

  def __call__(self, x, domain: int | None = None, *,
               update_stats: bool = False):
    if domain is None:   # init: both
      return [self(x, d, update_stats=update_stats) for d in (0, 1)]
    return (self.dis_a, self.dis_b)[domain](x, update_stats=update_stats)
