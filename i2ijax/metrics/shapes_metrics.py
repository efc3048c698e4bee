"""Translation metrics of the `shapes` benchmark, judged by oracle networks.

For every ordered pair (s, t), s != t, of the selected domains, up to
`num_examples` real test images x of domain s are translated to t with
`num_styles` random styles each (translate_fn(x, s, t, key)), and:

  domain_acc    = mean 1[D(G(x)) = t], D the domain oracle.
  content_iou   = mean IoU(M(G(x)), mask(x)), M the mask oracle and mask(x)
                  the TRUE shape mask of the source image: translation must
                  keep the content (the scene's shapes) in place.
  mode_coverage = fraction of t's NUM_MODES style modes that the
                  translations reach. With m = C(G(x)) ∈ [0, N·NUM_MODES)
                  the mode oracle's label, let A_t = {translations with
                  m // NUM_MODES = t} (put in domain t by the mode oracle).
                  Mode k of t is covered when
                    #{m = t·NUM_MODES + k} ≥ max(1, |A_t| / (4·NUM_MODES)),
                  i.e. it gets at least a quarter of a uniform share of A_t.
                  Coverage is 0 when A_t is empty. This is coverage over
                  the whole test set: a deterministic translator that maps
                  different inputs to different modes can cover all.
  modes_per_input = per input x, the fraction of t's NUM_MODES modes among
                  its num_styles translations that the mode oracle puts in
                  t; mean over the inputs with at least one such
                  translation (0 if none). It measures multimodality per
                  input: exactly 1/NUM_MODES for a deterministic translator,
                  1 when every input reaches every mode (which needs
                  num_styles >= NUM_MODES).

With `reference_fn`, each test image of s is also translated with the
attribute / style encoded from a real test image of t (a different scene: the
target images are rolled by half the set), giving 'domain_acc_reference' and
'content_iou_reference' (and per pair): reference-guided translation, the
other test-time mode of MDMM-style models.

Reported keys (plain floats, for a flat JSON object):
  'domain_acc/s->t', 'content_iou/s->t', 'mode_coverage/s->t',
  'modes_per_input/s->t' per pair;
  'mode_coverage/to_t' pooling every source into target t;
  'domain_acc', 'content_iou', 'modes_per_input' (means over pairs),
  'mode_coverage' (mean of
  'mode_coverage/to_t' over targets);
  with `cluster_fn` (real test images of every selected domain, clustered
  as cluster_fn(x, domain)): 'cluster_acc' (Hungarian accuracy against the
  domain), 'cluster_acc_many_to_one', 'num_clusters_used', and, when
  num_components = N·NUM_MODES, 'cluster_acc_modes' (Hungarian accuracy
  against domain·NUM_MODES + mode) and 'cluster_acc_modes_many_to_one'.

Random keys: the translation of batch b with style k for pair (s, t) uses
fold_in(fold_in(fold_in(fold_in(rng, s), t), k), b).
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from i2ijax.metrics import clustering
from i2ijax.metrics import oracles as oracles_lib

MIN_SHARE_FACTOR = 4  # a mode needs ≥ 1 / (MIN_SHARE_FACTOR · NUM_MODES).


class MetricsInputError(ValueError):
  """Raised for unusable metric arguments or translator outputs."""


def default_arrays_fn(data_cfg, domain, *, split, max_examples=None):
  from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.load_eval_arrays(data_cfg, domain, split=split,
                                   max_examples=max_examples)


def map_batches(fn: Callable[[np.ndarray, int, int], Any],
                 images: np.ndarray, batch_size: int) -> np.ndarray:
  """fn(batch, index, valid) over fixed-size batches (last one padded)."""
  n, outs = images.shape[0], []
  for index, start in enumerate(range(0, n, batch_size)):
    chunk = images[start:start + batch_size]
    valid = chunk.shape[0]
    if valid < batch_size:
      chunk = np.concatenate(
          [chunk, np.repeat(chunk[-1:], batch_size - valid, 0)], 0)
    outs.append(np.asarray(fn(chunk, index, valid))[:valid])
  return np.concatenate(outs, 0)


def checked_images(out, shape, fn_name: str) -> np.ndarray:
  """A translator's output as float32 in [-1, 1]; it must have `shape`."""
  out = np.asarray(out, np.float32)
  if out.shape != tuple(shape):
    raise MetricsInputError(
        f'{fn_name} returned shape {out.shape} for input {tuple(shape)}; it '
        'must return images of the input shape.')
  return np.clip(out, -1.0, 1.0)


