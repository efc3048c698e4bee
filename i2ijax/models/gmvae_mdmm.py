"""GMVAE-MDMM networks, the spec's `gmvae_fixed` profile (spec §4.3, §4.4, §6).

`GMVAEAttributeEncoder` (E_a with a Gaussian-mixture posterior):
  f = AttributeTrunk(concat[x, tile(c)])              (B, 4·width) (§2.2.2)
  h = softplus(Linear(feature_dim)(f))
  q(y|h) = MLP(hidden, hidden) + GumbelSoftmax(num_components) → logits, prob, y
  q(z|h,y) = MLP(hidden, hidden) on concat[h, y] + GaussianHead(z_dim)
           → mean, var (a variance), z = mean + √(var + 1e-10)·ε.
`GMVAEGenerator`: the concat MDMM generator backbone (§2.2.4) conditioned on
y (K = y.shape[-1] components) in place of c, with the optional fixed-profile
AdaIN and double transposed convs, plus the prior heads
p(z|y) = (Linear(y), softplus(Linear(y))), reached with
`module.apply(variables, y, method='prior')`. `init` through `__call__`
creates every parameter, the prior heads included.

Deviations from the seed authors' code (irene-fagnani/MDMM, [AUTH]), all on
purpose and following spec §6/§7:
  * Q1/Q2: the generated image is the tanh output. There is no per-row
    "p(x|z)" MLP post-processing the image into [0, 1], so z_dim is free
    (default 8) instead of being forced to the crop width. The optional
    `aux_head` is the spec's GMVAE-style p(x|z) instead: MLP(z → hidden →
    hidden → 3·s·s, sigmoid) reconstructing an s×s (default 8) area-downsampled
    image in [0, 1] (`method='reconstruct'`); off by default.
  * `fcVar` (never used by [AUTH]) is not created.
  * Q7: the Gumbel temperature and `hard` are arguments (the caller anneals τ);
    [AUTH] always ran τ = 1, soft.
  * Q10/Q14: AdaIN is Linear(K → adain_hidden) → ReLU → Linear(→ 2C) split
    into γ, β with out = (1 + γ)·IN(x) + β and the biased variance; [AUTH]
    uses γ = β, the unbiased variance and a style size hard-coded to 2.
    `adain_hidden` defaults to the content width (256 in the spec).
  * Q13: only the concat generator exists (concat=0 is broken in [AUTH]).
  * Q15: every Linear uses PyTorch's default init, as in [AUTH] (not
    [GMVAE]'s Xavier init); convs N(0, 0.02²) as everywhere in MDMM.
  * The number of components K is a free argument (`num_components`), so K
    can exceed the number of domains N (E_a still receives the N-dim c);
    [AUTH] requires K = N.
  * The KL/prior choices (Q3, Q4, Q8) and the losses (Q5, Q6, Q12) belong to
    `i2ijax.objectives.mdmm`; this module only provides the heads.
Parameter counts at the [AUTH] sizes (N = K = 2, feature_dim = z_dim = 108,
hidden 512, width 64): E_a 2,119,558 (spec 2,147,314 minus the unused fcVar,
27,756); G 9,963,800 (spec 10,337,668 minus the 373,868 row-MLP).

`dtype` and `remat` as in `models.mdmm` (float32 params and outputs; the
heads' distributions in float32).
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.layers import init
from i2ijax.models import gmvae
from i2ijax.models import mdmm


class GMVAEAttributeEncoder(nn.Module):
  """E_a with q(y|x) and q(z|x,y) heads (spec §4.3, `gmvae_fixed`).

  x (B,H,W,3), c (B,N) → dict(mean, var, z, logits, prob, y): mean/var/z
  (B, z_dim), logits/prob/y (B, num_components). Noise from the 'gumbel' and
  'reparam' rng streams unless `gumbel_noise` / `gaussian_eps` are given.
  """
  num_components: int
  width: int = 64
  feature_dim: int = 8
  z_dim: int = 8
  hidden: int = 512
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, c, *, temperature, hard: bool = False,
               gumbel_noise=None, gaussian_eps=None):
    f = mdmm.AttributeTrunk(self.width, self.dtype, self.remat,
                            name='trunk')(x, c)
    h = jax.nn.softplus(init.dense(self.feature_dim, f.shape[-1],
                                   name='fc', dtype=self.dtype)(f))
    return gmvae.InferenceNet(self.z_dim, self.num_components, self.hidden,
                              self.dtype, name='inference')(
                                  h, temperature, hard, gumbel_noise,
                                  gaussian_eps)


class PriorHeads(nn.Module):
  """p(z|y): (Linear(y), softplus(Linear(y))), each (B, z_dim), float32."""
  z_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, y):
    mean, var = compute.float32((
        init.dense(self.z_dim, y.shape[-1], name='mean', dtype=self.dtype)(y),
        init.dense(self.z_dim, y.shape[-1], name='var', dtype=self.dtype)(y)))
    return mean, jax.nn.softplus(var)


class AuxDecoder(nn.Module):
  """Optional p(x|z): MLP(z → hidden → hidden → s·s·3), sigmoid, (B,s,s,3)."""
  hidden: int
  size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z):
    h = z
    for i in range(2):
      h = nn.relu(init.dense(self.hidden, h.shape[-1], name=f'fc{i}',
                             dtype=self.dtype)(h))
    out = compute.float32(init.dense(self.size * self.size * 3, self.hidden,
                                     name='out', dtype=self.dtype)(h))
    return jax.nn.sigmoid(out).reshape(z.shape[0], self.size, self.size, 3)


class GMVAEGenerator(nn.Module):
  """Concat generator conditioned on y, plus the prior p(z|y) (spec §4.4).

  __call__(z_c (B,h,w,Cc), z (B,z_dim), y (B,K)) → tanh image (B,4h,4w,3).
  prior(y) → (y_mean, y_var), (B, z_dim) each.
  reconstruct(z) → (B, aux_size, aux_size, 3) in (0, 1) (needs `aux_head`).
  """
  content_channels: int = 256
  z_dim: int = 8
  use_adain: bool = False
  double_convt: bool = False
  hidden: int = 512
  adain_hidden: int | None = None
  aux_head: bool = False
  aux_size: int = 8
  dtype: Any = jnp.float32
  remat: bool = False

  def setup(self):
    self.backbone = mdmm.Generator(
        content_channels=self.content_channels, nz=self.z_dim,
        use_adain=self.use_adain, adain_hidden=self.adain_hidden,
        double_convt=self.double_convt, dtype=self.dtype, remat=self.remat)
    self.pzy = PriorHeads(self.z_dim, self.dtype)
    if self.aux_head:
      self.pxz = AuxDecoder(self.hidden, self.aux_size, self.dtype)

  def __call__(self, z_c, z, y):
    image = self.backbone(z_c, z, y)
    if self.is_initializing():
      self.prior(y)
      if self.aux_head:
        self.reconstruct(z)
    return image

  def prior(self, y):
    """p(z|y) parameters (y_mean, y_var) for a (B, K) y."""
    return self.pzy(y)

  def reconstruct(self, z):
    """The optional p(x|z) head: a small image in (0, 1) from z."""
    if not self.aux_head:
      raise ValueError('GMVAEGenerator.reconstruct needs aux_head=True.')
    return self.pxz(z)
