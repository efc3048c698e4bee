"""Data parallelism: `jax.jit` over a device mesh (default) or `jax.pmap`.

jit: the state is replicated and the batch is split along its first axis
over all devices of a ('data',) mesh; XLA inserts the cross-device
reductions, so a step gives the same result on 1 or 8 devices (up to float
reassociation).

pmap (`config.train.parallel = 'pmap'`): the same pure step runs once per
device on B/D examples. While `pmap_step` traces it, `data_axis_name()`
returns the mapped axis; `state.apply_gradients` then averages the
gradients with `lax.pmean`, so every device applies the same update and
the state stays replicated. The step's rng is folded with the device index
(independent noise per device), and the metrics and the floating-point
`model_state` (e.g. BatchNorm running statistics) are averaged over
devices. Losses that are means over examples thus give the one-device
gradient; statistics of a whole batch (BatchNorm in training mode) are per
device, as in PyTorch's DataParallel.
"""

import contextlib
import contextvars

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'
PMAP_AXIS = 'batch'
PARALLEL_MODES = ('jit', 'pmap')

_axis_name = contextvars.ContextVar('i2ijax_data_axis', default=None)


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
  """jit of a pure (state, batch, rng) -> (state, ...) step on `mesh`.

  Every output (state, metrics, ...) comes back replicated.
  """
  repl = replicated(mesh)
  return jax.jit(step_fn,
                 in_shardings=(repl, data_sharded(mesh), repl),
                 out_shardings=repl,
                 donate_argnums=(0,) if donate else ())


# ------------------------------------------------------------------ pmap
def data_axis_name() -> str | None:
  """The mapped data axis while `pmap_step` traces a step, else None."""
  return _axis_name.get()


@contextlib.contextmanager
def _tracing_under(axis_name: str):
  token = _axis_name.set(axis_name)
  try:
    yield
  finally:
    _axis_name.reset(token)


def mean_over_devices(tree):
  """`lax.pmean` of the floating-point leaves over the active data axis.

  Other leaves (counters, flags) pass through; outside `pmap_step` the
  tree is returned unchanged.
  """
  axis = data_axis_name()
  if axis is None:
    return tree
  return jax.tree.map(
      lambda x: jax.lax.pmean(x, axis)
      if jax.numpy.issubdtype(x.dtype, jax.numpy.inexact) else x, tree)


def all_devices(flag):
  """True on every device iff `flag` (a bool scalar) is true on all of them
  (identity outside `pmap_step`)."""
  axis = data_axis_name()
  if axis is None:
    return flag
  return jax.lax.pmin(flag.astype(np.int32), axis).astype(bool)


def pmap_devices(batch_size: int, devices=None) -> list:
  """As many devices as split the batch into equal parts, each part even
  when the batch is (two-domain and MDMM batches pair row i with row
  i + B/2; `split_batch` keeps each pair on one device)."""
  devices = list(jax.devices() if devices is None else devices)
  unit = 2 if batch_size % 2 == 0 else 1
  count = len(devices)
  while batch_size % (unit * count):
    count -= 1
  return devices[:count]


def split_batch(batch, num_devices: int):
  """(B, ...) host arrays -> (D, B/D, ...) for `jax.pmap`.

  With an even B/D, device d gets rows [d·b, (d+1)·b) of each half of the
  batch (b = B/2D): its local batch again has the first-half rows in its
  first half, so steps that split a batch into halves (paired or one
  domain per half) see the same pairs as on one device.
  """
  def split(x):
    x = np.asarray(x)
    size = x.shape[0]
    if size % num_devices:
      raise ValueError(f'Batch of {size} does not split over {num_devices} '
                       'devices.')
    if (size // num_devices) % 2:
      return x.reshape(num_devices, size // num_devices, *x.shape[1:])
    halves = x.reshape(2, num_devices, size // (2 * num_devices),
                       *x.shape[1:])
    return np.swapaxes(halves, 0, 1).reshape(num_devices, size // num_devices,
                                            *x.shape[1:])
  return jax.tree.map(split, batch)


def pmap_step(step_fn, devices, donate: bool = True):
  """The pure (state, batch, rng) -> (state, metrics, ...) step under pmap.

  Args:
    step_fn: a pure step whose gradients go through
      `state.apply_gradients` (every objective's do).
    devices: the devices to map over (`pmap_devices`).
    donate: donate the input state's buffers.
  Returns:
    a function of (state, host batch with B rows, rng) giving replicated
    (state, metrics, ...) as `jit_step` does; the state and rng are passed
    unmapped (`in_axes=None`).
  """
  def per_device(state, batch, rng):
    rng = jax.random.fold_in(rng, jax.lax.axis_index(PMAP_AXIS))
    with _tracing_under(PMAP_AXIS):
      new_state, *rest = step_fn(state, batch, rng)
      new_state = new_state.replace(
          model_state=mean_over_devices(new_state.model_state))
      rest = mean_over_devices(rest)
    return (new_state, *rest)

  mapped = jax.pmap(per_device, axis_name=PMAP_AXIS, in_axes=(None, 0, None),
                    out_axes=None, devices=devices,
                    donate_argnums=(0,) if donate else ())

  def step(state, batch, rng):
    return mapped(state, split_batch(batch, len(devices)), rng)
  return step
