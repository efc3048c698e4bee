"""Reconstruction losses."""

import jax.numpy as jnp


def l1(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Mean absolute error over all elements (PyTorch `L1Loss`)."""
  return jnp.mean(jnp.abs(a - b))
