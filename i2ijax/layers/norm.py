"""Normalisation layers of the MDMM family (NHWC).

* `instance_norm`: PyTorch `nn.InstanceNorm2d(C)` defaults (no affine, no
  running statistics, biased variance, eps 1e-5), spec §0.
* `LayerNorm`: the MDMM/DRIT generator LayerNorm (spec §1.3), i.e.
  `F.layer_norm` over all of (H, W, C) of each sample with a per-channel
  affine. It is *not* the MUNIT LayerNorm (unbiased std, eps outside).
* `AdaIN`: the `gmvae_fixed` AdaIN of spec §6 / Q10,
  out = (1 + γ(s))·IN(x) + β(s) with [γ, β] = MLP(s).

Each computes its statistics and affine transform in (at least) float32
and returns the input's dtype, so a bfloat16 network normalises in float32
(`layers.compute`); float32 inputs are computed exactly as before.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.layers import init

EPS = 1e-5


def _instance_norm(x, eps):
  """The instance-norm formula, in x's own dtype."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jnp.reciprocal(jnp.sqrt(var + eps))


def instance_norm(x: jnp.ndarray, eps: float = EPS) -> jnp.ndarray:
  """(x − μ_{h,w}) / √(σ²_{h,w} + eps) per sample and channel; x (B,H,W,C).

  Computed in float32 (at least), returned in x's dtype.
  """
  return _instance_norm(compute.upcast(x), eps).astype(x.dtype)


def affine_instance_norm(x: jnp.ndarray, scale: jnp.ndarray,
                         bias: jnp.ndarray, eps: float = EPS) -> jnp.ndarray:
  """IN(x)·scale + bias with per-sample (B, C) scale and bias; x (B,H,W,C).

  The AdaIN of MUNIT and TUNIT (scale = γ) and of GMVAE-MDMM (scale =
  1 + γ). Computed in float32 (at least), returned in x's dtype.
  """
  y = (_instance_norm(compute.upcast(x), eps) *
       compute.upcast(scale)[:, None, None, :] +
       compute.upcast(bias)[:, None, None, :])
  return y.astype(x.dtype)


class LayerNorm(nn.Module):
  """Layer norm over (H, W, C) per sample, then per-channel γ·x̂ + β.

  x̂ = (x − μ) / √(σ² + 1e-5), μ and biased σ² over all of H, W, C.
  Params `scale` (C,) = 1 and `bias` (C,) = 0 at init. x: (B, H, W, C).
  Computed in float32 (at least), returned in x's dtype.
  """
  eps: float = EPS

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (channels,))
    bias = self.param('bias', nn.initializers.zeros, (channels,))
    axes = tuple(range(1, x.ndim))
    y = compute.upcast(x)
    mean = jnp.mean(y, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(y - mean), axis=axes, keepdims=True)
    y = (y - mean) * jnp.reciprocal(jnp.sqrt(var + self.eps))
    return (y * scale + bias).astype(x.dtype)


class AdaIN(nn.Module):
  """Adaptive instance norm conditioned on a vector (spec §6 `gmvae_fixed`).

  [γ | β] = Linear(hidden→2C)(ReLU(Linear(D→hidden)(s))), split in that order;
  out = (1 + γ)·IN(x) + β. x: (B, H, W, C); s: (B, D). Both Linears use
  PyTorch's default init, so γ and β start small and the layer starts close
  to plain instance norm. The MLP computes in `dtype`, the norm in float32.
  """
  hidden: int = 256
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, s):
    channels = x.shape[-1]
    h = nn.relu(init.dense(self.hidden, s.shape[-1], name='mlp1',
                           dtype=self.dtype)(s))
    gamma_beta = init.dense(2 * channels, self.hidden, name='mlp2',
                            dtype=self.dtype)(h)
    gamma, beta = jnp.split(compute.upcast(gamma_beta), 2, axis=-1)
    return affine_instance_norm(x, 1.0 + gamma, beta)
