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
backward pass instead of kept; same parameter tree, same values.
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


def maybe_remat(module_cls, enabled: bool):
  """`nn.remat(module_cls)` if `enabled`, else `module_cls` itself.

  The block's call arguments must be arrays (or pytrees of arrays): remat
  traces them, so Python flags would become tracers.
  """
  return nn.remat(module_cls) if enabled else module_cls
