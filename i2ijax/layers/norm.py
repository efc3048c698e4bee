"""Normalisation layers of the MDMM family (NHWC).

* `instance_norm`: PyTorch `nn.InstanceNorm2d(C)` defaults (no affine, no
  running statistics, biased variance, eps 1e-5), spec §0.
* `LayerNorm`: the MDMM/DRIT generator LayerNorm (spec §1.3), i.e.
  `F.layer_norm` over all of (H, W, C) of each sample with a per-channel
  affine. It is *not* the MUNIT LayerNorm (unbiased std, eps outside).
* `AdaIN`: the `gmvae_fixed` AdaIN of spec §6 / Q10,
  out = (1 + γ(s))·IN(x) + β(s) with [γ, β] = MLP(s).
"""

import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import init

EPS = 1e-5


def instance_norm(x: jnp.ndarray, eps: float = EPS) -> jnp.ndarray:
  """(x − μ_{h,w}) / √(σ²_{h,w} + eps) per sample and channel; x (B,H,W,C)."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jnp.reciprocal(jnp.sqrt(var + eps))


class LayerNorm(nn.Module):
  """Layer norm over (H, W, C) per sample, then per-channel γ·x̂ + β.

  x̂ = (x − μ) / √(σ² + 1e-5), μ and biased σ² over all of H, W, C.
  Params `scale` (C,) = 1 and `bias` (C,) = 0 at init. x: (B, H, W, C).
  """
  eps: float = EPS

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (channels,))
    bias = self.param('bias', nn.initializers.zeros, (channels,))
    axes = tuple(range(1, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    x = (x - mean) * jnp.reciprocal(jnp.sqrt(var + self.eps))
    return x * scale + bias


class AdaIN(nn.Module):
  """Adaptive instance norm conditioned on a vector (spec §6 `gmvae_fixed`).

  [γ | β] = Linear(hidden→2C)(ReLU(Linear(D→hidden)(s))), split in that order;
  out = (1 + γ)·IN(x) + β. x: (B, H, W, C); s: (B, D). Both Linears use
  PyTorch's default init, so γ and β start small and the layer starts close
  to plain instance norm.
  """
  hidden: int = 256

  @nn.compact
  def __call__(self, x, s):
    channels = x.shape[-1]
    h = nn.relu(init.dense(self.hidden, s.shape[-1], name='mlp1')(s))
    gamma_beta = init.dense(2 * channels, self.hidden, name='mlp2')(h)
    gamma, beta = jnp.split(gamma_beta, 2, axis=-1)
    gamma = gamma[:, None, None, :]
    beta = beta[:, None, None, :]
    return (1.0 + gamma) * instance_norm(x) + beta
