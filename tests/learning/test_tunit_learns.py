"""TUNIT's guiding network learns to cluster `shapes` without labels.

The `:shapes` preset (32×32, all three domains mixed into one unlabelled
stream, K = 3 pseudo-domains) trains for NUM_STEPS steps with
`python -m i2ijax.main` in a subprocess, WARMUP_STEPS of them E-only, the
rest joint E + D + G steps (both jitted steps, the queue and the EMA start
run as in a user's training), and the evaluator's `cluster_acc` (Hungarian
accuracy of argmax E_c against the true domains, real test images) is read
from `eval/metrics.json`. The untrained E is scored in this process.

Before training: the random-feature E splits the images unevenly over its
clusters; its cluster_acc was 0.46 (chance for a single cluster is 1/3),
asserted ≤ 0.5. After 250 warm-up steps E separates `night` from
`day` + `sketch` exactly: cluster_acc 0.667 after 300 steps and after 400
(250 warm-up) in our runs; E-only warm-up probes at 100-300 steps with E
learning rates 3e-4-3e-3, IIC weight 5 or 20, normalised or raw style codes
all gave the same two clusters (experiments/README.md). The test requires
≥ 0.6 and a rise of ≥ 0.1 over the untrained E: only reachable with at
least two domains cleanly told apart. Splitting `day` from `sketch` is the
open part of issue 4 (aim 0.95), not something this test claims.
"""

import json

import jax
import pytest

from i2ijax import config_lib
from i2ijax import evaluate
from i2ijax import objectives
from i2ijax.data import pipeline
import config_files

NUM_STEPS = 300
WARMUP_STEPS = 250
THRESHOLD = 0.6
EVAL = dict(num_examples=32, num_styles=2)


@pytest.mark.slow
def test_cluster_accuracy_rises_well_above_chance(tmp_path, run_module):
  config = config_files.get_config('tunit', 'shapes')
  config.eval.update(EVAL)
  config_lib.validate(config)
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  before = evaluate.compute_metrics(
      config, objective, objective.init(jax.random.key(config.train.seed)))

  overrides = dict(num_steps=NUM_STEPS, warmup_steps=WARMUP_STEPS,
                   ema_start_steps=WARMUP_STEPS + 25,
                   eval_every_steps=NUM_STEPS, sample_every_steps=NUM_STEPS,
                   checkpoint_every_steps=NUM_STEPS, log_every_steps=50)
  result = run_module(
      'i2ijax.main', '--config=configs/tunit.py:shapes',
      f'--workdir={tmp_path}',
      *[f'--config.train.{k}={v}' for k, v in overrides.items()],
      *[f'--config.eval.{k}={v}' for k, v in EVAL.items()], timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  after = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
  assert after['step'] == NUM_STEPS
  print('cluster_acc before', before['cluster_acc'], 'after',
        after['cluster_acc'], after)
  assert before['cluster_acc'] <= 0.5, before
  assert after['cluster_acc'] >= THRESHOLD, after
  assert after['cluster_acc'] >= before['cluster_acc'] + 0.1, (before, after)
