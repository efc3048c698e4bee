"""MUNIT learns to translate day ↔ night on `shapes` (32×32, CPU budget).

The `:shapes` preset trains for NUM_STEPS steps with `python -m i2ijax.main`
in a subprocess (one device, as a user runs it) and evaluates once at the
end (`eval/metrics.json`); meanwhile this process scores the untrained model
with the same config and oracles.

Metrics (oracles: 3-domain shapes oracles viewed on day/night, ≥ 0.98
accurate on real test images):
  - `domain_acc`: the fraction of random-style translations that the domain
    oracle puts in the target domain, over day→night and night→day (128
    scored translations). Chance is about 1/2: an untrained generator emits
    near-constant images that land in one domain (or in `sketch`, which
    counts as wrong) whatever the target; measured 0.43 before training.
  - reference mode accuracy (`reference_mode_accuracy` below, 64 scored
    translations): how often a reference-guided translation shows the
    reference's own style mode (palette / outline colour) by the mode
    oracle. Chance is 1/3 of the domain accuracy; measured 0.17 before
    training.

Calibration (seed 0, `:shapes`, checkpoints of one 600-step run scored with
this module's settings): domain_acc 0.78 / 0.97 / 0.90 / 0.93 / 0.93 and
reference mode accuracy 0.55 / 0.66 / 0.66 / 0.66 / 0.69 at 100 / 200 / 300 /
400 / 600 steps (domain_acc_reference 0.98-1.0 from step 100). The test
trains NUM_STEPS = 200 and requires domain_acc ≥ 0.75 (0.25 above chance,
over 5 standard errors, and 0.2 below the measured value) and reference
mode accuracy ≥ 0.45 (3.5 standard errors below the measured 0.66, 0.28
above the untrained value).
"""

import json
import subprocess

import jax
import numpy as np
import pytest

from i2ijax import evaluate
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.metrics import oracles as oracles_lib
from i2ijax.training import checkpoint as checkpoint_lib
import config_files

CONFIG_FILE = config_files.CONFIG_DIR / 'munit.py'
NUM_STEPS = 200
EVAL = dict(num_examples=32, num_styles=2)
DOMAIN_ACC = 0.75
MODE_ACC_REFERENCE = 0.45


def reference_mode_accuracy(config, objective, params, oracles):
  """How often reference-guided translations take the reference's mode.

  Each test image of s is translated to t with the style encoded from a
  test image of t of another scene (as `domain_acc_reference`); a hit is a
  translation that the mode oracle labels exactly t·NUM_MODES + mode(ref).
  Chance is 1/NUM_MODES times the domain accuracy.
  """
  num_modes = oracles.num_modes
  test = [pipeline.load_eval_arrays(config.data, d, split='test',
                                    max_examples=config.eval.num_examples)
          for d in range(2)]
  translate = jax.jit(objective.translate_reference)
  hits = []
  for s, t in ((0, 1), (1, 0)):
    refs = np.roll(test[t]['image'], len(test[t]['image']) // 2, axis=0)
    modes = np.roll(test[t]['mode'], len(test[t]['mode']) // 2, axis=0)
    n = min(len(test[s]['image']), len(refs))
    fake = translate(params, test[s]['image'][:n], refs[:n],
                     np.full(n, t, np.int32), jax.random.key(0))
    hits.append(oracles.mode(np.asarray(fake)) == t * num_modes + modes[:n])
  return float(np.mean(np.concatenate(hits)))


@pytest.mark.slow
def test_munit_translates_day_night(tmp_path, run_module):
  config = config_files.get_config('munit', 'shapes')
  config.eval.update(EVAL)
  overrides = dict(num_steps=NUM_STEPS, eval_every_steps=NUM_STEPS,
                   sample_every_steps=10 * NUM_STEPS,   # once, at the end
                   checkpoint_every_steps=NUM_STEPS, log_every_steps=50)
  process = run_module.popen(
      'i2ijax.main', f'--config={CONFIG_FILE}:shapes', f'--workdir={tmp_path}',
      *[f'--config.train.{k}={v}' for k, v in overrides.items()],
      *[f'--config.eval.{k}={v}' for k, v in EVAL.items()],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  try:
    objective = objectives.build(config, pipeline.get_data_spec(config.data))
    initial = objective.init(jax.random.key(config.train.seed))
    before = evaluate.compute_metrics(config, objective, initial)
    oracles = oracles_lib.get_oracles(config.data,
                                      steps=config.eval.oracle_steps)
    mode_before = reference_mode_accuracy(config, objective, initial.params,
                                          oracles)
    _, stderr = process.communicate(timeout=900)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 0, stderr[-3000:]
  after = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
  assert after['step'] == NUM_STEPS

  checkpointer = checkpoint_lib.Checkpointer(str(tmp_path))
  try:
    trained, _, _ = checkpointer.restore(initial, NUM_STEPS)
  finally:
    checkpointer.close()
  mode_after = reference_mode_accuracy(config, objective, trained.params,
                                       oracles)
  print('domain_acc', before['domain_acc'], '->', after['domain_acc'],
        'domain_acc_reference', before['domain_acc_reference'], '->',
        after['domain_acc_reference'], 'mode_acc_reference', mode_before,
        '->', mode_after, 'content_iou', after['content_iou'])
  assert before['domain_acc'] <= 0.6, before
  assert mode_before <= 0.3, mode_before
  assert after['domain_acc'] >= DOMAIN_ACC, after
  assert mode_after >= MODE_ACC_REFERENCE, (mode_before, mode_after)
