"""KL divergences and categorical losses of the VAE / GMVAE attribute paths."""

import jax
import jax.numpy as jnp
import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))


def kl_standard_normal_sum(mean: jnp.ndarray, logvar: jnp.ndarray):
  """KL(N(μ, σ²) ‖ N(0, I)) summed over batch and dims (MDMM, spec B14).

  −½ Σ (1 + log σ² − μ² − σ²). Inputs (B, D).
  """
  return -0.5 * jnp.sum(1 + logvar - mean**2 - jnp.exp(logvar))


def log_normal(x, mean, var):
  """log N(x; μ, diag(var)) summed over the last axis ([GMVAE] `log_normal`).

  −½ Σ_d [log 2π + log(v + 1e-8) + (x − μ)² / (v + 1e-8)]. Returns (B,).
  """
  var = var + 1e-8
  return -0.5 * jnp.sum(_LOG_2PI + jnp.log(var) + (x - mean)**2 / var, -1)


def gmvae_gaussian_kl(z, mean_q, var_q, mean_p, var_p):
  """One-sample Monte-Carlo KL(q(z|x,y) ‖ p(z|y)), averaged over the batch.

  mean_B [log N(z; μ_q, v_q) − log N(z; μ_p, v_p)] evaluated at the
  reparameterised z drawn from q ([GMVAE] gaussian loss, spec §3.2). All
  inputs (B, D); variances, not log-variances.
  """
  return jnp.mean(log_normal(z, mean_q, var_q) - log_normal(z, mean_p, var_p))


def gaussian_kl(mean_q, var_q, mean_p, var_p):
  """Closed-form KL between diagonal Gaussians, summed over D, mean over B."""
  var_q, var_p = var_q + 1e-8, var_p + 1e-8
  kl = 0.5 * (jnp.log(var_p / var_q) + (var_q + (mean_q - mean_p)**2) / var_p
              - 1.0)
  return jnp.mean(jnp.sum(kl, -1))


def domain_cross_entropy(component_logits, domain, components_per_domain=1):
  """Cross entropy of the domain implied by mixture-component logits.

  With K = N·m components, component k belongs to domain k // m, and
  p(domain d | x) = Σ_{k ∈ d} q(y=k | x). For m = 1 this is the softmax CE
  of the logits against the domain label.

  Args:
    component_logits: (B, N·m) logits of q(y|x).
    domain: (B,) int domain labels.
    components_per_domain: m.
  Returns:
    scalar mean over the batch.
  """
  batch, num_components = component_logits.shape
  log_prob = jax.nn.log_softmax(component_logits, axis=-1)
  log_prob = log_prob.reshape(batch, num_components // components_per_domain,
                              components_per_domain)
  log_domain = jax.scipy.special.logsumexp(log_prob, axis=-1)
  return -jnp.mean(jnp.take_along_axis(log_domain, domain[:, None], 1))


def categorical_kl_uniform(logits):
  """KL(q(y|x) ‖ U(K)) averaged over the batch: Σ_k q_k log q_k + log K."""
  log_q = jax.nn.log_softmax(logits, axis=-1)
  return jnp.mean(jnp.sum(jnp.exp(log_q) * log_q, -1)) + jnp.log(
      logits.shape[-1])
