"""Oracles and the shapes translation metrics on known translators.

The oracles are the evaluator's 32x32 ones (tests/metrics/conftest.py): on a
fresh machine they are trained first (minutes), hence `slow`. Test images
are rendered directly so that a test can re-render their scenes.
"""

import jax
import numpy as np
import pytest

from i2ijax.data import shapes_render
from i2ijax.metrics import shapes_metrics

pytestmark = pytest.mark.slow


def test_oracles_are_accurate_on_real_test_images(trained_oracles):
  scores = trained_oracles.test_scores
  assert scores['domain_acc_real'] >= 0.98, scores
  assert scores['mode_acc_real'] >= 0.98, scores
  assert scores['mask_iou_real'] >= 0.95, scores


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
