"""Cached real-data statistics (metrics/reference_stats.py), with a cheap
stand-in feature function (per-channel means and stds: 6-d features)."""

import numpy as np
import pytest

from i2ijax.metrics import distances, reference_stats


class CountingFeatures:
  def __init__(self):
    self.images = 0

  def __call__(self, batch):
    self.images += len(batch)
    return np.concatenate([batch.mean((1, 2)), batch.std((1, 2))], -1)


def _batches(num_batches=3, batch=4, size=8, seed=0):
  rng = np.random.default_rng(seed)
  for _ in range(num_batches):
    yield rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _never():
  raise AssertionError('the cache should have been used')
  yield  # pylint: disable=unreachable


def test_stats_are_computed_then_cached(tmp_path):
  fn = CountingFeatures()
  key = {'dataset': 'shapes', 'split': 'train', 'resolution': 8,
         'cache_dir': str(tmp_path)}
  stats = reference_stats.reference_stats(_batches(), fn, **key)
  expected = np.concatenate([fn(b) for b in _batches()])
  np.testing.assert_allclose(stats['features'], expected, rtol=1e-6)
  mu, sigma = distances.gaussian_stats(stats['features'])
  np.testing.assert_array_equal(stats['mu'], mu)
  np.testing.assert_array_equal(stats['sigma'], sigma)
  assert stats['sigma'].dtype == np.float64 and stats['mu'].shape == (6,)
  again = reference_stats.reference_stats(_never(), fn, **key)
  for name in ('mu', 'sigma', 'features'):
    np.testing.assert_array_equal(again[name], stats[name])


@pytest.mark.parametrize('change', [
    {'dataset': 'other'}, {'split': 'test'}, {'resolution': 16},
    {'domain': 'b'}, {'max_examples': 5}, {'extractor': 'random-net'}])
def test_a_different_key_never_reuses_stats(tmp_path, change):
  fn = CountingFeatures()
  key = {'dataset': 'shapes', 'split': 'train', 'resolution': 8,
         'domain': 'a', 'cache_dir': str(tmp_path)}
  reference_stats.reference_stats(_batches(), fn, **key)
  assert fn.images == 12
  reference_stats.reference_stats(_batches(), fn, **{**key, **change})
  assert fn.images > 12


def test_max_examples_truncates_the_iterator(tmp_path):
  fn = CountingFeatures()
  stats = reference_stats.reference_stats(
      _batches(num_batches=100), fn, dataset='d', split='train',
      resolution=8, max_examples=6, cache_dir=str(tmp_path))
  assert stats['features'].shape == (6, 6) and fn.images == 6


def test_a_file_with_another_key_is_recomputed(tmp_path):
  key = reference_stats.cache_key('d', 'train', 8)
  path = reference_stats.cache_path(key, str(tmp_path))
  np.savez(path, key='{"dataset": "not d"}', mu=0, sigma=0, features=0)
  fn = CountingFeatures()
  stats = reference_stats.reference_stats(_batches(), fn, dataset='d',
                                          split='train', resolution=8,
                                          cache_dir=str(tmp_path))
  assert fn.images == 12 and stats['features'].shape == (12, 6)


def test_too_few_images_is_an_error(tmp_path):
  with pytest.raises(ValueError, match='at least 2'):
    reference_stats.reference_stats(iter([np.zeros((1, 8, 8, 3))]),
                                    CountingFeatures(), dataset='d',
                                    split='train', resolution=8,
                                    cache_dir=str(tmp_path))
