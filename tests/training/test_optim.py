"""Per-group optimizers: PyTorch-Adam coupled L2, clipping, schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax.training import optim


def _torch_adam_l2(param, grads, lr, b1, b2, eps, wd):
  """Reference: PyTorch Adam with weight_decay (L2 added to the gradient)."""
  m = v = np.zeros_like(param)
  for t, g in enumerate(grads, start=1):
    g = g + wd * param
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
  return param


def test_adam_with_coupled_weight_decay_matches_pytorch_formula():
  cfg = config_lib.optim_config(1e-2)
  cfg.weight_decay = 0.1
  tx = optim.make_optimizer(cfg)
  rng = np.random.default_rng(0)
  param = rng.normal(size=(5,)).astype(np.float32)
  grads = [rng.normal(size=(5,)).astype(np.float32) for _ in range(4)]
  params, state = jnp.asarray(param), tx.init(jnp.asarray(param))
  update = jax.jit(tx.update)
  for g in grads:
    updates, state = update(jnp.asarray(g), state, params)
    params = params + updates
  expected = _torch_adam_l2(param.astype(np.float64), grads, 1e-2, 0.5, 0.999,
                            1e-8, 0.1)
  np.testing.assert_allclose(params, expected, rtol=1e-4, atol=1e-6)


def test_learning_rate_is_injected_per_step():
  cfg = config_lib.optim_config(1e-3)
  cfg.weight_decay = 0.0
  tx = optim.make_optimizer(cfg)
  params = jnp.ones(3)
  state = optim.set_learning_rate(tx.init(params), 0.0)
  updates, _ = tx.update(jnp.ones(3), state, params)
  np.testing.assert_allclose(updates, 0.0)
  state = optim.set_learning_rate(tx.init(params), 0.5)
  updates, _ = tx.update(jnp.ones(3), state, params)
  np.testing.assert_allclose(updates, -0.5, rtol=1e-4)


def test_linear_decay_schedule_is_the_mdmm_lambda_policy():
  cfg = config_lib.optim_config(1.0)
  cfg.update(dict(schedule='linear_decay', decay_start_steps=600))
  schedule = optim.make_schedule(cfg, num_steps=1200)
  assert schedule(0) == pytest.approx(1.0)
  assert schedule(600) == pytest.approx(1.0)
  assert schedule(1199) == pytest.approx(1 - 599 / 601)


def test_unknown_schedule_is_a_clear_error():
  cfg = config_lib.optim_config(1.0)
  cfg.schedule = 'cosine_typo'
  with pytest.raises(ValueError, match='cosine_typo'):
    optim.make_schedule(cfg, 10)


def _torch_rmsprop_l2(param, grads, lr, alpha, eps, wd):
  """Reference: PyTorch RMSprop (no momentum, not centred) with L2."""
  square_avg = np.zeros_like(param)
  for g in grads:
    g = g + wd * param
    square_avg = alpha * square_avg + (1 - alpha) * g * g
    param = param - lr * g / (np.sqrt(square_avg) + eps)
  return param


def test_rmsprop_matches_pytorch_formula_with_eps_outside_the_sqrt():
  cfg = config_lib.optim_config(1e-2)
  cfg.update(dict(name='rmsprop', weight_decay=0.1, eps=1e-3))
  tx = optim.make_optimizer(cfg)
  rng = np.random.default_rng(0)
  param = rng.normal(size=(5,)).astype(np.float32)
  # Tiny gradients make eps matter: inside the sqrt it would differ a lot.
  grads = [rng.normal(size=(5,)).astype(np.float32) * 1e-3 for _ in range(3)]
  params, state = jnp.asarray(param), tx.init(jnp.asarray(param))
  update = jax.jit(tx.update)
  for g in grads:
    updates, state = update(jnp.asarray(g), state, params)
    params = params + updates
  expected = _torch_rmsprop_l2(param.astype(np.float64), grads, 1e-2, 0.99,
                               1e-3, 0.1)
  np.testing.assert_allclose(params, expected, rtol=1e-5, atol=1e-6)
  # The learning rate is injected like Adam's.
  state = optim.set_learning_rate(tx.init(params), 0.0)
  updates, _ = tx.update(jnp.ones(5), state, params)
  np.testing.assert_allclose(updates, 0.0)


def test_unknown_optimizer_name_is_a_clear_error():
  cfg = config_lib.optim_config(1.0)
  cfg.name = 'sgd'
  with pytest.raises(ValueError, match='sgd'):
    optim.make_optimizer(cfg)
