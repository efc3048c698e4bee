"""Domain-invariant perceptual loss (MUNIT / UNIT, spec unit_munit.md §1.8).

Instance-normalising the VGG features removes their per-channel mean and
scale, the "style" statistics, so the loss compares content only:

  L_vgg(img, target) = mean_{B×h×w×C} (IN(f(img)) − IN(f(target)))²,

with f the frozen VGG16 relu5_3 features (`models.vgg`) and IN the
affine-free instance norm (per sample and channel over h×w, biased
variance, ε = 1e-5 inside the square root).
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from i2ijax.layers import norm
from i2ijax.models import vgg


def vgg_loss(features: jnp.ndarray, features_target: jnp.ndarray,
             eps: float = norm.EPS) -> jnp.ndarray:
  """mean((IN(features) − IN(features_target))²); both (B, h, w, C)."""
  if features.shape != features_target.shape:
    raise ValueError(f'Feature shapes differ: {features.shape} vs '
                     f'{features_target.shape}.')
  return jnp.mean(jnp.square(norm.instance_norm(features, eps) -
                             norm.instance_norm(features_target, eps)))


def vgg_losses(features_fn: Callable[[jnp.ndarray], jnp.ndarray],
               images: Sequence[jnp.ndarray],
               targets: Sequence[jnp.ndarray]) -> list[jnp.ndarray]:
  """[L_vgg(images[k], targets[k]) for each k] with two `features_fn` calls.

  Args:
    features_fn: (N, S, S, 3) → (N, h, w, C), e.g. `models.vgg.relu5_3`
      with its params bound; every op must be per sample.
    images: K arrays (B, S, S, 3), e.g. the translations [x_ba, x_ab].
    targets: K arrays of the same shapes, e.g. their content sources
      [x_b, x_a]; constants (no gradient flows through them).
  Returns:
    K scalars.
  """
  k = len(images)
  feats = jnp.split(features_fn(jnp.concatenate(images)), k)
  target_feats = jnp.split(jax.lax.stop_gradient(
      features_fn(jnp.concatenate(targets))), k)
  return [vgg_loss(f, t) for f, t in zip(feats, target_feats)]


def translation_vgg_losses(vgg_params: dict | None,
                           translations: Sequence[jnp.ndarray],
                           sources: Sequence[jnp.ndarray]
                           ) -> list[jnp.ndarray]:
  """MUNIT / UNIT's L_vgg of each translation against its content source.

  Args:
    vgg_params: the frozen VGG16 params, `state.model_state['vgg']` (set by
      the objective's `init` when `loss.vgg` > 0).
    translations: e.g. [x_ba, x_ab], each (B, S, S, 3) in [-1, 1].
    sources: e.g. [x_b, x_a], the images whose content they carry.
  Returns:
    [L_vgg(x_ba, x_b), L_vgg(x_ab, x_a), ...] on relu5_3 features.
  """
  if vgg_params is None:
    raise ValueError('loss.vgg > 0 needs the VGG16 params '
                     "(state.model_state['vgg'], set by `init`).")
  return vgg_losses(lambda x: vgg.relu5_3(vgg_params, x), translations,
                    sources)
