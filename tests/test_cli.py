"""`python -m i2ijax.main` on `:smoke`: outputs, resume, evaluate."""

import json
import re
import signal
import subprocess
import time

import pytest

@pytest.mark.slow
def test_main_smoke_writes_outputs_and_resumes(tmp_path, run_module):
  workdir = tmp_path / 'run'
  result = run_module('i2ijax.main', '--config=configs/gmvae_mdmm.py:smoke',
                      f'--workdir={workdir}', '--config.train.num_steps=4',
                      '--config.train.eval_every_steps=4')
  assert result.returncode == 0, result.stderr[-3000:]
  periodic = json.loads((workdir / 'eval' / 'metrics.json').read_text())
  assert periodic['step'] == 4 and 'domain_acc' in periodic
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir()
                 if p.name.isdigit())
  assert steps == [3, 4]
  assert list(workdir.glob('events.out.tfevents.*')), 'no TensorBoard events'
  assert list((workdir / 'samples').glob('*.png')), 'no sample grids'
  assert 'steps_per_sec' in result.stderr + result.stdout

  # Running again with a larger budget resumes at step 4, not from scratch.
  result = run_module('i2ijax.main', '--config=configs/gmvae_mdmm.py:smoke',
                      f'--workdir={workdir}', '--config.train.num_steps=6')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Resumed from step 4' in result.stderr
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir()
                 if p.name.isdigit())
  assert steps[-1] == 6

  result = run_module('i2ijax.evaluate', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((workdir / 'eval' / 'metrics.json').read_text())
  for key in ('domain_acc', 'content_iou', 'mode_coverage', 'cluster_acc'):
    assert 0.0 <= metrics[key] <= 1.0, key
    assert key in result.stdout


def test_main_rejects_a_bad_config_value_clearly(tmp_path, run_module):
  result = run_module('i2ijax.main', '--config=configs/mdmm.py:smoke',
                      f'--workdir={tmp_path}', '--config.train.batch_size=3')
  assert result.returncode != 0
  assert 'train.batch_size=3' in result.stderr


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path, run_module):
  result = run_module('i2ijax.evaluate', f'--workdir={tmp_path}')
  assert result.returncode != 0
  assert 'No checkpoint found' in result.stderr


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_the_next_run_resumes(tmp_path,
                                                           run_module):
  workdir = tmp_path / 'run'
  process = run_module.popen(
      'i2ijax.main', '--config=configs/gmvae_mdmm.py:smoke',
      f'--workdir={workdir}', '--config.train.num_steps=100000',
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  checkpoints = workdir / 'checkpoints'
  deadline = time.time() + 300
  while time.time() < deadline and not (
      checkpoints.exists() and any(p.name.isdigit()
                                   for p in checkpoints.iterdir())):
    assert process.poll() is None, process.stderr.read()[-3000:]
    time.sleep(0.5)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  match = re.search(r'Stopped at step (\d+)', stderr)
  assert match, stderr[-3000:]
  stopped = int(match.group(1))
  assert (checkpoints / str(stopped)).is_dir()

  result = run_module('i2ijax.main', '--config=configs/gmvae_mdmm.py:smoke',
                      f'--workdir={workdir}',
                      f'--config.train.num_steps={stopped + 1}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed from step {stopped}' in result.stderr
  assert (checkpoints / str(stopped + 1)).is_dir()
