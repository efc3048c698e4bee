"""Data parallelism with `jax.jit` over a one-axis device mesh.

The state is replicated and the batch is split along its first axis over all
devices of the mesh; XLA inserts the cross-device reductions, so a step gives
the same result on 1 or 8 devices (up to float reassociation).
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(batch_size: int, devices=None) -> Mesh:
  """A ('data',) mesh over as many devices as evenly divide the batch."""
  devices = list(jax.devices() if devices is None else devices)
  count = len(devices)
  while batch_size % count:
    count -= 1
  return Mesh(np.array(devices[:count]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def shard_batch(batch, mesh: Mesh):
  """Puts a host batch (pytree of arrays, leading batch axis) on the mesh."""
  return jax.device_put(batch, data_sharded(mesh))


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, replicated(mesh))


def jit_step(step_fn, mesh: Mesh, donate: bool = True):
  """jit of a pure (state, batch, rng) -> (state, metrics) step on `mesh`."""
  repl = replicated(mesh)
  return jax.jit(step_fn,
                 in_shardings=(repl, data_sharded(mesh), repl),
                 out_shardings=(repl, repl),
                 donate_argnums=(0,) if donate else ())
