"""Multi-scale GAN losses of MUNIT / UNIT (spec unit_munit.md §1.7).

Each argument is the list of score maps of `MsImageDis` (one per scale, any
shape). Every loss is a mean over all elements of a map, **summed** over the
scales (no averaging over scales, no ½ factor):

  lsgan: L_D = Σ_k mean((D_k(fake) − 0)²) + mean((D_k(real) − 1)²)
         L_G = Σ_k mean((D_k(fake) − 1)²)
  nsgan: the same with sigmoid binary cross entropy on the logits (fake → 0,
         real → 1 for D; fake → 1 for G). The reference clamps log at −100
         (PyTorch BCE); the logit form here is exact and differs only for
         |logit| > 100.
"""

from collections.abc import Sequence

import jax.numpy as jnp
import optax

GAN_TYPES = ('lsgan', 'nsgan')


def _check(gan_type):
  if gan_type not in GAN_TYPES:
    raise ValueError(f'Unknown gan_type {gan_type!r}; use one of {GAN_TYPES}.')


def _bce(logits, target):
  targets = jnp.full(logits.shape, target, logits.dtype)
  return optax.sigmoid_binary_cross_entropy(logits, targets).mean()


def d_loss(real: Sequence[jnp.ndarray], fake: Sequence[jnp.ndarray],
           gan_type: str = 'lsgan') -> jnp.ndarray:
  """Discriminator loss summed over scales (`MsImageDis.calc_dis_loss`)."""
  _check(gan_type)
  if len(real) != len(fake):
    raise ValueError(f'{len(real)} real but {len(fake)} fake score maps.')
  total = 0.0
  for r, f in zip(real, fake):
    if gan_type == 'lsgan':
      total += jnp.mean(jnp.square(f)) + jnp.mean(jnp.square(r - 1.0))
    else:
      total += _bce(f, 0.0) + _bce(r, 1.0)
  return total


def g_loss(fake: Sequence[jnp.ndarray], gan_type: str = 'lsgan'
           ) -> jnp.ndarray:
  """Generator loss summed over scales (`MsImageDis.calc_gen_loss`)."""
  _check(gan_type)
  total = 0.0
  for f in fake:
    if gan_type == 'lsgan':
      total += jnp.mean(jnp.square(f - 1.0))
    else:
      total += _bce(f, 1.0)
  return total
