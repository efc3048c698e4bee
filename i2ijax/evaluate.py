"""Evaluates a trained run: `python -m i2ijax.evaluate --workdir=W`.

Restores the latest (or `--step`) checkpoint and its config, computes the
metrics of `config.eval.metrics` (or `--metrics=oracle,fid,kid,lpips,ndb`
or `--metrics=fid,kid,lpips,ndb,domain_acc`),
prints them and writes `W/eval/metrics.json` (a flat JSON object of metric
name to number) and `W/eval/metrics.md`.

`oracle` (the default; `shapes` only): `domain_acc`, `content_iou`,
`mode_coverage` and `modes_per_input` (random styles),
`domain_acc_reference` / `content_iou_reference` (styles encoded from
target-domain images; oracle networks, see `i2ijax.metrics.shapes_metrics`)
and, for mixture models, `cluster_acc`. `fid`, `kid`, `lpips`, `ndb` and
`domain_acc` (any source with known domains; `domain_acc` is judged by a
domain classifier trained on the source's real images, whose real test
accuracy is `domain_classifier/real_test_acc`):
`i2ijax.metrics.distribution_metrics`.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections


def _define_flags():
  """CLI flags, defined only when run as a program (the training loop
  imports this module next to `main`'s own `--workdir`)."""
  flags.DEFINE_string('workdir', None, 'Run directory holding checkpoints.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
  flags.DEFINE_integer('num_examples', None,
                       'Override config.eval.num_examples.')
  flags.DEFINE_integer('oracle_steps', None,
                       'Override config.eval.oracle_steps (shapes oracles).')
  flags.DEFINE_string('metrics', None, 'Override config.eval.metrics, e.g. '
                      'oracle,fid,kid,lpips,ndb or fid,kid,domain_acc.')
  flags.mark_flag_as_required('workdir')


def compute_metrics(config: ml_collections.ConfigDict, objective, state,
                    plot_dir: str | None = None) -> dict[str, float]:
  """All metrics available for `config.data` for the state's params.

  With `plot_dir`, models with unsupervised style codes (TUNIT) also write
  `style_pca.png` there: a PCA scatter of the style codes of real images,
  coloured by true domain.
  """
  from i2ijax import objectives as objectives_lib  # pylint: disable=g-import-not-at-top
  from i2ijax.metrics import distribution_metrics  # pylint: disable=g-import-not-at-top
  eval_cfg = config.eval
  requested = distribution_metrics.parse_metrics(
      eval_cfg.get('metrics', 'oracle'))
  if 'oracle' in requested and config.data.name != 'shapes':
    logging.warning('No oracle metrics for data source %r: they need the '
                    'shapes benchmark (use --metrics=fid,kid,lpips,ndb,'
                    'domain_acc).',
                    config.data.name)
    requested = tuple(m for m in requested if m != 'oracle')
  if not requested:
    return {}
  params = objectives_lib.inference_params(objective, state)
  if hasattr(objective, 'style_table'):    # TUNIT: per-domain mean styles
    images, domains = _real_images(config.data,
                                   eval_cfg.style_table_examples)
    params['style_table'] = objective.style_table(params, images, domains)
    if plot_dir:
      from i2ijax.utils import plots  # pylint: disable=g-import-not-at-top
      plots.save_pca_scatter(
          os.path.join(plot_dir, 'style_pca.png'),
          jax.jit(objective.encode_style)(params, images), domains)
  translate = jax.jit(lambda x, s, t, k: objective.translate(params, x, s, t,
                                                             k))
  metrics = {}
  if 'oracle' in requested:
    metrics.update(_oracle_metrics(config, objective, params, translate))
  if set(requested) - {'oracle'}:
    from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
    counts = {k: eval_cfg.get(k, default) for k, default in (
        ('lpips_inputs', 100), ('lpips_styles', 20), ('ndb_bins', 100),
        ('classifier_steps', 1000), ('classifier_examples', 1000))}
    metrics.update(distribution_metrics.distribution_metrics(
        translate, config.data,
        pipeline.get_data_spec(config.data).domain_names, requested,
        num_examples=eval_cfg.num_examples, batch_size=eval_cfg.batch_size,
        rng=jax.random.key(1), **counts))
  return {k: float(v) for k, v in metrics.items()}


def _oracle_metrics(config, objective, params, translate):
  """The shapes oracle metrics (module docstring)."""
  from i2ijax.metrics import oracles as oracles_lib  # pylint: disable=g-import-not-at-top
  from i2ijax.metrics import shapes_metrics  # pylint: disable=g-import-not-at-top
  eval_cfg = config.eval
  oracles = oracles_lib.get_oracles(config.data, steps=eval_cfg.oracle_steps,
                                    seed=0)
  reference = jax.jit(lambda x, s, ref, t, k: objective.translate_reference(
      params, x, ref, t, k))
  cluster_fn = None
  if objective.cluster is not None:
    cluster_fn = jax.jit(lambda x, d: objective.cluster(params, x, d))
  metrics = shapes_metrics.translation_metrics(
      translate, config.data, oracles, num_examples=eval_cfg.num_examples,
      num_styles=eval_cfg.num_styles, batch_size=eval_cfg.batch_size,
      rng=jax.random.key(0), cluster_fn=cluster_fn,
      num_components=getattr(objective, 'num_components', None),
      reference_fn=reference)
  metrics.update({f'oracle/{k}': v for k, v in oracles.test_scores.items()})
  return metrics


def _real_images(data_cfg, per_domain: int):
  """Up to `per_domain` real training images of every selected domain:
  (images (N, S, S, 3) in [-1, 1], domains (N,) int32)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
  images, domains = [], []
  for d in range(len(pipeline.get_data_spec(data_cfg).domain_names)):
    arrays = pipeline.load_eval_arrays(data_cfg, d, split='train',
                                       max_examples=per_domain)
    images.append(arrays['image'])
    domains.append(np.full(len(arrays['image']), d, np.int32))
  return np.concatenate(images), np.concatenate(domains)


def write_metrics(workdir: str, step: int, metrics: dict[str, float]) -> str:
  """Writes eval/metrics.json (flat, plus 'step') and eval/metrics.md."""
  out_dir = os.path.join(workdir, 'eval')
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, 'metrics.json')
  with open(path + '.tmp', 'w') as f:
    json.dump({'step': step, **metrics}, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)
  with open(os.path.join(out_dir, 'metrics.md'), 'w') as f:
    f.write(f'| metric (step {step}) | value |\n|---|---|\n')
    for key in sorted(metrics):
      f.write(f'| {key} | {metrics[key]:.4f} |\n')
  return path


def evaluate_workdir(workdir: str, step: int | None = None,
                     num_examples: int | None = None,
                     oracle_steps: int | None = None,
                     metrics: str | None = None) -> dict[str, float]:
  """Restores a run and evaluates it; returns and writes the metrics."""
  from i2ijax import config_lib, objectives  # pylint: disable=g-import-not-at-top
  from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
  from i2ijax.training import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  config, step = checkpoint_lib.restore_config(workdir, step)
  if num_examples:
    config.eval.num_examples = num_examples
  if oracle_steps:
    config.eval.oracle_steps = oracle_steps
  if metrics:
    config.eval.metrics = metrics
  config_lib.validate(config)
  objective = objectives.build(config, pipeline.get_data_spec(config.data))
  target = objective.init(jax.random.key(0))
  checkpointer = checkpoint_lib.Checkpointer(workdir)
  try:
    state, _, _ = checkpointer.restore(target, step)
  finally:
    checkpointer.close()
  metrics = compute_metrics(config, objective, state,
                            plot_dir=os.path.join(workdir, 'eval'))
  write_metrics(workdir, step, metrics)
  return metrics


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  metrics = evaluate_workdir(flags.FLAGS.workdir, flags.FLAGS.step,
                             flags.FLAGS.num_examples,
                             flags.FLAGS.oracle_steps, flags.FLAGS.metrics)
  width = max([len(k) for k in metrics] + [6])
  for key in sorted(metrics):
    print(f'{key:<{width}}  {metrics[key]:.4f}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
