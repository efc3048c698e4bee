"""FID / KID / LPIPS / NDB of translators whose answers are known.

Shapes arrays are rendered directly (`rendered_shapes`); most tests use a
cheap stand-in feature network (pooled pixels) and distance (mean absolute
difference), so they check the protocol (which images are compared with
which); one test runs the real InceptionV3 and LPIPS networks on a few
images.
"""

import jax
import numpy as np
import pytest

from i2ijax.metrics import distribution_metrics as dm
from i2ijax.metrics import shapes_metrics

NAMES = ('day', 'night', 'sketch')


def _pixel_features(images):
  """(B, 32, 32, 3) → (B, 48): 8×8 average-pooled pixels."""
  return np.asarray(images).reshape(len(images), 4, 8, 4, 8, 3).mean(
      (2, 4)).reshape(len(images), -1)


def _mean_abs_difference(x0, x1):
  return np.abs(np.asarray(x0) - np.asarray(x1)).mean((1, 2, 3))


def _metrics(translate_fn, shapes, tmp_path, metrics=('fid', 'kid', 'lpips',
                                                     'ndb'), **kwargs):
  options = dict(num_examples=60, batch_size=16, rng=jax.random.key(0),
                 lpips_inputs=4, lpips_styles=3, ndb_bins=10,
                 ndb_train_examples=200, arrays_fn=shapes,
                 feature_fn=_pixel_features, extractor='pooled-pixels',
                 lpips_fn=_mean_abs_difference, cache_dir=str(tmp_path))
  options.update(kwargs)
  return dm.distribution_metrics(translate_fn, shapes.data_cfg, NAMES,
                                 metrics, **options)


def _real_target_translator(shapes):
  """Returns random real *training* images of the target domain."""
  def translate(images, source, target, key):
    del source
    pool = shapes(shapes.data_cfg, int(target[0]), split='train')['image']
    index = jax.random.randint(key, (len(images),), 0, len(pool))
    return pool[np.asarray(index)]
  return translate


def _identity(images, source, target, key):
  del source, target, key
  return images


def test_real_target_images_score_far_better_than_the_identity(
    rendered_shapes, tmp_path):
  real = _metrics(_real_target_translator(rendered_shapes), rendered_shapes,
                  tmp_path)
  same = _metrics(_identity, rendered_shapes, tmp_path)
  for name in NAMES:
    assert real[f'fid/to_{name}'] < 0.25 * same[f'fid/to_{name}'], name
    assert abs(real[f'kid/to_{name}']) < 0.1 * same[f'kid/to_{name}'], name
  assert real['jsd'] < same['jsd'] and real['ndb_ratio'] < same['ndb_ratio']
  # Per-target values average to the headline numbers.
  assert real['fid'] == pytest.approx(
      np.mean([real[f'fid/to_{n}'] for n in NAMES]))


def test_lpips_diversity_is_zero_for_a_deterministic_translator(
    rendered_shapes, tmp_path):
  deterministic = _metrics(_identity, rendered_shapes, tmp_path, ['lpips'])
  random_styles = _metrics(_real_target_translator(rendered_shapes),
                           rendered_shapes, tmp_path, ['lpips'])
  assert set(deterministic) == {'lpips'} | {
      f'lpips/{s}->{t}' for s in NAMES for t in NAMES if s != t}
  assert deterministic['lpips'] == 0.0
  assert random_styles['lpips'] > 0.1


def test_a_collapsed_translator_fails_the_ndb_test(rendered_shapes,
                                                   tmp_path):
  def constant(images, source, target, key):
    del source, key
    pool = rendered_shapes(rendered_shapes.data_cfg, int(target[0]),
                           split='train')['image']
    return np.repeat(pool[:1], len(images), 0)
  result = _metrics(constant, rendered_shapes, tmp_path, ['ndb'])
  # Every generated image falls into one of 10 bins: the others are empty.
  for name in NAMES:
    assert result[f"ndb/to_{name}"] >= 5, result
  assert result['jsd'] > 0.3


def test_unknown_metric_is_a_clear_error():
  assert dm.parse_metrics('oracle, fid,kid') == ('oracle', 'fid', 'kid')
  with pytest.raises(shapes_metrics.MetricsInputError, match="'fd'"):
    dm.parse_metrics('fd,kid')


def test_pretrained_networks_end_to_end(rendered_shapes, tmp_path,
                                       optimized_compilation):
  """InceptionV3 features and LPIPS (AlexNet) weights on a few images of
  two domains (the FID of 4 images is only a smoke value)."""
  result = dm.distribution_metrics(
      _real_target_translator(rendered_shapes), rendered_shapes.data_cfg,
      NAMES[:2], ['fid', 'kid', 'lpips'], num_examples=4, batch_size=4,
      rng=jax.random.key(0), lpips_inputs=2, lpips_styles=2,
      arrays_fn=rendered_shapes, cache_dir=str(tmp_path))
  assert set(result) == {'fid', 'kid', 'lpips', 'fid/to_day', 'fid/to_night',
                         'kid/to_day', 'kid/to_night', 'kid_std/to_day',
                         'kid_std/to_night', 'lpips/day->night',
                         'lpips/night->day'}
  assert all(np.isfinite(v) for v in result.values()), result
  assert result['fid'] > 0 and result['lpips'] > 0
