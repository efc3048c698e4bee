"""FID, KID, LPIPS diversity, NDB / JSD and domain accuracy of a
translator, for any data source whose domains are known (shapes, image
folders, TFDS splits).

Protocol (spec `mdmm_gmvae.md`, evaluation; counts are recorded in the
config next to every result):
  * generated set of target t: the test images (at most `num_examples`) of
    every other domain s translated into t, one random style each;
  * `fid/to_<t>` (Fréchet distance of InceptionV3 pool features, float64
    on the host) and `kid/to_<t>` ± `kid_std/to_<t>` (unbiased cubic-kernel
    MMD², mean and std over 100 subsets, `distances.kid`) against at most
    `num_examples` real test images of t; `fid` and `kid` are the means
    over targets.
    With a few hundred images FID is biased upwards: compare runs only at
    equal counts (KID is unbiased);
  * `lpips/<s>-><t>` and their mean `lpips`: mean LPIPS (AlexNet, v0.1)
    over the consecutive pairs of `lpips_styles` random styles of each of
    the first `lpips_inputs` test images of s (the BicycleGAN / DRIT
    protocol is 100 inputs × 20 styles = 1900 pairs);
  * `ndb/to_<t>`, `ndb_ratio/to_<t>`, `jsd/to_<t>` and the means `ndb_ratio`,
    `jsd`: k-means bins (`ndb_bins`, at most a tenth of the training images)
    of the training images of t, average-pooled to `ndb_size` pixels, vs the
    generated set of t (two-proportion z-test, α = 0.05; Richardson & Weiss
    2018);
  * `domain_acc/to_<t>` and their mean `domain_acc`: the fraction of the
    generated set of t that a domain classifier puts in t, trained on the
    real training images of the selected domains (`domain_classifier`,
    cached; `classifier_steps` steps, `classifier_examples` images per
    domain); its accuracy on real test images is reported next to it as
    `domain_classifier/real_test_acc`. On `shapes` the `oracle` metrics
    report a `domain_acc` too (their own judge): request one of the two.
Real-image Inception statistics are cached per dataset, split, resolution
and domain (`reference_stats`).
"""

import json
from typing import Any, Callable, Sequence

import jax
import numpy as np

from i2ijax.metrics import distances
from i2ijax.metrics import domain_classifier
from i2ijax.metrics import reference_stats
from i2ijax.metrics import shapes_metrics

METRICS = ('fid', 'kid', 'lpips', 'ndb', 'domain_acc')


def parse_metrics(names: str | Sequence[str]) -> tuple[str, ...]:
  """'fid,kid' or a sequence → validated names (`oracle` is allowed and
  means the shapes oracle metrics, computed elsewhere)."""
  if isinstance(names, str):
    names = [n for n in names.split(',') if n.strip()]
  names = tuple(n.strip() for n in names)
  unknown = sorted(set(names) - set(METRICS) - {'oracle'})
  if unknown:
    raise shapes_metrics.MetricsInputError(
        f'Unknown metrics {unknown}; known: oracle, {", ".join(METRICS)}.')
  if {'oracle', 'domain_acc'} <= set(names):
    raise shapes_metrics.MetricsInputError(
        "Metrics 'oracle' and 'domain_acc' both report domain_acc (judged "
        'by the shapes oracle or by a domain classifier trained on the '
        'source): request one of them.')
  return names


def dataset_id(data_cfg) -> str:
  """What identifies the real images of `data_cfg` in the statistics cache
  (the folder for `folder` sources, the render and resize sizes)."""
  keys = ('name', 'root', 'source_size', 'load_size', 'image_size')
  return json.dumps({k: data_cfg.get(k) for k in keys}, sort_keys=True)


def _translate_all(translate_fn, images, source, target, batch_size, rng):
  """All `images` of domain `source` into `target`, one style each."""
  def run(chunk, index, valid):
    del valid
    n = chunk.shape[0]
    out = translate_fn(chunk, np.full(n, source, np.int32),
                       np.full(n, target, np.int32),
                       jax.random.fold_in(rng, index))
    return shapes_metrics.checked_images(out, chunk.shape, 'translate_fn')
  return shapes_metrics.map_batches(run, images, batch_size)


