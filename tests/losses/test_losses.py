"""Losses against closed forms computed in numpy/scipy, called under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from i2ijax.losses import adversarial
from i2ijax.losses import divergences
from i2ijax.losses import reconstruction

RNG = np.random.default_rng(0)


def _np_bce(logits, targets):
  p = 1 / (1 + np.exp(-logits))
  return -(targets * np.log(p) + (1 - targets) * np.log(1 - p))


def test_bce_with_logits_matches_numpy():
  logits = RNG.normal(size=(4, 3)).astype(np.float32) * 3
  targets = (RNG.uniform(size=(4, 3)) > 0.5).astype(np.float32)
  got = jax.jit(adversarial.bce_with_logits)(logits, targets)
  np.testing.assert_allclose(got, _np_bce(logits, targets).mean(), rtol=1e-5)


def test_gan_loss_is_sum_over_batch_of_per_sample_means():
  logits = RNG.normal(size=(3, 4, 4, 1)).astype(np.float32)
  got = jax.jit(adversarial.gan_loss_summed_over_batch,
                static_argnums=1)(logits, 1.0)
  expected = _np_bce(logits, 1.0).reshape(3, -1).mean(1).sum()
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # A zero logit map costs ln 2 per sample (the B2 ring in MDMM's D).
  zeros = jnp.zeros((2, 6, 6, 1))
  np.testing.assert_allclose(
      adversarial.gan_loss_summed_over_batch(zeros, 0.0), 2 * np.log(2),
      rtol=1e-6)


def test_l1():
  a, b = RNG.normal(size=(2, 5)), RNG.normal(size=(2, 5))
  np.testing.assert_allclose(jax.jit(reconstruction.l1)(a, b),
                             np.abs(a - b).mean(), rtol=1e-5)


def test_kl_standard_normal_sum():
  mean = RNG.normal(size=(2, 8)).astype(np.float32)
  logvar = RNG.normal(size=(2, 8)).astype(np.float32)
  expected = 0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar)
  np.testing.assert_allclose(
      jax.jit(divergences.kl_standard_normal_sum)(mean, logvar), expected,
      rtol=1e-5)
  assert divergences.kl_standard_normal_sum(jnp.zeros((2, 3)),
                                            jnp.zeros((2, 3))) == 0


def test_log_normal_matches_scipy():
  x, mean = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
  var = RNG.uniform(0.2, 2.0, size=(3, 4))
  expected = stats.norm.logpdf(x, mean, np.sqrt(var + 1e-8)).sum(-1)
  np.testing.assert_allclose(jax.jit(divergences.log_normal)(x, mean, var),
                             expected, rtol=1e-5)


def test_gaussian_kl_closed_form_and_monte_carlo_agree():
  mean_q, mean_p = np.array([[0.5, -1.0]]), np.array([[0.0, 0.3]])
  var_q, var_p = np.array([[0.4, 1.5]]), np.array([[1.0, 0.7]])
  expected = 0.5 * np.sum(np.log(var_p / var_q) +
                          (var_q + (mean_q - mean_p)**2) / var_p - 1)
  np.testing.assert_allclose(
      jax.jit(divergences.gaussian_kl)(mean_q, var_q, mean_p, var_p), expected,
      rtol=1e-5)
  # The one-sample MC estimator is unbiased: average it over many samples.
  n = 200_000
  z = mean_q + np.sqrt(var_q) * RNG.normal(size=(n, 2))
  mc = divergences.gmvae_gaussian_kl(
      z, np.repeat(mean_q, n, 0), np.repeat(var_q, n, 0),
      np.repeat(mean_p, n, 0), np.repeat(var_p, n, 0))
  np.testing.assert_allclose(mc, expected, atol=0.02)
  assert divergences.gaussian_kl(mean_q, var_q, mean_q, var_q) == pytest.approx(
      0, abs=1e-6)


def test_domain_cross_entropy_one_component_is_softmax_ce():
  logits = RNG.normal(size=(5, 3)).astype(np.float32)
  labels = np.array([0, 2, 1, 1, 0])
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = -log_p[np.arange(5), labels].mean()
  got = jax.jit(divergences.domain_cross_entropy, static_argnums=2)(
      logits, labels, 1)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_domain_cross_entropy_sums_component_probabilities():
  logits = RNG.normal(size=(4, 6)).astype(np.float32)   # 3 domains × 2
  labels = np.array([0, 1, 2, 2])
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  p_domain = p.reshape(4, 3, 2).sum(-1)
  expected = -np.log(p_domain[np.arange(4), labels]).mean()
  np.testing.assert_allclose(
      divergences.domain_cross_entropy(logits, labels, 2), expected, rtol=1e-5)


def test_categorical_kl_uniform():
  assert divergences.categorical_kl_uniform(jnp.zeros((2, 4))) == pytest.approx(
      0, abs=1e-6)
  logits = RNG.normal(size=(3, 4))
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  expected = np.mean(np.sum(p * np.log(p * 4), -1))
  np.testing.assert_allclose(
      jax.jit(divergences.categorical_kl_uniform)(logits), expected, rtol=1e-5)
