"""Compute options shared by every network: mixed precision and remat.

Mixed precision (`config.model.dtype = 'bfloat16'`): each network is built
with `dtype=jnp.bfloat16` and passes it to its layers, which keep their
parameters in float32 and cast them and their input to `dtype` right before
the conv / dense (`flax.linen.dtypes.promote_dtype`, as Flax's own `nn.Dense`
and `nn.Conv` do with their `dtype` field). Normalisations compute their
statistics and affine transform in float32 (`upcast`) and return the
input's dtype; each network returns float32 (`float32`), so heads,
distributions and losses are float32. Gradients reach the float32 params
through the casts, so optimizer states stay float32. With the default
float32 every cast is the identity and the programs compute what they
computed before these options existed.

Rematerialisation (`config.model.remat = True`): `maybe_remat` wraps a
block class in `nn.remat`, so its activations are recomputed in the
backward pass instead of kept; same parameter tree, same values. `nn.remat`
keeps the recomputation apart from the forward pass with optimization
barriers (`prevent_cse`); XLA:CPU removes those barriers early (its
`cse_barrier_expander` pass) and its CSE then merges the two again, so on
the CPU a rematerialised step compiles to the same program and memory as a
plain one. Jit the step with `compiler_options(config.model)` (the loop's
`parallel.jit_step` and `experiments/benchmark.py` do) to keep them: CycleGAN
at 256 px, batch 1 + 1, needs 1.5 instead of 3.9 GiB of XLA temporaries.
`jax.pmap` takes no compiler options; there set
`XLA_FLAGS=--xla_disable_hlo_passes=cse_barrier_expander` instead.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
Dtype = Any


def dtype_from_name(name: str) -> Dtype:
  """'float32' or 'bfloat16' → the jnp dtype; ValueError otherwise."""
  if name not in DTYPES:
    raise ValueError(f'Unknown compute dtype {name!r}; use one of '
                     f'{sorted(DTYPES)}.')
  return DTYPES[name]


def network_options(model_cfg) -> dict:
  """`dtype` and `remat` keyword arguments of a model's networks.

  Read from `config.model`; configs saved before these fields existed get
  float32 and no remat.
  """
  return dict(dtype=dtype_from_name(model_cfg.get('dtype', 'float32')),
              remat=bool(model_cfg.get('remat', False)))


def upcast(x: jnp.ndarray) -> jnp.ndarray:
  """x in at least float32 (normalisation statistics); f32 stays as is."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def float32(tree):
  """Every floating leaf of `tree` as float32 (a network's outputs)."""
  def cast(x):
    if jnp.issubdtype(x.dtype, jnp.floating):
      return x.astype(jnp.float32)
    return x
  return jax.tree.map(cast, tree)


# The XLA:CPU pass that drops `nn.remat`'s optimization barriers before CSE.
_CPU_REMAT_COMPILER_OPTIONS = {'xla_disable_hlo_passes': 'cse_barrier_expander'}


def compiler_options(model_cfg, backend: str | None = None) -> dict | None:
  """`jax.jit(..., compiler_options=)` for a step of this model config.

  With `remat` on the CPU backend: keep the rematerialisation barriers
  (module docstring); otherwise None (XLA's defaults). `backend` defaults to
  `jax.default_backend()`.
  """
  if not network_options(model_cfg)['remat']:
    return None
  if (backend or jax.default_backend()) != 'cpu':
    return None
  return dict(_CPU_REMAT_COMPILER_OPTIONS)


def maybe_remat(module_cls, enabled: bool):
  """`nn.remat(module_cls)` if `enabled`, else `module_cls` itself.

  The block's call arguments must be arrays (or pytrees of arrays): remat
  traces them, so Python flags would become tracers.
  """
  return nn.remat(module_cls) if enabled else module_cls
