"""Data parallelism: `jax.jit` over a device mesh (default) or `jax.pmap`.

jit: the state is replicated and the batch is split along its first axis
over all devices of a ('data',) mesh; XLA inserts the cross-device
reductions, so a step gives the same result on 1 or 8 devices (up to float
reassociation). With several processes (`distributed.py`) the mesh holds
the devices of all of them, process by process; each process puts its own
rows of the batch on its own devices (`global_batch`), and a batch made of
several data shards is put in the objectives' layout inside the step
(`interleave_shards`).

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
  """A ('data',) mesh over as many devices as evenly divide the batch.

  With several processes: over all devices, process by process (the batch
  must split over all of them: `distributed.split_batch_size`), so that
  process p's rows [p·B/P, (p+1)·B/P) lie on its own devices.
  """
  devices = list(jax.devices() if devices is None else devices)
  if jax.process_count() > 1:
    devices.sort(key=lambda d: (d.process_index, d.id))
    if batch_size % len(devices):
      raise ValueError(f'A batch of {batch_size} does not split over the '
                       f'{len(devices)} devices of {jax.process_count()} '
                       'processes.')
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


def global_batch(local_batch, mesh: Mesh):
  """This process's rows (pytree of (B/P, ...) host arrays) -> the global
  (B, ...) batch sharded over `mesh`, process p's rows being rows
  [p·B/P, (p+1)·B/P) (every process calls it with its own rows). With one
  process: `shard_batch`."""
  if jax.process_count() == 1:
    return shard_batch(local_batch, mesh)
  sharding = data_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(
          sharding, x, (x.shape[0] * jax.process_count(), *x.shape[1:])),
      local_batch)


def interleave_shards(x, num_shards: int, num_parts: int):
  """Rows [shard 0 | shard 1 | ...] -> [part 0 of every shard | part 1 ...].

  `x` (B, ...) (numpy or jax) holds `num_shards` shard batches one after the
  other, each made of `num_parts` equal blocks (its halves, or one block per
  domain). The result holds block k of every shard, shard by shard, as
  block k of the global batch: rows [k·B/K, (k+1)·B/K) are again block k
  (K = num_parts), so a step that splits its batch into halves or domains
  sees each shard's rows where one shard's batch has them.
  """
  if num_shards == 1 or num_parts == 1:
    return x
  blocks = x.reshape(num_shards, num_parts, x.shape[0] // (
      num_shards * num_parts), *x.shape[1:])
  return blocks.swapaxes(0, 1).reshape(x.shape)


def replicate(tree, mesh: Mesh):
  """The same value on every device of `mesh` (with several processes each
  process passes the same value: its devices get its copy)."""
  if jax.process_count() == 1:
    return jax.device_put(tree, replicated(mesh))
  sharding = replicated(mesh)

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key):
      # device_put refuses typed keys for devices of other processes.
      return jax.random.wrap_key_data(
          jax.device_put(jax.random.key_data(x), sharding),
          impl=jax.random.key_impl(x))
    return jax.device_put(x, sharding)
  return jax.tree.map(put, tree)


def host_local(tree):
  """A replicated tree's copy on this process's first device (for local
  work such as sample grids on one process); with one process: `tree`."""
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(
      lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x,
      tree)


def jit_step(step_fn, mesh: Mesh, donate: bool = True, num_shards: int = 1,
             num_parts: int = 1, compiler_options: dict | None = None):
  """jit of a pure (state, batch, rng) -> (state, ...) step on `mesh`.

  Every output (state, metrics, ...) comes back replicated. A batch of
  `num_shards` shard batches of `num_parts` blocks each is first put in
  block order (`interleave_shards`, on the devices). `compiler_options` go
  to `jax.jit` (`layers.compute.compiler_options`).
  """
  repl, sharded = replicated(mesh), data_sharded(mesh)
  if num_shards > 1 and num_parts > 1:
    inner = step_fn

    def step_fn(state, batch, rng):
      batch = jax.tree.map(
          lambda x: jax.lax.with_sharding_constraint(
              interleave_shards(x, num_shards, num_parts), sharded), batch)
      return inner(state, batch, rng)
  return jax.jit(step_fn,
                 in_shardings=(repl, sharded, repl),
                 out_shardings=repl,
                 donate_argnums=(0,) if donate else (),
                 compiler_options=compiler_options)


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
