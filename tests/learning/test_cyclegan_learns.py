"""CycleGAN learns to translate day ↔ night on `shapes` (32×32, CPU budget).

Trains the `:shapes` preset (ngf = ndf = 16, ResNet-6, PatchGAN n_layers 3,
batch 4 + 4, lr 5e-4 constant for half the run then linear to 0) for
NUM_STEPS steps with `python -m i2ijax.main` in a subprocess, as a user runs
it, and reads the final evaluation from `eval/metrics.json`; the untrained
model is scored in this process with the same config and oracles.

The judges are the shapes oracles of all three domains restricted to day and
night (a translation the domain oracle puts in `sketch` counts as wrong), so
with two targets chance is at most 1/2. Measured for untrained models (seeds
0, 1, 2): domain_acc 0.0, 0.16, 0.41 (their near-constant outputs land in
one domain, often `sketch`), content_iou 0.10–0.12.

Calibration (one XLA thread, as here; 2026-12-06): the preset's 400 steps
sit where night → day is still being learnt, so whether a seed reaches the
bar there depends on float rounding (a GAN trajectory amplifies it): seeds
0, 1, 2 gave domain_acc 0.73, 0.92, 0.95 at one commit and 1.0, 0.98 (seeds
0, 1) with the transposed convs computed in another, equally exact order
(their per-step updates agree to float rounding). At 600 steps all three
seeds gave domain_acc 1.0 and content_iou 0.42, 0.46, 0.45, so the test
trains 600 and asserts domain_acc ≥ 0.75 (both directions must mostly work)
and content_iou ≥ 0.3 (shapes stay in place; 3× the untrained value).
"""

import json

import jax
import pytest

from i2ijax import evaluate
from i2ijax import objectives
from i2ijax.data import pipeline
import config_files

NUM_STEPS = 600
EVAL = dict(num_examples=32, num_styles=1)
BEFORE_MAX = 0.5
THRESHOLD = 0.75
CONTENT_IOU_MIN = 0.3


@pytest.mark.slow
def test_domain_accuracy_rises_from_chance(tmp_path, run_module):
  config = config_files.get_config('cyclegan', 'shapes')
  config.eval.update(EVAL)
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  before = evaluate.compute_metrics(
      config, objective, objective.init(jax.random.key(config.train.seed)))

  overrides = dict(num_steps=NUM_STEPS, eval_every_steps=NUM_STEPS,
                   sample_every_steps=NUM_STEPS,
                   checkpoint_every_steps=NUM_STEPS, log_every_steps=100)
  result = run_module(
      'i2ijax.main', '--config=configs/cyclegan.py:shapes',
      f'--workdir={tmp_path}',
      *[f'--config.train.{k}={v}' for k, v in overrides.items()],
      *[f'--config.eval.{k}={v}' for k, v in EVAL.items()])
  assert result.returncode == 0, result.stderr[-3000:]
  after = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
  assert after['step'] == NUM_STEPS
  print('cyclegan domain_acc before', before['domain_acc'], 'after',
        after['domain_acc'], 'content_iou', after['content_iou'])
  assert before['domain_acc'] <= BEFORE_MAX, before
  assert after['domain_acc'] >= THRESHOLD, after
  assert after['content_iou'] >= CONTENT_IOU_MIN, after
