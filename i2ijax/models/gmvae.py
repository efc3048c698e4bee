"""GMVAE building blocks (jariasf/GMVAE, spec §3.1) as linen modules.

Every module reads its input width from its input. Noise is injectable for
parity tests (`gumbel_noise`: the U ~ U[0, 1) of the Gumbel sample,
`gaussian_eps`: the ε ~ N(0, I) of the reparameterisation); when it is not
given it is drawn from the 'gumbel' and 'reparam' rng streams.

Linear layers use PyTorch's default init (what the seed authors' code ends
up with, spec Q15), not [GMVAE]'s Xavier-normal / zero-bias init. They
compute in `dtype` (`layers.compute`); every head's output (logits,
probabilities, Gaussian parameters, samples) is float32.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.layers import init


class GumbelSoftmax(nn.Module):
  """Categorical head with a Gumbel-softmax sample (spec §3.1).

  logits = Linear(x); prob = softmax(logits);
  y = softmax((logits + g) / τ), g = −log(−log(U + 1e-20) + 1e-20).
  `hard=True`: y = one_hot(argmax y) in the forward pass with the soft y's
  gradient (straight-through). x (B, F) → (logits, prob, y), each (B, K).
  """
  num_classes: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, temperature=1.0, hard: bool = False,
               gumbel_noise=None):
    logits = compute.float32(init.dense(self.num_classes, x.shape[-1],
                                        name='logits', dtype=self.dtype)(x))
    prob = jax.nn.softmax(logits, axis=-1)
    if gumbel_noise is None:
      gumbel_noise = jax.random.uniform(self.make_rng('gumbel'), logits.shape)
    g = -jnp.log(-jnp.log(gumbel_noise + 1e-20) + 1e-20)
    y = jax.nn.softmax((logits + g) / temperature, axis=-1)
    if hard:
      y_hard = jax.nn.one_hot(jnp.argmax(y, axis=-1), self.num_classes,
                              dtype=y.dtype)
      y = jax.lax.stop_gradient(y_hard - y) + y
    return logits, prob, y


class GaussianHead(nn.Module):
  """Diagonal Gaussian head: μ = Linear(x), var = softplus(Linear(x)).

  z = μ + √(var + 1e-10)·ε. `var` is a variance, not a log-variance.
  x (B, F) → (μ, var, z), each (B, z_dim).
  """
  z_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, gaussian_eps=None):
    mu, var = compute.float32((
        init.dense(self.z_dim, x.shape[-1], name='mu', dtype=self.dtype)(x),
        init.dense(self.z_dim, x.shape[-1], name='var', dtype=self.dtype)(x)))
    var = jax.nn.softplus(var)
    if gaussian_eps is None:
      gaussian_eps = jax.random.normal(self.make_rng('reparam'), mu.shape)
    return mu, var, mu + jnp.sqrt(var + 1e-10) * gaussian_eps


class InferenceNet(nn.Module):
  """q(y|x) and q(z|x,y) of [GMVAE] (spec §3.1), with a `hidden` MLP width.

  q(y|x): Linear(hidden) → ReLU → Linear(hidden) → ReLU → GumbelSoftmax(K).
  q(z|x,y): concat[x, y] → Linear(hidden) → ReLU → Linear(hidden) → ReLU →
  GaussianHead(z_dim). x (B, F) → dict(mean, var, z, logits, prob, y)
  ([GMVAE]'s mean, var, gaussian, logits, prob_cat, categorical).
  """
  z_dim: int
  y_dim: int
  hidden: int = 512
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, temperature=1.0, hard: bool = False,
               gumbel_noise=None, gaussian_eps=None):
    dtype = self.dtype
    h = x
    for i in range(2):
      h = nn.relu(init.dense(self.hidden, h.shape[-1], name=f'qyx_{i}',
                             dtype=dtype)(h))
    logits, prob, y = GumbelSoftmax(self.y_dim, dtype, name='qyx_gumbel')(
        h, temperature, hard, gumbel_noise)
    h = jnp.concatenate([x.astype(dtype), y.astype(dtype)], axis=-1)
    for i in range(2):
      h = nn.relu(init.dense(self.hidden, h.shape[-1], name=f'qzyx_{i}',
                             dtype=dtype)(h))
    mean, var, z = GaussianHead(self.z_dim, dtype, name='qzyx_gaussian')(
        h, gaussian_eps)
    return dict(mean=mean, var=var, z=z, logits=logits, prob=prob, y=y)


class GenerativeNet(nn.Module):
  """p(z|y) and p(x|z) of [GMVAE] (spec §3.1).

  p(z|y): y_mean = Linear(y), y_var = softplus(Linear(y)), (B, z_dim).
  p(x|z): Linear(hidden) → ReLU → Linear(hidden) → ReLU → Linear(x_dim) →
  sigmoid (it does not see y). z (B, z_dim), y (B, K) →
  dict(y_mean, y_var, x_rec).
  """
  x_dim: int
  z_dim: int
  hidden: int = 512
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, y):
    dtype = self.dtype
    y_mean, y_var = compute.float32((
        init.dense(self.z_dim, y.shape[-1], name='y_mu', dtype=dtype)(y),
        init.dense(self.z_dim, y.shape[-1], name='y_var', dtype=dtype)(y)))
    y_var = jax.nn.softplus(y_var)
    h = z
    for i in range(2):
      h = nn.relu(init.dense(self.hidden, h.shape[-1], name=f'pxz_{i}',
                             dtype=dtype)(h))
    x_rec = jax.nn.sigmoid(compute.float32(
        init.dense(self.x_dim, self.hidden, name='pxz_out', dtype=dtype)(h)))
    return dict(y_mean=y_mean, y_var=y_var, x_rec=x_rec)