def mode_coverage(mode_labels: np.ndarray, target: int,
                  num_modes: int) -> float:
  """Fraction of `target`'s modes covered (rule in the module docstring)."""
  mode_labels = np.asarray(mode_labels).reshape(-1)
  in_target = mode_labels[mode_labels // num_modes == target] % num_modes
  if in_target.size == 0:
    return 0.0
  counts = np.bincount(in_target, minlength=num_modes)
  need = max(1.0, in_target.size / (MIN_SHARE_FACTOR * num_modes))
  return float(np.mean(counts >= need))


def modes_per_input(mode_labels: np.ndarray, target: int,
                    num_modes: int) -> float:
  """Distinct modes of `target` reached per input (module docstring).

  Args:
    mode_labels: (num_styles, n) mode-oracle labels, row k the translations
      of the n inputs with style k.
    target: the target domain t (labels t·num_modes + mode are in t).
    num_modes: style modes per domain.
  Returns:
    #distinct target modes / num_modes, averaged over the inputs with at
    least one translation in the target (0 if there are none).
  """
  labels = np.asarray(mode_labels)
  in_target = labels // num_modes == target
  reached = np.zeros((labels.shape[1], num_modes), bool)
  for mode in range(num_modes):
    reached[:, mode] = np.any(
        in_target & (labels % num_modes == mode), axis=0)
  landed = reached.any(1)
  if not landed.any():
    return 0.0
  return float(np.mean(reached[landed].sum(1) / num_modes))


def translation_metrics(
    translate_fn: Callable[..., Any], data_cfg,
    oracles: oracles_lib.Oracles, *, num_examples: int, num_styles: int,
    batch_size: int, rng: jax.Array,
    cluster_fn: Callable[..., Any] | None = None,
    num_components: int | None = None,
    arrays_fn: Callable[..., dict[str, np.ndarray]] | None = None,
    reference_fn: Callable[..., Any] | None = None,
) -> dict[str, float]:
  """Oracle metrics of a translator on the shapes test images.

  Args:
    translate_fn: (images (B, S, S, 3) in [-1, 1], source (B,) int32,
      target (B,) int32, key) -> translations (B, S, S, 3), with a random
      style drawn from `key`. Always called with B = batch_size (the last
      batch is padded by repeating its last image).
    data_cfg: `config.data` of the shapes source the oracles were built for.
    oracles: from `oracles.get_oracles(data_cfg, steps=...)`.
    num_examples: test images per source domain (at most).
    num_styles: random styles per test image and target.
    batch_size: translator batch size.
    rng: a `jax.random.key`.
    cluster_fn: optional (images (B, S, S, 3), domain (B,) int32) -> (B,) int
      component ids (same batching as translate_fn).
    num_components: number of mixture components of the model, if any.
    arrays_fn: default `pipeline.load_eval_arrays` (tests inject arrays).
    reference_fn: optional (images, source (B,), references (B, S, S, 3),
      target (B,), key) -> translations with the style of `references`.

  Returns:
    Flat dict of metric name to float (keys in the module docstring).
  """
  names, num_modes = oracles.domain_names, oracles.num_modes
  num_domains = len(names)
  if int(data_cfg.image_size) != oracles.image_size:
    raise MetricsInputError(
        f'data.image_size={data_cfg.image_size} but the oracles were built '
        f'for {oracles.image_size}; get oracles for this data config.')
  if num_domains < 2:
    raise MetricsInputError(
        f'Translation metrics need at least 2 domains, got {names}; select '
        f'more in data.domains.')
  for name, value in (('num_examples', num_examples),
                      ('num_styles', num_styles), ('batch_size', batch_size)):
    if int(value) < 1:
      raise MetricsInputError(f'{name} must be >= 1, got {value}.')
  arrays_fn = arrays_fn or default_arrays_fn
  test = [arrays_fn(data_cfg, d, split='test', max_examples=num_examples)
          for d in range(num_domains)]

  results: dict[str, float] = {}
  pooled_modes = {t: [] for t in range(num_domains)}
  for s in range(num_domains):
    images = np.asarray(test[s]['image'], np.float32)
    true_mask = np.asarray(test[s]['mask'])
    for t in range(num_domains):
      if t == s:
        continue
      pair_key = jax.random.fold_in(jax.random.fold_in(rng, s), t)
      hits, ious, modes = [], [], []
      for k in range(num_styles):
        style_key = jax.random.fold_in(pair_key, k)

        def translate(batch, index, valid, style_key=style_key, s=s, t=t):
          del valid
          out = translate_fn(batch, np.full(batch.shape[0], s, np.int32),
                             np.full(batch.shape[0], t, np.int32),
                             jax.random.fold_in(style_key, index))
          return checked_images(out, batch.shape, 'translate_fn')

        fake = map_batches(translate, images, batch_size)
        hits.append(oracles.domain(fake) == t)
        ious.append(oracles_lib.mask_iou(oracles.mask(fake), true_mask))
        modes.append(oracles.mode(fake))
      pair = f'{names[s]}->{names[t]}'
      results[f'modes_per_input/{pair}'] = modes_per_input(
          np.stack(modes), t, num_modes)
      modes = np.concatenate(modes)
      results[f'domain_acc/{pair}'] = float(np.mean(np.concatenate(hits)))
      results[f'content_iou/{pair}'] = float(np.mean(np.concatenate(ious)))
      results[f'mode_coverage/{pair}'] = mode_coverage(modes, t, num_modes)
      pooled_modes[t].append(modes)

  pairs = [f'{names[s]}->{names[t]}' for s in range(num_domains)
           for t in range(num_domains) if s != t]
  metric_names = ['domain_acc', 'content_iou', 'modes_per_input']
  if reference_fn is not None:
    results.update(_reference_metrics(reference_fn, test, oracles, names,
                                      batch_size, rng))
    metric_names += ['domain_acc_reference', 'content_iou_reference']
  for metric in metric_names:
    results[metric] = float(np.mean([results[f'{metric}/{p}'] for p in pairs]))
  for t in range(num_domains):
    results[f'mode_coverage/to_{names[t]}'] = mode_coverage(
        np.concatenate(pooled_modes[t]), t, num_modes)
  results['mode_coverage'] = float(np.mean(
      [results[f'mode_coverage/to_{names[t]}'] for t in range(num_domains)]))

  if cluster_fn is not None:
    results.update(_cluster_metrics(cluster_fn, test, batch_size, num_modes,
                                    num_components))
  return results


def _reference_metrics(reference_fn, test, oracles, names, batch_size,
                       rng) -> dict[str, float]:
  """Per-pair oracle scores of reference-guided translations."""
  results = {}
  for s, source_arrays in enumerate(test):
    images = np.asarray(source_arrays['image'], np.float32)
    true_mask = np.asarray(source_arrays['mask'])
    for t, target_arrays in enumerate(test):
      if t == s:
        continue
      refs = np.asarray(target_arrays['image'], np.float32)
      refs = np.roll(refs, len(refs) // 2, axis=0)
      refs = refs[np.arange(len(images)) % len(refs)]
      key = jax.random.fold_in(jax.random.fold_in(rng, 1000 + s), t)
      both = np.concatenate([images, refs], axis=-1)

      def translate(batch, index, valid, s=s, t=t, key=key):
        del valid
        x, ref = batch[..., :3], batch[..., 3:]
        out = reference_fn(x, np.full(len(x), s, np.int32), ref,
                           np.full(len(x), t, np.int32),
                           jax.random.fold_in(key, index))
        return checked_images(out, x.shape, 'reference_fn')

      fake = map_batches(translate, both, batch_size)
      pair = f'{names[s]}->{names[t]}'
      results[f'domain_acc_reference/{pair}'] = float(
          np.mean(oracles.domain(fake) == t))
      results[f'content_iou_reference/{pair}'] = float(np.mean(
          oracles_lib.mask_iou(oracles.mask(fake), true_mask)))
  return results


def _cluster_metrics(cluster_fn, test, batch_size, num_modes,
                     num_components) -> dict[str, float]:
  """Clustering accuracies of cluster_fn on the real test images."""
  preds, domains, labels = [], [], []
  for d, arrays in enumerate(test):
    images = np.asarray(arrays['image'], np.float32)

    def cluster(batch, index, valid, d=d):
      del index, valid
      ids = np.asarray(cluster_fn(batch, np.full(batch.shape[0], d,
                                                 np.int32)))
      if ids.shape != (batch.shape[0],):
        raise MetricsInputError(
            f'cluster_fn returned shape {ids.shape} for {batch.shape[0]} '
            f'images; it must return one integer id per image.')
      return ids.astype(np.int64)

    preds.append(map_batches(cluster, images, batch_size))
    domains.append(np.full(images.shape[0], d, np.int64))
    labels.append(d * num_modes + np.asarray(arrays['mode'], np.int64))
  pred, domain = np.concatenate(preds), np.concatenate(domains)
  out = {
      'cluster_acc': clustering.hungarian_accuracy(pred, domain),
      'cluster_acc_many_to_one': clustering.many_to_one_accuracy(pred, domain),
      'num_clusters_used': float(clustering.num_used_clusters(pred)),
  }
  if num_components is not None and int(num_components) == (
      len(test) * num_modes):
    label = np.concatenate(labels)
    out['cluster_acc_modes'] = clustering.hungarian_accuracy(pred, label)
    out['cluster_acc_modes_many_to_one'] = clustering.many_to_one_accuracy(
        pred, label)
  return out
