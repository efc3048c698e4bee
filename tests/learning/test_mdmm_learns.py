"""MDMM and GMVAE-MDMM learn to translate on `shapes` (32×32, CPU budget).

The metric is the oracle domain accuracy: the fraction of translations that
the shapes domain oracle (≥ 0.98 accurate on real test images) puts in the
target domain. An untrained generator emits near-constant images that the
oracle puts in one domain whatever the target, so it scores the chance level
1/3 (measured before training, in the test). Each run is 1000 steps of the
`:shapes` preset (about 5 minutes of training on 2 CPU cores, plus
the before/after evaluations).

  - GMVAE-MDMM samples random attributes from the learned prior p(z|y) of the
    target domain; its random-style `domain_acc` reached 0.51 at 500 steps
    and 0.59 at 1000 steps in our runs (experiments/README.md). We require
    ≥ 0.45: 0.12 above chance, over 4 standard errors with the 384 scored
    translations, and below the measured value with margin for other seeds.
  - MDMM's faithful concat generator feeds the target code c only through
    constant channels that its instance norms cannot use, so in short runs
    it carries the domain in the encoded attribute z_a and ignores c: its
    random-style `domain_acc` stayed at chance (0.22-0.33) for 1000 steps in
    our runs, while reference-guided translation (z_a encoded from a
    target-domain image) reached 0.71. The test checks reference-guided
    `domain_acc_reference` ≥ 0.5 (a clear move from the 1/3 before).
"""

import jax
import pytest

from i2ijax import config_lib
from i2ijax import evaluate
from i2ijax import objectives
from i2ijax import train
from i2ijax.data import pipeline

NUM_STEPS = 1000
CASES = {
    # name: (config, metric, threshold)
    'gmvae_mdmm': (config_lib.gmvae_mdmm_config, 'domain_acc', 0.45),
    'mdmm': (config_lib.mdmm_config, 'domain_acc_reference', 0.5),
}


def _config(base):
  config = config_lib.apply_variant(base, 'shapes')
  config.train.update(dict(num_steps=NUM_STEPS, eval_every_steps=0,
                           sample_every_steps=NUM_STEPS,
                           checkpoint_every_steps=NUM_STEPS,
                           log_every_steps=100))
  config.eval.update(dict(num_examples=32, num_styles=2))
  return config


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CASES))
def test_domain_accuracy_rises_well_above_chance(name, tmp_path):
  make_config, metric, threshold = CASES[name]
  config = _config(make_config())
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  before = evaluate.compute_metrics(
      config, objective, objective.init(jax.random.key(config.train.seed)))
  state = train.train_and_evaluate(config, str(tmp_path))
  after = evaluate.compute_metrics(config, objective, state)
  print(name, metric, 'before', before[metric], 'after', after[metric])
  assert before[metric] <= 0.4, before
  assert after[metric] >= threshold, after