def _downsample(images: np.ndarray, size: int) -> np.ndarray:
  """(N, S, S, 3) → (N, size·size·3) by average pooling (S multiple of
  size)."""
  n, s = images.shape[0], images.shape[1]
  factor = max(s // size, 1)
  pooled = images[:, :s // factor * factor, :s // factor * factor]
  pooled = pooled.reshape(n, s // factor, factor, s // factor, factor, 3)
  return pooled.mean((2, 4)).reshape(n, -1)


def distribution_metrics(
    translate_fn: Callable[..., Any], data_cfg,
    domain_names: Sequence[str], metrics: Sequence[str], *,
    num_examples: int, batch_size: int, rng: jax.Array,
    lpips_inputs: int = 100, lpips_styles: int = 20, ndb_bins: int = 100,
    ndb_size: int = 16, ndb_train_examples: int = 2000,
    classifier_steps: int = 1000, classifier_examples: int = 1000,
    arrays_fn: Callable[..., dict[str, np.ndarray]] | None = None,
    feature_fn: Callable[[np.ndarray], Any] | None = None,
    extractor: str = reference_stats.INCEPTION_ID,
    lpips_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    cache_dir: str | None = None) -> dict[str, float]:
  """The requested `metrics` (subset of METRICS) of a translator.

  Args:
    translate_fn: (images (B, S, S, 3) in [-1, 1], source (B,), target (B,),
      key) → (B, S, S, 3), a random style drawn from `key` (as for
      `shapes_metrics.translation_metrics`); always called with B =
      batch_size.
    data_cfg: `config.data`; domain_names: its selected domains.
    metrics: names from METRICS ('oracle' is ignored here).
    num_examples: test images per domain (inputs and real sets).
    batch_size: translator and feature-network batch size.
    rng: a `jax.random.key`.
    lpips_inputs, lpips_styles, ndb_bins, ndb_size, ndb_train_examples,
      classifier_steps, classifier_examples: the protocol's counts (module
      docstring).
    arrays_fn: default `pipeline.load_eval_arrays` (tests inject arrays).
    feature_fn, extractor: image batch → (B, D) features and the name that
      keys their cached statistics (default InceptionV3 for FID).
    lpips_fn: (x0, x1) → (B,) distances (default LPIPS AlexNet).
    cache_dir: reference statistics and domain classifier cache (default
      ~/.cache/i2ijax/{reference_stats,oracles}).
  """
  metrics = set(parse_metrics(metrics)) - {'oracle'}
  if not metrics:
    return {}
  arrays_fn = arrays_fn or shapes_metrics.default_arrays_fn
  num_domains = len(domain_names)
  if num_domains < 2:
    raise shapes_metrics.MetricsInputError(
        f'Translation metrics need at least 2 domains, got {domain_names}.')
  test = [arrays_fn(data_cfg, d, split='test',
                    max_examples=num_examples)['image']
          for d in range(num_domains)]
  out = {}
  pair_rng = lambda s, t, salt: jax.random.fold_in(
      rng, (salt * num_domains + s) * num_domains + t)
  generated = {
      t: np.concatenate([
          _translate_all(translate_fn, test[s], s, t, batch_size,
                         pair_rng(s, t, 0))
          for s in range(num_domains) if s != t])
      for t in range(num_domains)} if metrics & {'fid', 'kid', 'ndb',
                                                 'domain_acc'} else {}

  if metrics & {'fid', 'kid'}:
    if feature_fn is None:
      from i2ijax.metrics import inception  # pylint: disable=g-import-not-at-top
      feature_fn = inception.make_feature_fn()
    features = lambda x: shapes_metrics.map_batches(
        lambda chunk, i, v: np.asarray(feature_fn(chunk)), x, batch_size)
    for t, name in enumerate(domain_names):
      real = reference_stats.reference_stats(
          [test[t]], features, dataset=dataset_id(data_cfg), split='test',
          resolution=int(data_cfg.image_size), domain=name,
          max_examples=num_examples, extractor=extractor,
          cache_dir=cache_dir)
      fake = features(generated[t])
      if 'fid' in metrics:
        out[f'fid/to_{name}'] = distances.frechet_distance(
            real['mu'], real['sigma'], *distances.gaussian_stats(fake))
      if 'kid' in metrics:
        out[f'kid/to_{name}'], out[f'kid_std/to_{name}'] = distances.kid(
            real['features'], fake)

  if 'lpips' in metrics:
    if lpips_fn is None:
      from i2ijax.metrics import lpips  # pylint: disable=g-import-not-at-top
      lpips_fn = lpips.make_lpips_fn('alex')
    for s in range(num_domains):
      inputs = test[s][:lpips_inputs]
      for t in range(num_domains):
        if t == s:
          continue
        samples = np.stack([
            _translate_all(translate_fn, inputs, s, t, batch_size,
                           jax.random.fold_in(pair_rng(s, t, 1), k))
            for k in range(lpips_styles)], axis=1)
        out[f'lpips/{domain_names[s]}->{domain_names[t]}'] = (
            distances.lpips_diversity(lpips_fn, samples))

  if 'ndb' in metrics:
    for t, name in enumerate(domain_names):
      train = arrays_fn(data_cfg, t, split='train',
                        max_examples=ndb_train_examples)['image']
      bins = distances.fit_bins(_downsample(train, ndb_size),
                                num_bins=min(ndb_bins, len(train) // 10),
                                seed=0)
      result = distances.ndb_jsd(bins, _downsample(generated[t], ndb_size))
      for key, value in result.items():
        out[f'{key}/to_{name}'] = value

  if 'domain_acc' in metrics:
    classifier = domain_classifier.get_domain_classifier(
        data_cfg, domain_names, steps=classifier_steps,
        max_examples=classifier_examples, cache_dir=cache_dir,
        arrays_fn=arrays_fn)
    for t, name in enumerate(domain_names):
      out[f'domain_acc/to_{name}'] = domain_classifier.domain_acc(
          classifier, generated[t], t)
    out['domain_classifier/real_test_acc'] = classifier.test_scores[
        'domain_acc_real']

  for key in ('fid', 'kid', 'lpips', 'ndb_ratio', 'jsd', 'domain_acc'):
    values = [v for k, v in out.items() if k.startswith(key + '/')]
    if values:
      out[key] = float(np.mean(values))
  return {k: float(v) for k, v in out.items()}
