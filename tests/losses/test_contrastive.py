"""TUNIT losses: IIC, InfoNCE and the negative queue vs numpy; hinge, R1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax.losses import adversarial
from i2ijax.losses import contrastive


def _iic_numpy(p, p_aug):
  joint = (p[:, :, None] * p_aug[:, None, :]).sum(0)
  joint = (joint + joint.T) / 2
  joint = joint / joint.sum()
  rows = joint.sum(1, keepdims=True)
  cols = joint.sum(0, keepdims=True)
  joint, rows, cols = (np.maximum(a, 1e-10) for a in (joint, rows, cols))
  return -(joint * (np.log(joint) - np.log(rows) - np.log(cols))).sum()


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_iic_matches_numpy():
  rng = np.random.default_rng(0)
  p = _softmax(rng.normal(size=(16, 5)) * 2)
  p_aug = _softmax(rng.normal(size=(16, 5)) * 2)
  loss = jax.jit(contrastive.iic_loss)(jnp.asarray(p), jnp.asarray(p_aug))
  np.testing.assert_allclose(loss, _iic_numpy(p, p_aug), rtol=1e-5)
  assert -np.log(5) <= float(loss) <= 0


def test_iic_marginal_weight_is_the_references_lamb():
  """L_λ = −Σ J (ln J − λ ln r − λ ln c) = L_1 − (λ − 1)·2·H(r) for the
  symmetric J: more weight on balanced marginals."""
  rng = np.random.default_rng(1)
  p = _softmax(rng.normal(size=(16, 4)) * 2)
  p_aug = _softmax(rng.normal(size=(16, 4)) * 2)
  joint = p.T @ p_aug
  joint = (joint + joint.T) / 2
  joint /= joint.sum()
  marginal = joint.sum(1)
  entropy = -np.sum(marginal * np.log(marginal))
  np.testing.assert_allclose(
      contrastive.iic_loss(p, p_aug, marginal_weight=1.5),
      _iic_numpy(p, p_aug) - 0.5 * 2 * entropy, rtol=1e-5)


def test_iic_minimum_is_minus_log_k_for_a_perfect_balanced_clustering():
  k = 4
  p = jax.nn.one_hot(jnp.arange(12) % k, k)
  # Off-diagonal entries are clamped to 1e-10, a ~1e-8 correction.
  np.testing.assert_allclose(contrastive.iic_loss(p, p), -np.log(k),
                             atol=1e-6)
  np.testing.assert_allclose(contrastive.iic_loss(p, p),
                             _iic_numpy(np.asarray(p), np.asarray(p)),
                             rtol=1e-6)


def test_iic_is_zero_for_independent_views():
  # Same soft assignment everywhere: J = a aᵀ, MI = 0.
  p = jnp.tile(jnp.array([[0.5, 0.3, 0.2]]), (8, 1))
  np.testing.assert_allclose(contrastive.iic_loss(p, p), 0.0, atol=1e-6)
  # Hard labels whose pairs cover every (i, j) equally often: J = 1/K².
  labels = jnp.arange(9)
  p = jax.nn.one_hot(labels // 3, 3)
  p_aug = jax.nn.one_hot(labels % 3, 3)
  np.testing.assert_allclose(contrastive.iic_loss(p, p_aug), 0.0, atol=1e-6)


def test_iic_gradient_is_finite_with_empty_clusters():
  logits = jnp.array([[9.0, -9.0, -40.0], [-9.0, 9.0, -40.0]])
  grad = jax.grad(lambda z: contrastive.iic_loss(
      jax.nn.softmax(z), jax.nn.softmax(z)))(logits)
  assert np.all(np.isfinite(grad))


def _info_nce_numpy(q, k, queue, valid, tau, normalize=False):
  if normalize:
    unit = lambda a: a / np.maximum(  # noqa: E731
        np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    q, k, queue = unit(q), unit(k), unit(queue)
  losses = []
  for b in range(q.shape[0]):
    logits = [q[b] @ k[b] / tau] + [q[b] @ queue[n] / tau
                                    for n in range(len(queue)) if valid[n]]
    logits = np.array(logits, np.float64)
    losses.append(np.log(np.exp(logits - logits.max()).sum()) +
                  logits.max() - logits[0])
  return np.mean(losses)


@pytest.mark.parametrize('normalize', [False, True])
def test_info_nce_matches_numpy_with_a_partly_filled_queue(normalize):
  rng = np.random.default_rng(1)
  q, k = rng.normal(size=(2, 4, 6)).astype(np.float32) * 0.3
  queue = np.zeros((10, 6), np.float32)
  queue[:7] = rng.normal(size=(7, 6)) * 0.3
  valid = np.arange(10) < 7
  loss = jax.jit(contrastive.info_nce, static_argnames='normalize')(
      q, k, queue, valid, 0.07, normalize=normalize)
  np.testing.assert_allclose(
      loss, _info_nce_numpy(q, k, queue, valid, 0.07, normalize), rtol=1e-5)
  # Masked rows do not count, whatever they hold, and get no gradient.
  garbage = queue.copy()
  garbage[7:] = 100.0
  np.testing.assert_allclose(
      contrastive.info_nce(q, k, garbage, valid, normalize=normalize), loss,
      rtol=1e-5)
  grads = jax.grad(contrastive.info_nce, argnums=(0, 1, 2))(
      jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), valid,
      normalize=normalize)
  assert np.all(np.isfinite(grads[0])) and np.any(grads[0] != 0)
  assert np.all(grads[1] == 0) and np.all(grads[2] == 0)


def test_info_nce_without_negatives_is_zero():
  q = jnp.ones((3, 4))
  queue = jnp.zeros((5, 4))
  loss = contrastive.info_nce(q, q, queue, jnp.zeros((5,), bool))
  np.testing.assert_allclose(loss, 0.0, atol=1e-6)


def test_queue_keeps_the_newest_rows_fifo():
  size, dim, batch = 5, 2, 2
  queue = contrastive.init_queue(size, dim)
  assert not np.any(queue.valid) and queue.keys.shape == (size, dim)
  enqueue = jax.jit(contrastive.enqueue)
  reference = np.zeros((0, dim), np.float32)   # the growing PyTorch queue
  for step in range(7):                         # 14 keys: wraps around twice
    keys = np.full((batch, dim), step, np.float32)
    keys[:, 1] = np.arange(batch) + 10 * step
    queue = enqueue(queue, keys)
    reference = np.concatenate([reference, keys])[-size:]
    valid = np.asarray(queue.valid)
    assert valid.sum() == min(size, batch * (step + 1))
    ours = np.asarray(queue.keys)[valid]
    assert sorted(map(tuple, ours)) == sorted(map(tuple, reference))
  assert int(queue.ptr) == (7 * batch) % size


def test_queue_batch_larger_than_queue_keeps_its_last_rows():
  queue = contrastive.init_queue(3, 1)
  keys = jnp.arange(5.0)[:, None]
  queue = contrastive.enqueue(queue, keys)
  assert sorted(np.asarray(queue.keys)[:, 0]) == [2.0, 3.0, 4.0]
  assert np.all(queue.valid)


def test_queue_is_a_pytree():
  queue = contrastive.init_queue(4, 3)
  leaves = jax.tree.leaves(queue)
  assert [a.shape for a in leaves] == [(4, 3), (4,), ()]


def test_hinge_losses():
  real = jnp.array([2.0, 0.5, -1.0])
  fake = jnp.array([-2.0, 0.0, 1.0])
  # relu(1 − real) = [0, .5, 2], relu(1 + fake) = [0, 1, 2].
  np.testing.assert_allclose(adversarial.hinge_d_loss(real, fake),
                             2.5 / 3 + 3 / 3, rtol=1e-6)
  np.testing.assert_allclose(adversarial.hinge_g_loss(fake), 1 / 3,
                             rtol=1e-6)


def test_r1_penalty_matches_finite_differences():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 4, 4, 2))
  w = rng.normal(size=(4, 4, 2))

  def logits(v):                                # per-sample, non-linear
    return jnp.sum(jnp.tanh(v * w), axis=(1, 2, 3))

  with jax.enable_x64():
    penalty = adversarial.r1_penalty(logits, jnp.asarray(x))
    eps, grad = 1e-6, np.zeros_like(x)
    total = lambda v: float(jnp.sum(logits(jnp.asarray(v))))  # noqa: E731
    for idx in np.ndindex(x.shape):
      up, down = x.copy(), x.copy()
      up[idx] += eps
      down[idx] -= eps
      grad[idx] = (total(up) - total(down)) / (2 * eps)
  np.testing.assert_allclose(penalty, np.sum(grad**2) / 3, rtol=1e-6)


def test_r1_penalty_is_differentiable_in_the_params():
  x = jnp.ones((2, 3))
  def penalty(w):
    return adversarial.r1_penalty(lambda v: jnp.sum(w * v**2, axis=1), x)
  w = jnp.array([1.0, 2.0, 3.0])
  # ∂/∂v Σ w v² = 2 w v = 2w at v = 1: R1 = 2·Σ 4w²/2 = 4 Σ w².
  np.testing.assert_allclose(penalty(w), 4 * 14.0, rtol=1e-6)
  np.testing.assert_allclose(jax.grad(penalty)(w), 8 * w, rtol=1e-6)
