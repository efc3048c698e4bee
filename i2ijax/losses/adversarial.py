"""Adversarial and classification losses.

All functions take logits (never probabilities) and reduce to a scalar.
"""

import jax.numpy as jnp
import optax


def bce_with_logits(logits: jnp.ndarray, targets) -> jnp.ndarray:
  """Mean sigmoid binary cross entropy (PyTorch `BCEWithLogitsLoss`).

  Args:
    logits: any shape.
    targets: broadcastable to `logits`, in [0, 1].
  """
  targets = jnp.broadcast_to(jnp.asarray(targets, logits.dtype), logits.shape)
  return optax.sigmoid_binary_cross_entropy(logits, targets).mean()


def gan_loss_summed_over_batch(logits: jnp.ndarray, target: float):
  """Vanilla GAN loss, BCE averaged per sample and summed over the batch.

  This is the MDMM reference's reduction (spec §2.4, quirk B4): its loop meant
  for discriminator scales runs over the batch, so the loss is
  Σ_i mean_map BCE(σ(D(x_i)), target) = B × the usual mean.

  Args:
    logits: (B, h, w, 1) real/fake logit map.
    target: 1.0 for "real", 0.0 for "fake".
  """
  targets = jnp.full(logits.shape, target, logits.dtype)
  per_element = optax.sigmoid_binary_cross_entropy(logits, targets)
  return per_element.reshape(logits.shape[0], -1).mean(axis=1).sum()
