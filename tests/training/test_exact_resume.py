"""Exact resume (issue 6): resuming from a checkpoint ends bitwise where an
uninterrupted run ends, and a SIGKILL in the middle of a checkpoint write
leaves the previous complete checkpoint to resume from."""

import json
import logging
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np

from i2ijax import train
from i2ijax.training import checkpoint
import config_files

REPO = pathlib.Path(__file__).parents[2]
_TMP_STEP = re.compile(r'^(\d+)\.orbax-checkpoint-tmp')


def _config(num_steps):
  config = config_files.get_config('cyclegan', 'smoke')
  config.train.update(dict(num_steps=num_steps,
                           checkpoint_every_steps=num_steps // 2,
                           sample_every_steps=1000))
  return config


def _leaves(state):
  """{path: numpy array} of every leaf, PRNG keys as their key data."""
  def array(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.asarray(x)
  return {jax.tree_util.keystr(path): array(x)
          for path, x in jax.tree_util.tree_leaves_with_path(state)}


def _steps(checkpoints):
  """(complete steps, steps of unfinished temporary folders)."""
  names = os.listdir(checkpoints) if checkpoints.exists() else []
  return (sorted(int(n) for n in names if n.isdigit()),
          sorted(int(m.group(1)) for n in names if (m := _TMP_STEP.match(n))))


def test_resume_is_bitwise_the_uninterrupted_run(tmp_path, caplog):
  """N steps straight == a new run resuming at N/2, from the checkpoint the
  first one wrote there, to N (CycleGAN's smoke config through the real
  loop, `train.train_and_evaluate`; two runs, not three)."""
  caplog.set_level(logging.INFO, logger='absl')
  n = 4
  straight = _leaves(train.train_and_evaluate(_config(n),
                                              str(tmp_path / 'straight')))
  # The interrupted run: the checkpoint of step N/2, as the same loop wrote
  # it, and an unfinished write of step N (a copy of the complete one, the
  # hardest case) that must be neither resumed from nor read.
  source = tmp_path / 'straight' / 'checkpoints'
  checkpoints = tmp_path / 'resumed' / 'checkpoints'
  shutil.copytree(source / str(n // 2), checkpoints / str(n // 2))
  shutil.copytree(source / str(n), checkpoints / f'{n}.orbax-checkpoint-tmp')

  resumed = _leaves(train.train_and_evaluate(_config(n),
                                             str(tmp_path / 'resumed')))
  assert f'Resumed from step {n // 2} ' in caplog.text
  assert 'Cannot restore the input position' not in caplog.text
  assert _steps(checkpoints) == ([n // 2, n], [])
  assert resumed.keys() == straight.keys()
  differ = [k for k in straight
            if straight[k].dtype != resumed[k].dtype
            or not np.array_equal(straight[k], resumed[k])]
  assert not differ, differ


# Saves steps 1, 2, ... of a 16 MB state (a write that takes a while) with a
# data position that counts the steps, as the loop saves a TrainIterator's.
_SAVING_PROCESS = '''
import json, pathlib, sys
import numpy as np
from i2ijax import config_lib
from i2ijax.training import checkpoint

class Position:
  def __init__(self, step):
    self.step = step
  def save(self, directory):
    pathlib.Path(directory, 'process_0.json').write_text(json.dumps(self.step))

weights = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32)
ckpt = checkpoint.Checkpointer(sys.argv[1], max_to_keep=1000)
for step in range(1, 1000):
  ckpt.save(step, {'w': weights, 'step': np.asarray(step, np.int32)},
            config_lib.base_config(), {'step': step},
            data_iterator=Position(step))
'''


class _Position:
  def __init__(self):
    self.step = None

  def restore(self, directory):
    self.step = json.loads(pathlib.Path(directory,
                                        'process_0.json').read_text())


def _kill_in_a_checkpoint_write(workdir):
  """SIGKILLs `_SAVING_PROCESS` while it writes a step >= 2; returns the
  (complete, unfinished) steps at that moment."""
  process = subprocess.Popen(
      [sys.executable, '-c', _SAVING_PROCESS, str(workdir)], cwd=REPO,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  checkpoints = workdir / 'checkpoints'
  deadline = time.time() + 120
  try:
    while time.time() < deadline:
      assert process.poll() is None, 'the saving process died by itself'
      if any(s >= 2 for s in _steps(checkpoints)[1]):
        # Freeze it, then kill it if the write is still unfinished.
        process.send_signal(signal.SIGSTOP)
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), 'the saving process ended'
        complete, unfinished = _steps(checkpoints)
        if unfinished:
          process.kill()
          process.wait()
          return complete, unfinished
        process.send_signal(signal.SIGCONT)
      time.sleep(0.001)
    raise AssertionError('no checkpoint write of step >= 2 within 120 s')
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()


def test_sigkill_in_a_checkpoint_write_resumes_from_the_previous_one(
    tmp_path):
  complete, unfinished = _kill_in_a_checkpoint_write(tmp_path)
  last = complete[-1]
  assert unfinished == [last + 1], (complete, unfinished)

  # What the training loop does on a restart (train.py).
  ckpt = checkpoint.Checkpointer(str(tmp_path), remove_incomplete=True)
  assert ckpt.latest_step() == last
  target = {'w': np.zeros(1 << 22, np.float32), 'step': np.asarray(0, np.int32)}
  state, _, data = ckpt.restore(target)
  assert int(state['step']) == data['step'] == last
  np.testing.assert_array_equal(
      state['w'], np.random.default_rng(0).standard_normal(1 << 22).astype(
          np.float32))
  position = _Position()
  ckpt.restore_data_iterator(last, position)
  assert position.step == last          # not the unfinished step's
  # Its next save, of the step that was cut short, clears the leftover.
  ckpt.save(last + 1, state, ml_collections.ConfigDict(), {})
  ckpt.close()
  assert _steps(tmp_path / 'checkpoints') == (complete + [last + 1], [])
