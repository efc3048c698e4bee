"""`python -m i2ijax.main` on `:smoke`: outputs, SIGINT, resume, evaluate
(with `--metrics`).

These runs check what a user sees (files, messages, resumption), not
learning, so they compile with most XLA optimisations off
(`run_module(..., fast_compile=True)`): the same programs, compiled about
a third faster.
"""

import json
import re
import signal
import subprocess
import time

import pytest

SMOKE = '--config=configs/gmvae_mdmm.py:smoke'


def _checkpoint_steps(workdir):
  checkpoints = workdir / 'checkpoints'
  if not checkpoints.exists():
    return []
  return sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())


@pytest.mark.slow
def test_train_interrupt_resume_and_evaluate(tmp_path, run_module):
  """A user's session: train, stop with Ctrl-C, start again, evaluate."""
  run = lambda *args: run_module(*args, fast_compile=True)
  workdir = tmp_path / 'run'
  result = run('i2ijax.main', SMOKE, f'--workdir={workdir}',
               '--config.train.num_steps=4',
               '--config.train.eval_every_steps=4')
  assert result.returncode == 0, result.stderr[-3000:]
  periodic = json.loads((workdir / 'eval' / 'metrics.json').read_text())
  assert periodic['step'] == 4 and 'domain_acc' in periodic
  assert _checkpoint_steps(workdir) == [3, 4]
  assert list(workdir.glob('events.out.tfevents.*')), 'no TensorBoard events'
  assert list((workdir / 'samples').glob('*.png')), 'no sample grids'
  assert 'steps_per_sec' in result.stderr + result.stdout

  # A larger budget resumes at step 4; SIGINT (as TPU preemption's SIGTERM)
  # saves a checkpoint at the current step and exits cleanly.
  process = run_module.popen(
      'i2ijax.main', SMOKE, f'--workdir={workdir}',
      '--config.train.num_steps=100000', fast_compile=True,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 300
  while time.time() < deadline and _checkpoint_steps(workdir)[-1] <= 4:
    assert process.poll() is None, process.stderr.read()[-3000:]
    time.sleep(0.5)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  assert 'Resumed from step 4' in stderr
  match = re.search(r'Stopped at step (\d+)', stderr)
  assert match, stderr[-3000:]
  stopped = int(match.group(1))
  assert stopped > 4 and stopped in _checkpoint_steps(workdir)

  result = run('i2ijax.main', SMOKE, f'--workdir={workdir}',
               f'--config.train.num_steps={stopped + 1}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed from step {stopped}' in result.stderr
  assert _checkpoint_steps(workdir)[-1] == stopped + 1

  # `--metrics` adds the distribution metrics to the oracle ones (NDB here:
  # no pretrained network needed).
  result = run('i2ijax.evaluate', f'--workdir={workdir}',
               '--metrics=oracle,ndb')
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((workdir / 'eval' / 'metrics.json').read_text())
  assert metrics['step'] == stopped + 1
  for key in ('domain_acc', 'content_iou', 'mode_coverage', 'cluster_acc',
              'ndb_ratio', 'ndb_ratio/to_night'):
    assert 0.0 <= metrics[key] <= 1.0, key
    assert key in result.stdout
  assert not any(key.startswith(('fid', 'kid', 'lpips')) for key in metrics)


def test_main_rejects_a_bad_config_value_clearly(tmp_path, run_module):
  result = run_module('i2ijax.main', '--config=configs/mdmm.py:smoke',
                      f'--workdir={tmp_path}', '--config.train.batch_size=3')
  assert result.returncode != 0
  assert 'train.batch_size=3' in result.stderr


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path, run_module):
  result = run_module('i2ijax.evaluate', f'--workdir={tmp_path}')
  assert result.returncode != 0
  assert 'No checkpoint found' in result.stderr
