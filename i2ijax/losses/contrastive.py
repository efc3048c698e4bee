"""TUNIT's guiding-network losses and negative queue (spec §1.6.1-§1.6.3).

* `iic_loss(p, p_aug)`: IIC, −I(p; p⁺) estimated from the batch joint
  J = Σ_b p_b p⁺_bᵀ (symmetrised, normalised), with entries of J and of its
  marginals below 1e-10 replaced by 1e-10 (A22):
    L = −Σ_ij J_ij (ln J_ij − λ ln r_i − λ ln c_j),   −ln K ≤ L ≤ 0 at
  λ = 1 (the reference's default `lamb`; λ > 1 weights the entropy of the
  marginals more, as IIC's own code allows; no TUNIT config uses it).
* `info_nce(query, key, queue, queue_valid)`: MoCo InfoNCE with raw dot
  products (A5; `normalize=True` L2-normalises all three first):
    logits_b = [q_b·k_b, q_b·Q_1, …, q_b·Q_N] / τ,  L = mean_b CE(logits_b, 0),
  invalid queue rows masked out of the softmax. Keys and queue carry no
  gradient.
* `Queue`: a fixed-size ring buffer of N keys with a validity mask and a
  write pointer (Part III note 11). `enqueue` writes a batch over the oldest
  rows, so the valid rows are always exactly the newest min(N, seen) keys of
  the reference's growing `cat(Q, k)[-N:]` queue (their order differs, which
  InfoNCE does not see). `init_queue(size, dim)` is empty; the reference
  starts from one batch of keys, i.e. `enqueue(init_queue(...), keys_0)`.
"""

import flax
import jax
import jax.numpy as jnp

IIC_EPS = 1e-10
TEMPERATURE = 0.07


def _floor(v, eps=IIC_EPS):
  """Entries < eps replaced by eps (no gradient through replaced ones)."""
  return jnp.where(v < eps, eps, v)


def iic_loss(p: jnp.ndarray, p_aug: jnp.ndarray,
             marginal_weight: float = 1.0) -> jnp.ndarray:
  """−MI of the cluster assignments of two views (IIC).

  Args:
    p: (B, K) class probabilities of x (softmax of E's class logits).
    p_aug: (B, K) class probabilities of x⁺.
    marginal_weight: λ on the marginals' log terms (1 = −MI).
  Returns:
    scalar in [−ln K, 0] (up to the clamping) at λ = 1.
  """
  joint = p.T @ p_aug                          # Σ_b p_b p⁺_bᵀ, (K, K)
  joint = (joint + joint.T) / 2
  joint = joint / joint.sum()
  rows = joint.sum(axis=1, keepdims=True)      # marginals of unclamped J
  cols = joint.sum(axis=0, keepdims=True)
  joint, rows, cols = _floor(joint), _floor(rows), _floor(cols)
  return -jnp.sum(joint * (jnp.log(joint) - marginal_weight * (
      jnp.log(rows) + jnp.log(cols))))


def _l2_normalize(x, eps=1e-12):
  """x / max(‖x‖, eps) along the last axis (PyTorch `F.normalize`)."""
  norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(norm, eps)


def info_nce(query: jnp.ndarray, key: jnp.ndarray, queue: jnp.ndarray,
             queue_valid: jnp.ndarray | None = None,
             temperature: float = TEMPERATURE,
             normalize: bool = False) -> jnp.ndarray:
  """InfoNCE with the positive at index 0 and the queue as negatives.

  Args:
    query: (B, D), differentiable.
    key: (B, D) positives (gradient stopped here).
    queue: (N, D) negatives (gradient stopped here).
    queue_valid: (N,) bool; False rows are left out (None = all valid).
    temperature: τ, dividing every logit.
    normalize: L2-normalise query, key and queue first (off in TUNIT).
  Returns:
    scalar mean cross-entropy.
  """
  key, queue = jax.lax.stop_gradient(key), jax.lax.stop_gradient(queue)
  if normalize:
    query, key, queue = (_l2_normalize(query), _l2_normalize(key),
                         _l2_normalize(queue))
  positive = jnp.sum(query * key, axis=-1, keepdims=True) / temperature
  negative = query @ queue.T / temperature                  # (B, N)
  if queue_valid is not None:
    negative = jnp.where(queue_valid[None, :], negative, -jnp.inf)
  logits = jnp.concatenate([positive, negative], axis=-1)
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])


@flax.struct.dataclass
class Queue:
  """Ring buffer of negative keys.

  Attributes:
    keys: (N, D) float32; rows with `valid` False are unused.
    valid: (N,) bool.
    ptr: () int32, the next row to overwrite (the oldest once full).
  """
  keys: jnp.ndarray
  valid: jnp.ndarray
  ptr: jnp.ndarray


def init_queue(size: int = 1024, dim: int = 128) -> Queue:
  """An empty queue of `size` rows of `dim` features."""
  return Queue(keys=jnp.zeros((size, dim), jnp.float32),
               valid=jnp.zeros((size,), bool),
               ptr=jnp.zeros((), jnp.int32))


def enqueue(queue: Queue, keys: jnp.ndarray) -> Queue:
  """Writes `keys` (B, D) over the oldest rows (only the last N if B > N)."""
  size = queue.keys.shape[0]
  keys = jax.lax.stop_gradient(keys[-size:]).astype(queue.keys.dtype)
  rows = (queue.ptr + jnp.arange(keys.shape[0])) % size
  return Queue(keys=queue.keys.at[rows].set(keys),
               valid=queue.valid.at[rows].set(True),
               ptr=(queue.ptr + keys.shape[0]) % size)
