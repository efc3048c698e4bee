"""Multi-process (multi-host) training on JAX's distributed runtime.

Every process runs the same program (`python -m i2ijax.main ...` on every
host, or several processes on one machine). `maybe_initialize` connects
them before anything else touches JAX; then `jax.devices()` lists the
devices of all processes, `jax.local_devices()` this process's own.

The global batch: `config.train.batch_size` = B rows per step over all
processes. It is made of S = `train.data_shards` input shard streams
(0 = one per process), each of B/S rows; process p reads the shards
[p·S/P, (p+1)·S/P) of every domain (`pipeline.create_train_iterator`'s
per-process splits), so a run draws the same global batches on any number
of processes P dividing S: 2 processes × 4 devices and 1 process × 8 devices
with `data_shards=2` train on the same data (tests/training/
test_multihost.py). Each process's rows go to its own devices
(`parallel.global_batch`); inside the step the rows are put in the layout
the objectives expect (`parallel.interleave_shards`).
"""

import dataclasses
import os

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

# Environment variables under which `maybe_initialize` lets JAX detect the
# cluster itself: JAX's own coordinator address, and a multi-host Cloud TPU
# (the worker list of GKE / queued resources, multislice's coordinator).
AUTO_DETECT_VARIABLES = ('JAX_COORDINATOR_ADDRESS',
                         'MEGASCALE_COORDINATOR_ADDRESS')


def _multi_host_tpu(environ) -> bool:
  hosts = environ.get('TPU_WORKER_HOSTNAMES', '')
  return len([h for h in hosts.split(',') if h.strip()]) > 1


def initialize_reason(coordinator_address=None, num_processes=None,
                      process_id=None, *, auto: bool = False,
                      environ=None) -> str | None:
  """Why `maybe_initialize` would start the distributed runtime, or None."""
  environ = os.environ if environ is None else environ
  given = [name for name, value in (
      ('--coordinator_address', coordinator_address),
      ('--num_processes', num_processes), ('--process_id', process_id))
           if value is not None]
  if given:
    return ', '.join(given)
  if auto:
    return '--distributed'
  for name in AUTO_DETECT_VARIABLES:
    if environ.get(name):
      return f'${name}'
  if _multi_host_tpu(environ):
    return '$TPU_WORKER_HOSTNAMES (a multi-host Cloud TPU)'
  return None


def maybe_initialize(coordinator_address: str | None = None,
                     num_processes: int | None = None,
                     process_id: int | None = None, *, auto: bool = False,
                     environ=None) -> bool:
  """Calls `jax.distributed.initialize` when this is a multi-process run.

  It does when any of the arguments is given (JAX detects the missing ones
  on the clusters it knows: Cloud TPU, Slurm, Open MPI; elsewhere give all
  three), when `auto` (the `--distributed` flag: let JAX detect all of
  them), when `$JAX_COORDINATOR_ADDRESS` or `$MEGASCALE_COORDINATOR_ADDRESS`
  is set, or when `$TPU_WORKER_HOSTNAMES` lists several hosts. Otherwise
  (one process) it does nothing. Must run before any other JAX call (one
  that creates the backend: `jax.devices()`, an array, ...). Selects
  gloo for cross-process collectives on the CPU if no implementation is set.

  Returns:
    whether it initialized the distributed runtime.
  """
  reason = initialize_reason(coordinator_address, num_processes, process_id,
                             auto=auto, environ=environ)
  if reason is None:
    return False
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  logging.info('Initializing JAX distributed (%s): coordinator %s, %s '
               'processes, process id %s.', reason, coordinator_address,
               num_processes, process_id)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
  return True


def _bad_batch(batch_size, message):
  return ValueError(f'Bad config value train.batch_size={batch_size}: '
                    f'{message}')


@dataclasses.dataclass(frozen=True)
class BatchSplit:
  """How a global batch of `size` rows is made and where its rows go.

  The global batch is the concatenation of `shards` shard batches of
  `shard_size` rows, shard s being rows [s·shard_size, (s+1)·shard_size);
  this process reads the shards `process_shards` (consecutive), whose rows
  are its `process_size` = size / process_count rows of the global batch.
  """
  size: int
  shards: int
  shard_size: int
  process_shards: tuple[int, ...]
  process_size: int


def split_batch_size(batch_size: int, *, data_shards: int = 0,
                     parts: int = 1, process_index: int = 0,
                     process_count: int = 1,
                     device_count: int | None = None) -> BatchSplit:
  """Splits the global batch over data shards and processes.

  Args:
    batch_size: `train.batch_size`, the global batch B.
    data_shards: `train.data_shards` S; 0 = one shard per process.
    parts: equal row blocks every shard batch must split into (2 for the
      halves of MDMM and two-domain batches, 1 if none).
    process_index: this process.
    process_count: processes P.
    device_count: all devices D; with several processes B must split over
      them (one process uses as many as divide B: `parallel.make_mesh`).
  Raises:
    ValueError: 'Bad config value train.batch_size=...' (or
      train.data_shards) naming the numbers that do not divide.
  """
  shards = data_shards or process_count
  if data_shards < 0:
    raise ValueError(f'Bad config value train.data_shards={data_shards}: '
                     'must be >= 0 (0 = one per process).')
  if batch_size % process_count:
    raise _bad_batch(batch_size, f'the global batch does not split evenly '
                     f'over the {process_count} processes '
                     f'({batch_size}/{process_count} rows each); use a '
                     f'multiple of {process_count}.')
  if shards % process_count:
    raise ValueError(f'Bad config value train.data_shards={data_shards}: '
                     f'must be a multiple of the {process_count} processes.')
  if batch_size % shards:
    raise _bad_batch(batch_size, f'the global batch does not split evenly '
                     f'into {shards} data shards ({batch_size}/{shards} rows '
                     'each).')
  shard_size = batch_size // shards
  if shard_size % parts:
    raise _bad_batch(batch_size, f'each of the {shards} data shards gets '
                     f'{shard_size} rows, which do not split into the '
                     f'{parts} equal parts of a batch of this model (halves '
                     'or one block per domain); use a multiple of '
                     f'{shards * parts}.')
  if process_count > 1 and device_count and batch_size % device_count:
    raise _bad_batch(batch_size, f'the global batch does not split evenly '
                     f'over the {device_count} devices of the '
                     f'{process_count} processes ({batch_size}/'
                     f'{device_count} rows per device); use a multiple of '
                     f'{device_count}.')
  per_process = shards // process_count
  return BatchSplit(
      size=batch_size, shards=shards, shard_size=shard_size,
      process_shards=tuple(range(process_index * per_process,
                                 (process_index + 1) * per_process)),
      process_size=batch_size // process_count)


def any_process(flag: bool) -> bool:
  """True on every process iff `flag` is true on at least one of them (a
  collective: every process must call it; `flag` itself with one)."""
  if jax.process_count() == 1:
    return bool(flag)
  flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
  return bool(np.any(flags))


def assert_same_on_all_processes(tree, what: str) -> None:
  """Raises ValueError unless `tree` (host-visible arrays) has the same
  values on every process (compares a float64 sum of each leaf)."""
  if jax.process_count() == 1:
    return
  def checksum(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.sum(np.asarray(jax.device_get(x), np.float64))
  sums = np.array([checksum(x) for x in jax.tree.leaves(tree)])
  every = multihost_utils.process_allgather(sums)
  if not np.all(every == every[:1]):
    raise ValueError(f'{what} differs between the {jax.process_count()} '
                     'processes; every process must compute it alike.')
