"""Initialisers that reproduce the PyTorch reference networks' initial state.

The MDMM family (spec §1.4) re-initialises every conv and transposed-conv
weight as N(0, 0.02²) and leaves everything else at PyTorch's defaults:

  * conv / transposed-conv bias: U(−1/√fan_in, 1/√fan_in), where fan_in is
    Cin·k² for `Conv2d` and **Cout·k²** for `ConvTranspose2d` (PyTorch reads
    the fan from weight dim 1, which is the output dim of a transposed conv);
  * `nn.Linear` weight and bias: U(−1/√in, 1/√in) (kaiming-uniform with
    a = √5 gives exactly this bound).

Flax bias initialisers only see the bias shape, so the fan-in is bound in a
closure: `torch_bias(fan_in)`.
"""

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

# N(0, 0.02²) weights of every conv and transposed conv (not truncated).
conv_kernel = nn.initializers.normal(stddev=0.02)


def _uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def torch_bias(fan_in: int):
  """PyTorch's default bias init, U(−1/√fan_in, 1/√fan_in)."""
  return _uniform(1.0 / math.sqrt(fan_in))


def torch_linear_kernel(key, shape, dtype=jnp.float32):
  """PyTorch's default Linear weight init for a Flax (in, out) kernel."""
  return _uniform(1.0 / math.sqrt(shape[0]))(key, shape, dtype)


def dense(features: int, in_features: int, name: str | None = None,
          dtype=jnp.float32):
  """`nn.Dense` initialised as PyTorch's `nn.Linear(in_features, features)`.

  Float32 params; computes in `dtype` (`layers.compute`).
  """
  return nn.Dense(features, kernel_init=torch_linear_kernel,
                  bias_init=torch_bias(in_features), name=name, dtype=dtype)
