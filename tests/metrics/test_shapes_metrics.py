"""Oracles and the shapes translation metrics on known translators.

The oracles are the evaluator's 32x32 ones (tests/metrics/conftest.py): on a
fresh machine they are trained first (minutes), hence `slow`. Test images
are rendered directly so that a test can re-render their scenes.
"""

import jax
import numpy as np
import pytest

from i2ijax.data import pipeline
from i2ijax.data import shapes_render
from i2ijax.metrics import oracles as oracles_lib
from i2ijax.metrics import shapes_metrics

pytestmark = pytest.mark.slow


def test_oracles_are_accurate_on_real_test_images(trained_oracles,
                                                 rendered_shapes):
  """Re-measured here, not read from the (possibly packaged) cache file."""
  data_cfg = rendered_shapes.data_cfg
  test = [pipeline.load_eval_arrays(data_cfg, d, split='test')
          for d in range(trained_oracles.num_domains)]
  stored = dict(trained_oracles.test_scores)
  scores = trained_oracles.evaluate_real(test)
  assert scores['domain_acc_real'] >= 0.98, scores
  assert scores['mode_acc_real'] >= 0.98, scores
  assert scores['mask_iou_real'] >= 0.95, scores
  for key, value in stored.items():
    assert abs(scores[key] - value) < 1e-6, (key, value, scores[key])


def test_oracles_restricted_to_a_domain_subset(trained_oracles,
                                              rendered_shapes):
  """Two-domain models are judged by the all-domain oracles, re-indexed."""
  names = trained_oracles.domain_names
  view = trained_oracles.restricted_to((names[1], names[0]))
  assert view.num_domains == 2
  m = shapes_render.NUM_MODES
  to_view = {0: 1, 1: 0, 2: -1}
  for full_index in range(3):
    arrays = rendered_shapes(None, full_index, split='test', max_examples=40)
    full_domain = trained_oracles.domain(arrays['image'])
    full_mode = trained_oracles.mode(arrays['image'])
    assert np.mean(full_domain == full_index) >= 0.95
    np.testing.assert_array_equal(view.domain(arrays['image']),
                                  [to_view[d] for d in full_domain])
    np.testing.assert_array_equal(
        view.mode(arrays['image']),
        [to_view[l // m] * m + l % m if to_view[l // m] >= 0 else -1
         for l in full_mode])
  np.testing.assert_array_equal(view.mask(arrays['image']),
                                trained_oracles.mask(arrays['image']))
  with pytest.raises(oracles_lib.OracleError, match='cannot judge'):
    trained_oracles.restricted_to(('fog',))


def test_oracle_training_learns_in_a_few_steps(rendered_shapes,
                                               optimized_compilation):
  """The training recipe itself (the evaluator's oracles use 2000 steps):
  after 200 steps the classifiers are already right and the mask U-Net is
  well on its way (an untrained one scores far lower)."""
  data_cfg = rendered_shapes.data_cfg
  spec = pipeline.get_data_spec(data_cfg)
  train = [pipeline.load_eval_arrays(data_cfg, d, split='train')
           for d in range(len(spec.domain_names))]
  test = [pipeline.load_eval_arrays(data_cfg, d, split='test')
          for d in range(len(spec.domain_names))]
  untrained = oracles_lib.train_oracles(train, spec.domain_names,
                                        data_cfg.image_size,
                                        steps=0).evaluate_real(test)
  scores = oracles_lib.train_oracles(train, spec.domain_names,
                                     data_cfg.image_size,
                                     steps=200).evaluate_real(test)
  assert scores['domain_acc_real'] >= 0.98, scores
  assert scores['mode_acc_real'] >= 0.95, scores
  assert scores['mask_iou_real'] >= 0.75, scores
  assert untrained['mask_iou_real'] < 0.6, untrained


def _metrics(translate_fn, oracles, arrays_fn, **kwargs):
  return shapes_metrics.translation_metrics(
      translate_fn, arrays_fn.data_cfg, oracles, num_examples=30, num_styles=2,
      batch_size=16, rng=jax.random.key(0), arrays_fn=arrays_fn, **kwargs)


def test_ground_truth_translator_scores_high(trained_oracles,
                                             rendered_shapes):
  """Re-rendering the source scene in the target domain, random mode."""

  def translate(images, source, target, key):
    del source
    modes = jax.random.randint(key, (len(images),), 0,
                               shapes_render.NUM_MODES)
    return np.stack([
        shapes_render.render(rendered_shapes.scene_of(x), int(t), int(m),
                             rendered_shapes.size, seed=7)[0]
        for x, t, m in zip(images, target, np.asarray(modes))
    ]).astype(np.float32) / 127.5 - 1

  def translate_like_reference(images, source, references, target, key):
    return translate(images, source, target, key)

  metrics = _metrics(translate, trained_oracles, rendered_shapes,
                     cluster_fn=lambda x, d: d,
                     num_components=len(shapes_render.DOMAINS),
                     reference_fn=translate_like_reference)
  assert metrics['domain_acc'] >= 0.95, metrics
  assert metrics['domain_acc_reference'] >= 0.95, metrics
  assert metrics['content_iou_reference'] >= 0.9, metrics
  assert metrics['content_iou'] >= 0.9, metrics
  assert metrics['mode_coverage'] == 1.0, metrics
  assert metrics['cluster_acc'] == 1.0
  assert metrics['num_clusters_used'] == len(shapes_render.DOMAINS)
  assert 'cluster_acc_modes' not in metrics   # K != domains x modes


def test_identity_translator_keeps_content_but_never_changes_domain(
    trained_oracles, rendered_shapes):
  metrics = _metrics(lambda x, s, t, key: x, trained_oracles, rendered_shapes,
                     reference_fn=lambda x, s, ref, t, key: ref)
  assert metrics['domain_acc'] <= 0.05, metrics
  # Copying the reference lands in the target domain with the wrong scene.
  assert metrics['domain_acc_reference'] >= 0.95, metrics
  assert metrics['content_iou_reference'] <= 0.5, metrics
  assert metrics['content_iou'] >= 0.9, metrics
  assert metrics['mode_coverage'] == 0.0, metrics


def test_blank_translator_has_no_content(trained_oracles, rendered_shapes):
  blank = lambda x, s, t, key: np.zeros_like(x)
  assert _metrics(blank, trained_oracles,
                  rendered_shapes)['content_iou'] <= 0.3


def test_cluster_acc_modes_when_components_are_domains_times_modes(
    trained_oracles, rendered_shapes):
  num_modes = shapes_render.NUM_MODES

  def cluster_by_oracle_mode(images, domain):
    del domain
    return trained_oracles.mode(images)

  metrics = _metrics(lambda x, s, t, key: x, trained_oracles, rendered_shapes,
                     cluster_fn=cluster_by_oracle_mode,
                     num_components=len(shapes_render.DOMAINS) * num_modes)
  assert metrics['cluster_acc_modes'] >= 0.95
  assert metrics['cluster_acc'] >= 0.3   # 9 clusters matched to 3 domains


def test_wrong_output_shape_is_a_clear_error(trained_oracles,
                                             rendered_shapes):
  with pytest.raises(shapes_metrics.MetricsInputError, match='shape'):
    _metrics(lambda x, s, t, key: x[:, :8], trained_oracles, rendered_shapes)
