"""Multi-process training (issue 6) on one machine.

Two processes × 4 fake CPU devices, joined by JAX's distributed runtime
(`--coordinator_address` on localhost, gloo collectives), train CycleGAN's
smoke config as one run; they must give the losses and final params of one
process × 8 devices reading the same two data shards
(`--config.train.data_shards=2`). CycleGAN's batches are balanced (rows
[0, B/2) day, [B/2, B) night), so a global batch assembled from the two
processes' rows in the wrong layout gives other losses (checked by hand:
with the two processes' rows left in process order, [day, night, day,
night], every step-1 loss differs, e.g. d/dis_a 0.629 instead of 0.639).
The two processes run on until a SIGTERM to process 1 alone, which must
stop both at the same step with a checkpoint (a process left running
alone would wait in its next collective for ever).
"""

import json
import re
import signal
import socket
import subprocess
import time

import jax
import numpy as np
import pytest

from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.training import checkpoint
import config_files

STEPS = 3   # compared; the two processes run on until stopped
OVERRIDES = {'num_steps': STEPS, 'batch_size': 8, 'log_every_steps': 1,
             'checkpoint_every_steps': STEPS, 'sample_every_steps': STEPS,
             'keep_checkpoints': 1000}
# Adam's eps at 1e-3 instead of 1e-8: the biases right before an instance
# norm get a zero gradient, of which only float rounding is left; Adam
# divides that by its own size and moves them by ±lr per step whatever
# its sign, so with eps = 1e-8 these biases differ by ~lr between any two
# orders of summation. With eps = 1e-3 rounding noise moves nothing, and
# every leaf of the state can be compared.
EPS = 1e-3
# Constant learning rates: the runs differ in num_steps, which a decay
# schedule would follow.
OPTIM = {'eps': EPS, 'schedule': 'constant'}
ARGS = ['--config=configs/cyclegan.py:smoke'] + [
    f'--config.train.{k}={v}' for k, v in OVERRIDES.items()] + [
        f'--config.optim.{group}.{k}={v}' for group in ('g', 'd')
        for k, v in OPTIM.items()]
# Float tolerance of the comparison: the cross-device reductions (gradient
# means, losses) are summed in another order over gloo than inside one
# process, so values differ by float32 rounding (at most about 2e-6 after 3
# steps here), not bitwise; a wrong batch or update is off by far more.
RTOL, ATOL = 1e-4, 1e-5
TIMEOUT = 600
_SCALARS = re.compile(r'logging_writer\.py:\d+\] \[(\d+)\] (.*)$', re.M)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _devices(count):
  """Environment of a process with `count` fake CPU devices (NPROC at twice
  the device count, see shared/environment.md)."""
  return {'XLA_FLAGS': '--xla_cpu_multi_thread_eigen=false '
                       f'--xla_force_host_platform_device_count={count}',
          'NPROC': str(2 * count)}


def _losses(log):
  """{step: {name: value}} of the d/ and g/ losses the run logged."""
  losses = {}
  for step, text in _SCALARS.findall(log):
    values = dict(item.split('=', 1) for item in text.split(', ')
                  if '=' in item)
    terms = {k: float(v) for k, v in values.items()
             if k.startswith(('d/', 'g/'))}
    if terms:
      losses[int(step)] = terms
  return losses


