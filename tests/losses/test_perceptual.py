"""Domain-invariant perceptual loss (losses/perceptual.py) against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax.losses import perceptual


def _features(seed, shape=(3, 4, 5, 6), scale=1.0):
  rng = np.random.default_rng(seed)
  return (scale * rng.normal(size=shape)).astype(np.float32)


def _np_loss(f, g, eps=1e-5):
  """mean over B×h×w×C of (IN(f) − IN(g))², IN per (sample, channel)."""
  def inorm(x):
    x = x.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean)**2).mean(axis=(1, 2), keepdims=True)   # biased
    return (x - mean) / np.sqrt(var + eps)
  return np.mean((inorm(f) - inorm(g))**2)


def test_vgg_loss_matches_numpy():
  f, g = _features(0), _features(1)
  got = jax.jit(perceptual.vgg_loss)(f, g)
  np.testing.assert_allclose(got, _np_loss(f, g), rtol=1e-5)
  # Small variances show that ε = 1e-5 sits inside the square root.
  f, g = _features(2, scale=3e-3), _features(3, scale=1e-2)
  np.testing.assert_allclose(jax.jit(perceptual.vgg_loss)(f, g),
                             _np_loss(f, g), rtol=1e-4)


def test_vgg_loss_is_zero_for_identical_features():
  f = _features(4)
  assert float(perceptual.vgg_loss(f, f)) == 0.0


def test_vgg_loss_ignores_per_channel_affine_changes():
  """IN removes each channel's mean and scale: the loss compares content."""
  f, g = _features(5, scale=10.0), _features(6, scale=10.0)
  rng = np.random.default_rng(7)
  a = rng.uniform(0.5, 3.0, size=(3, 1, 1, 6)).astype(np.float32)
  b = rng.normal(scale=5.0, size=(3, 1, 1, 6)).astype(np.float32)
  base = perceptual.vgg_loss(f, g)
  np.testing.assert_allclose(perceptual.vgg_loss(a * f + b, g), base,
                             rtol=1e-4)
  np.testing.assert_allclose(perceptual.vgg_loss(f, a * g + b), base,
                             rtol=1e-4)
  assert float(perceptual.vgg_loss(f, a * f + b)) < 1e-6


def test_vgg_loss_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match='shapes'):
    perceptual.vgg_loss(_features(0), _features(1, shape=(3, 4, 5, 7)))


def test_vgg_losses_pairs_and_constant_targets():
  """K pairs through one batched feature call; targets get no gradient."""
  weights = jnp.asarray(_features(8, shape=(3, 4)))
  features_fn = lambda x: jnp.tanh(x @ weights)   # per sample (and pixel)
  images = [_features(9, (2, 5, 5, 3)), _features(10, (2, 5, 5, 3))]
  targets = [_features(11, (2, 5, 5, 3)), _features(12, (2, 5, 5, 3))]
  got = perceptual.vgg_losses(features_fn, images, targets)
  for value, image, target in zip(got, images, targets):
    np.testing.assert_allclose(value, _np_loss(
        np.asarray(features_fn(image)), np.asarray(features_fn(target))),
                               rtol=1e-5)
  grads = jax.grad(lambda i, t: sum(perceptual.vgg_losses(
      features_fn, i, t)), argnums=(0, 1))(images, targets)
  assert all(float(jnp.abs(g).max()) > 0 for g in grads[0])
  assert all(float(jnp.abs(g).max()) == 0 for g in grads[1])
