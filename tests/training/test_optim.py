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