def _final_leaves(workdir):
  """{path: numpy array} of the state saved at the last step in `workdir`."""
  config = config_files.get_config('cyclegan', 'smoke')
  config.train.update(OVERRIDES)
  for group in ('g', 'd'):
    config.optim[group].update(OPTIM)
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  ckpt = checkpoint.Checkpointer(str(workdir))
  try:
    state, _, data = ckpt.restore(objective.init(jax.random.key(0)), STEPS)
  finally:
    ckpt.close()
  assert data == {'iteration': STEPS, 'step': STEPS}

  def array(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.asarray(x)
  return {jax.tree_util.keystr(path): array(x)
          for path, x in jax.tree_util.tree_leaves_with_path(state)}


def _wait(processes, logs, stop):
  """Waits for every process (killing all on a failure or the timeout),
  sending SIGTERM to process `stop` once it has logged step STEPS; returns
  their logs (stderr, where absl logs)."""
  deadline = time.time() + TIMEOUT
  signalled = False
  try:
    while any(p.poll() is None for p in processes):
      failed = [i for i, p in enumerate(processes)
                if p.poll() not in (None, 0)]
      assert not failed and time.time() < deadline, (
          f'process {failed or "(timeout)"}: '
          + ''.join(logs[i].read_text()[-3000:] for i in failed))
      if not signalled and STEPS in _losses(logs[stop].read_text()):
        processes[stop].send_signal(signal.SIGTERM)
        signalled = True
      time.sleep(0.5)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.wait()
  texts = [log.read_text() for log in logs]
  for p, text in zip(processes, texts):
    assert p.returncode == 0, text[-3000:]
  return texts


@pytest.mark.slow
def test_two_processes_train_as_one_process_on_the_same_shards(
    tmp_path, run_module):
  multi, single = tmp_path / 'two_processes', tmp_path / 'one_process'
  port = _free_port()
  logs = [tmp_path / f'process_{i}.log' for i in range(2)] + [
      tmp_path / 'single.log']
  # Compiled with XLA's default optimisations, as users run, not
  # `fast_compile`: at backend optimisation level 0 (what
  # jax_disable_most_optimizations sets) XLA:CPU (jax 0.10.2) computes this
  # model's cycle-loss gradient wrong, gen_ab's kernel gradients off by ~4%
  # against the same gradient taken as two chained vjps or compiled
  # optimised, and differently for different device layouts, so the runs
  # no longer agree. Optimised, they agree to ~1.5e-6 (a tenth of the
  # tolerance), in about the same wall time.
  processes = [
      run_module.popen(
          'i2ijax.main', *ARGS, f'--workdir={multi}',
          '--config.train.num_steps=100000',
          f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
          f'--process_id={i}', env=_devices(4),
          stdout=subprocess.DEVNULL, stderr=logs[i].open('w'))
      for i in range(2)]
  processes.append(run_module.popen(
      'i2ijax.main', *ARGS, f'--workdir={single}',
      '--config.train.data_shards=2', env=_devices(8),
      stdout=subprocess.DEVNULL, stderr=logs[2].open('w')))
  process_0, process_1, one = _wait(processes, logs, stop=1)

  for i, text in enumerate((process_0, process_1)):
    assert 'Data parallel with jit over 8 devices of 2 processes; global ' \
           'batch 8 from 2 data shards (4 rows read here)' in text, i
  assert 'over 8 devices of 1 processes; global batch 8 from 2 data ' \
         'shards (8 rows read here)' in one

  # The same losses on both processes (replicated metrics) and as the one
  # process's, at every step.
  expected = _losses(one)
  assert sorted(expected) == list(range(1, STEPS + 1))
  for text in (process_0, process_1):
    got = _losses(text)
    for step, terms in expected.items():
      assert got[step].keys() == terms.keys()
      np.testing.assert_allclose([got[step][k] for k in terms],
                                 list(terms.values()), rtol=RTOL,
                                 err_msg=f'step {step}: {sorted(terms)}')

  # The same final state (params, optimizer moments, image pools, step).
  got, want = _final_leaves(multi), _final_leaves(single)
  assert got.keys() == want.keys()
  for key, value in want.items():
    assert got[key].dtype == value.dtype, key
    if np.issubdtype(value.dtype, np.floating):
      np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL,
                                 err_msg=key)
    else:
      np.testing.assert_array_equal(got[key], value, err_msg=key)

  # Every process saved the input position of its own shard, and it is the
  # position of that shard in the one-process run (same seed and settings).
  positions = multi / 'checkpoints' / str(STEPS) / 'data_iterator'
  for shard in range(2):
    saved = json.loads((positions / f'process_{shard}.json').read_text())
    assert saved['settings']['process_index'] == shard
    assert saved == json.loads(
        (single / 'checkpoints' / str(STEPS) / 'data_iterator' /
         f'process_{shard}.json').read_text())
  # SIGTERM to process 1 stopped both at the same step (STEPS or later),
  # with the checkpoint of that step written by both.
  stopped = [re.findall(r'Stopped at step (\d+)', text)
             for text in (process_0, process_1)]
  assert stopped[0] == stopped[1] and len(stopped[0]) == 1, stopped
  last = int(stopped[0][0])
  assert last >= STEPS
  assert 'Signal 15' in process_1 and 'Signal 15' not in process_0
  periodic = list(range(STEPS, last + 1, STEPS))
  assert sorted(int(p.name) for p in (multi / 'checkpoints').iterdir()
                if p.name.isdigit()) == sorted({*periodic, last})
  # Process 0 alone wrote the summaries and the sample grids.
  assert len(list(multi.glob('events.out.tfevents.*'))) == 1
  assert sorted(p.name for p in (multi / 'samples').iterdir()) == [
      f'samples_{step:07d}.png' for step in periodic]
  assert sorted(p.name for p in (multi / 'checkpoints' / str(last) /
                                 'data_iterator').glob('*.json')) == [
                                     'process_0.json', 'process_1.json']
