"""Oracle networks that judge translations on the `shapes` benchmark.

Three small Flax networks are trained once on the real *training* images of
the selected domains, at the evaluation resolution (`data_cfg.image_size`):

  domain classifier:  image → domain index in [0, N).
  mode classifier:    image → domain * NUM_MODES + mode, in [0, N·NUM_MODES).
  mask segmenter:     image → per-pixel P(pixel inside a shape) (sigmoid), a
                      small U-Net whose receptive field covers the image, so
                      that it also fills the outlines of the `sketch` domain.

They are trained jointly (one Adam step updates all three parameter sets; the
losses are independent, so this equals three separate trainings) with
softmax cross-entropy / per-pixel sigmoid cross-entropy, random horizontal
flips and a little Gaussian pixel noise. Their scores on the real *test*
images are kept in `Oracles.test_scores`. The same recipe trains the domain
head alone for sources without modes or masks (`heads=('domain',)`, the
domain classifier of `domain_classifier.py`).

The trained parameters are cached on disk, keyed by the dataset name, sizes,
selected domains, steps, seed and `CACHE_VERSION`. The cache directory is the
`cache_dir` argument, else `$I2IJAX_CACHE`, else `~/.cache/i2ijax/oracles`.

The package ships the oracles of the default benchmark setting (`shapes` at
32 px, all three domains, 2000 steps, seed 0) in `PACKAGED_DIR`, trained with
this module's own code (`python -m i2ijax.metrics.oracles
--config=configs/gmvae_mdmm.py:shapes --cache_dir=i2ijax/metrics/pretrained`),
so that evaluation needs no minutes of oracle training first. They are used
only when their stored key equals the requested one; their stored test
scores are re-measured by the tests. Any other setting is trained on first
use and cached.
"""

from collections.abc import Callable, Sequence
import hashlib
import json
import math
import os
import tempfile
import time
from typing import Any

from absl import logging
from flax import linen as nn
from flax import serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from i2ijax.data import shapes_render

# Bump when the networks, their training or the stored format change.
CACHE_VERSION = 2
PACKAGED_DIR = os.path.join(os.path.dirname(__file__), 'pretrained')
HEADS = ('domain', 'mode', 'mask')
_EVAL_BATCH = 256


class OracleError(ValueError):
  """Raised when oracles cannot be built for a data source or input."""


# ----------------------------------------------------------------------------
# Networks.


class ClassifierNet(nn.Module):
  """Tiny CNN classifier: 3 stride-2 convs, [mean, max] pooling, 2 dense.

  x: (B, S, S, 3) in [-1, 1] → logits (B, num_classes). Max pooling keeps
  thin, sparse cues (night outline colours, sketch strokes).
  """
  num_classes: int
  width: int = 16

  @nn.compact
  def __call__(self, x):
    for mult in (1, 2, 4):
      x = nn.relu(nn.Conv(self.width * mult, (3, 3), strides=2)(x))
    x = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    x = nn.relu(nn.Dense(4 * self.width)(x))
    return nn.Dense(self.num_classes)(x)


class SegmenterNet(nn.Module):
  """Small U-Net: x (B, S, S, 3) → mask logits (B, S, S).

  `depth` stride-2 levels (S must be divisible by 2**depth); with the bottom
  at 4×4 the receptive field spans the whole image.
  """
  depth: int
  width: int = 16
  max_width: int = 64

  @nn.compact
  def __call__(self, x):
    def conv(h, features, strides=1):
      return nn.relu(nn.Conv(features, (3, 3), strides=strides)(h))

    widths = [min(self.width * 2**i, self.max_width)
              for i in range(self.depth + 1)]
    h = conv(conv(x, widths[0]), widths[0])
    skips = []
    for level in range(1, self.depth + 1):
      skips.append(h)
      h = conv(h, widths[level], strides=2)
      h = conv(h, widths[level])
    for level in reversed(range(self.depth)):
      b, hh, ww, c = h.shape
      h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), 'nearest')
      h = conv(jnp.concatenate([h, skips[level]], axis=-1), widths[level])
      h = conv(h, widths[level])
    # The raw pixels again at full resolution: boundaries are anti-aliased,
    # so a pixel's colour tells how much of it a shape covers.
    return nn.Conv(1, (3, 3))(jnp.concatenate([h, x], axis=-1))[..., 0]


def segmenter_depth(image_size: int) -> int:
  """U-Net depth that brings `image_size` down to 4×4 (at least 1)."""
  depth = max(1, int(math.log2(max(image_size, 2))) - 2)
  while depth > 1 and image_size % 2**depth:
    depth -= 1
  return depth


# ----------------------------------------------------------------------------
# The trained oracles.


def _batched(fn, images: np.ndarray, batch_size: int) -> np.ndarray:
  """Applies `fn` in fixed-size batches (the last one padded)."""
  n = images.shape[0]
  outs = []
  for start in range(0, n, batch_size):
    chunk = images[start:start + batch_size]
    pad = batch_size - chunk.shape[0] if n > batch_size else 0
    if pad:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)], 0)
    outs.append(np.asarray(fn(chunk))[:chunk.shape[0] - pad])
  return np.concatenate(outs, 0)


class Oracles:
  """Trained domain / mode / mask oracles for one data configuration.

  Attributes:
    domain_names: the selected domains, in label order.
    num_modes: style modes per domain (label = domain * num_modes + mode).
    image_size: the resolution the networks were trained at.
    params: {'domain', 'mode', 'mask'} (or a subset, e.g. {'domain'}) →
      linen params.
    test_scores: {'domain_acc_real', 'mode_acc_real', 'mask_iou_real'} (of
      the heads present) on the real test images (empty until
      `evaluate_real` is run).
  """

  def __init__(self, domain_names: Sequence[str], num_modes: int,
               image_size: int, params: dict[str, Any],
               test_scores: dict[str, float] | None = None):
    self.domain_names = tuple(domain_names)
    self.trained_domain_names = self.domain_names
    self.num_modes = int(num_modes)
    self.image_size = int(image_size)
    self.params = params
    self.test_scores = dict(test_scores or {})
    # Trained domain index -> reported index (-1: not a selected domain).
    self._domain_map = np.arange(len(self.domain_names))
    nets = build_networks(len(self.domain_names), self.num_modes,
                          self.image_size, heads=self.heads)
    self._domain_fn = jax.jit(lambda p, x: jnp.argmax(
        nets['domain'].apply({'params': p}, x), -1))
    self._mode_fn = jax.jit(lambda p, x: jnp.argmax(
        nets['mode'].apply({'params': p}, x), -1))
    self._mask_fn = jax.jit(
        lambda p, x: nets['mask'].apply({'params': p}, x) > 0)

  def restricted_to(self, domain_names: Sequence[str]) -> 'Oracles':
    """The same networks judging a subset of their domains.

    Predictions keep ranging over all trained domains; `domain` and `mode`
    report them as indices into `domain_names` (in that order), and -1 for
    an image put in a domain outside the subset (never a correct target).
    """
    missing = [n for n in domain_names if n not in self.trained_domain_names]
    if missing:
      raise OracleError(f'Oracles trained on {self.trained_domain_names} '
                        f'cannot judge domains {missing}.')
    view = Oracles(self.trained_domain_names, self.num_modes,
                   self.image_size, self.params, self.test_scores)
    view.domain_names = tuple(domain_names)
    view._domain_map = np.array(   # pylint: disable=protected-access
        [list(domain_names).index(n) if n in domain_names else -1
         for n in self.trained_domain_names])
    return view

  @property
  def num_domains(self) -> int:
    return len(self.domain_names)

  @property
  def heads(self) -> tuple[str, ...]:
    """The trained networks, in `HEADS` order."""
    return tuple(h for h in HEADS if h in self.params)

  def _head_params(self, head: str):
    if head not in self.params:
      raise OracleError(f'These oracles have no {head!r} network (trained '
                        f'heads: {self.heads}).')
    return self.params[head]

  def _check_images(self, images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    expected = (self.image_size, self.image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected:
      raise OracleError(
          f'Oracles expect images of shape (n, {self.image_size}, '
          f'{self.image_size}, 3) in [-1, 1], got {images.shape}; evaluate at '
          f'data.image_size={self.image_size} or build oracles for this size.')
    return images

  def domain(self, images) -> np.ndarray:
    """Predicted domain index, int (n,), for images (n, S, S, 3)."""
    images = self._check_images(images)
    params = self._head_params('domain')
    trained = _batched(lambda x: self._domain_fn(params, x), images,
                       _EVAL_BATCH)
    return self._domain_map[trained].astype(np.int32)

  def mode(self, images) -> np.ndarray:
    """Predicted domain * num_modes + mode, int (n,)."""
    images = self._check_images(images)
    params = self._head_params('mode')
    trained = _batched(lambda x: self._mode_fn(params, x), images,
                       _EVAL_BATCH)
    domain = self._domain_map[trained // self.num_modes]
    return np.where(domain >= 0, domain * self.num_modes
                    + trained % self.num_modes, -1).astype(np.int32)

  def mask(self, images) -> np.ndarray:
    """Predicted shape mask, bool (n, S, S)."""
    images = self._check_images(images)
    params = self._head_params('mask')
    return _batched(lambda x: self._mask_fn(params, x), images,
                    _EVAL_BATCH).astype(bool)

  def evaluate_real(self, test_arrays: Sequence[dict[str, np.ndarray]]
                    ) -> dict[str, float]:
    """Scores the trained heads on real test arrays (one dict per domain,
    with the keys `train_oracles` needs for those heads)."""
    data = _concat(test_arrays, self.num_modes)
    scores = {}
    if 'domain' in self.heads:
      scores['domain_acc_real'] = float(
          np.mean(self.domain(data['image']) == data['domain']))
    if 'mode' in self.heads:
      scores['mode_acc_real'] = float(
          np.mean(self.mode(data['image']) == data['label']))
    if 'mask' in self.heads:
      scores['mask_iou_real'] = float(np.mean(
          mask_iou(self.mask(data['image']), data['mask'])))
    self.test_scores = scores
    return self.test_scores


def mask_iou(pred, true) -> np.ndarray:
  """Per-image IoU |P ∩ T| / |P ∪ T| of masks (n, H, W); 1 if both empty."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  inter = np.logical_and(pred, true).sum(axis=(1, 2))
  union = np.logical_or(pred, true).sum(axis=(1, 2))
  return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def build_networks(num_domains: int, num_modes: int, image_size: int,
                   heads: Sequence[str] = HEADS) -> dict[str, nn.Module]:
  """The oracle modules (`heads`, a subset of HEADS) for a data
  configuration."""
  unknown = sorted(set(heads) - set(HEADS))
  if unknown or not heads:
    raise OracleError(f'Unknown oracle heads {unknown or heads}; choose '
                      f'from {HEADS}.')
  builders = {
      'domain': lambda: ClassifierNet(num_classes=num_domains),
      'mode': lambda: ClassifierNet(num_classes=num_domains * num_modes),
      'mask': lambda: SegmenterNet(depth=segmenter_depth(image_size)),
  }
  return {h: builders[h]() for h in HEADS if h in heads}


# ----------------------------------------------------------------------------
# Training.


def _concat(arrays: Sequence[dict[str, np.ndarray]],
            num_modes: int) -> dict[str, np.ndarray]:
  """Joins per-domain arrays ('image', 'domain' and, where all have them,
  'mode' and 'mask'); with modes adds 'label' = domain * num_modes + mode."""
  keys = ['image', 'domain'] + [k for k in ('mode', 'mask')
                                if all(k in a for a in arrays)]
  out = {k: np.concatenate([np.asarray(a[k]) for a in arrays], 0)
         for k in keys}
  out['image'] = out['image'].astype(np.float32)
  out['domain'] = out['domain'].astype(np.int32)
  if 'mode' in out:
    out['label'] = (out['domain'] * num_modes + out['mode']).astype(np.int32)
  return out


# The batch key of each head's target (softmax cross-entropy for the
# classifiers, per-pixel sigmoid cross-entropy for 'mask').
_TARGETS = {'domain': 'domain', 'mode': 'label', 'mask': 'mask'}


def train_oracles(train_arrays: Sequence[dict[str, np.ndarray]],
                  domain_names: Sequence[str], image_size: int, *,
                  steps: int, seed: int = 0, batch_size: int = 64,
                  learning_rate: float = 3e-3, noise_std: float = 0.03,
                  heads: Sequence[str] = HEADS,
                  num_modes: int = shapes_render.NUM_MODES) -> Oracles:
  """Trains the oracles of `heads` jointly on per-domain training arrays.

  Args:
    train_arrays: one dict per selected domain with 'image' (n, S, S, 3)
      float32 in [-1, 1], 'domain' (n,) and, for the 'mode' and 'mask'
      heads, 'mode' (n,) and 'mask' (n, S, S).
    domain_names: the selected domains, in label order.
    image_size: S.
    steps: Adam steps (batch `batch_size`, sampled uniformly with
      replacement from all domains).
    seed: seeds the initialisation, batches and augmentation.
    batch_size: examples per step.
    learning_rate: Adam learning rate (cosine-decayed to 0 over `steps`).
    noise_std: std of the Gaussian pixel noise added during training.
    heads: the networks to train (a subset of HEADS).
    num_modes: style modes per domain (the 'mode' head's classes / domain).

  Returns:
    Oracles without test scores.
  """
  data = _concat(train_arrays, num_modes)
  n = data['image'].shape[0]
  num_domains = len(domain_names)
  nets = build_networks(num_domains, num_modes, image_size, heads)
  missing = [_TARGETS[h] for h in nets if _TARGETS[h] not in data]
  if missing:
    raise OracleError(f'Training the oracle heads {tuple(nets)} needs '
                      f'{missing} in the training arrays.')
  if n == 0:
    raise OracleError('No training images for the oracles.')
  key = jax.random.key(seed)
  init_key, aug_key = jax.random.split(key)
  dummy = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  params = {name: net.init(jax.random.fold_in(init_key, i), dummy)['params']
            for i, (name, net) in enumerate(sorted(nets.items()))}
  schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), 0.02)
  tx = optax.adam(schedule)
  opt_state = tx.init(params)

  def loss_fn(params, batch):
    losses = {}
    for head, net in nets.items():
      logits = net.apply({'params': params[head]}, batch['image'])
      target = batch[_TARGETS[head]]
      losses[head] = (
          optax.sigmoid_binary_cross_entropy(logits, target) if head == 'mask'
          else optax.softmax_cross_entropy_with_integer_labels(
              logits, target)).mean()
    return sum(losses.values()), losses

  @jax.jit
  def train_step(params, opt_state, batch, step):
    # Augmentation: random horizontal flip and Gaussian pixel noise.
    flip_key, noise_key = jax.random.split(jax.random.fold_in(aug_key, step))
    flip = jax.random.bernoulli(flip_key, 0.5, (batch['image'].shape[0],))
    image = jnp.where(flip[:, None, None, None],
                      batch['image'][:, :, ::-1], batch['image'])
    image = image + noise_std * jax.random.normal(noise_key, image.shape)
    batch = dict(batch, image=image)
    if 'mask' in batch:
      batch['mask'] = jnp.where(flip[:, None, None], batch['mask'][:, :, ::-1],
                                batch['mask']).astype(jnp.float32)
    grads, losses = jax.grad(loss_fn, has_aux=True)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, losses

  rng = np.random.default_rng(seed)
  start = time.time()
  batch_keys = ['image'] + sorted({_TARGETS[h] for h in nets})
  for step in range(steps):
    idx = rng.integers(0, n, batch_size)
    batch = {k: data[k][idx] for k in batch_keys}
    params, opt_state, losses = train_step(params, opt_state, batch, step)
    if step % 200 == 0 or step == steps - 1:
      logging.info('oracle step %d: losses %s', step, ' '.join(
          f'{h} {float(v):.4f}' for h, v in losses.items()))
  logging.info('trained oracles %s: %d steps in %.1f s', tuple(nets), steps,
               time.time() - start)
  params = jax.tree.map(np.asarray, params)
  return Oracles(domain_names, num_modes, image_size, params)


# ----------------------------------------------------------------------------
# Cache and entry point.


def _default_arrays_fn(data_cfg, domain, *, split, max_examples=None):
  from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.load_eval_arrays(data_cfg, domain, split=split,
                                   max_examples=max_examples)


def _default_data_spec(data_cfg):
  from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.get_data_spec(data_cfg)


def cache_key(data_cfg, domain_names: Sequence[str], steps: int,
              seed: int) -> dict[str, Any]:
  """What identifies a set of trained oracles."""
  return {
      'name': str(data_cfg.name), 'source_size': int(data_cfg.source_size),
      'load_size': int(data_cfg.load_size),
      'image_size': int(data_cfg.image_size),
      'domains': list(domain_names), 'steps': int(steps), 'seed': int(seed),
      'version': CACHE_VERSION,
  }


def cache_path(cache_dir: str | None, key: dict[str, Any],
               prefix: str = '') -> str:
  """File of the cached oracles for `key` (`prefix` starts its name)."""
  cache_dir = (cache_dir or os.environ.get('I2IJAX_CACHE')
               or os.path.join(os.path.expanduser('~'), '.cache', 'i2ijax',
                               'oracles'))
  digest = hashlib.sha256(
      json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  name = ''.join(c if c.isalnum() else '_' for c in key['name'])
  return os.path.join(
      cache_dir, f'{prefix}{name}_{key["image_size"]}px_{digest}.msgpack')


def save_oracles(path: str, oracles: Oracles, key: dict[str, Any]) -> None:
  """Writes oracles atomically (temporary file + os.replace)."""
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  payload = serialization.msgpack_serialize({
      'key': json.dumps(key, sort_keys=True),
      'domain_names': list(oracles.domain_names),
      'num_modes': oracles.num_modes, 'image_size': oracles.image_size,
      'params': oracles.params, 'test_scores': oracles.test_scores})
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.',
                             prefix='.tmp_oracles_')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(payload)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def load_oracles(path: str, key: dict[str, Any] | None = None
                 ) -> Oracles | None:
  """Reads cached oracles; None if absent, unreadable or for another key."""
  try:
    with open(path, 'rb') as f:
      state = serialization.msgpack_restore(f.read())
  except (OSError, ValueError) as e:
    if not isinstance(e, FileNotFoundError):
      logging.warning('ignoring unreadable oracle cache %s: %s', path, e)
    return None
  if key is not None and state.get('key') != json.dumps(key, sort_keys=True):
    return None
  as_list = lambda x: [x[k] for k in sorted(x, key=int)] if isinstance(
      x, dict) else list(x)
  return Oracles(as_list(state['domain_names']), int(state['num_modes']),
                 int(state['image_size']), state['params'],
                 {k: float(v) for k, v in state['test_scores'].items()})


def load_or_train(key: dict[str, Any], train_fn: Callable[[], Oracles], *,
                  cache_dir: str | None = None, prefix: str = '',
                  packaged: bool = False, what: str = 'oracles') -> Oracles:
  """The cached oracles of `key`, else `train_fn()`, then cached.

  Looks in `cache_dir` (see `cache_path`) and, with `packaged`, in
  PACKAGED_DIR; on a miss `train_fn` returns trained oracles with their
  real test scores, which are saved under `cache_dir`. `what` names them
  in the log.
  """
  path = cache_path(cache_dir, key, prefix)
  candidates = [path] + ([cache_path(PACKAGED_DIR, key, prefix)]
                         if packaged else [])
  for candidate in candidates:
    oracles = load_oracles(candidate, key)
    if oracles is not None:
      logging.info('loaded %s from %s (real test scores %s)', what,
                   candidate, oracles.test_scores)
      return oracles
  oracles = train_fn()
  logging.info('%s real test scores: %s', what, oracles.test_scores)
  save_oracles(path, oracles, key)
  return oracles


def get_oracles(data_cfg, *, steps: int, seed: int = 0,
                cache_dir: str | None = None,
                arrays_fn: Callable[..., dict[str, np.ndarray]] | None = None,
                data_spec: Any = None) -> Oracles:
  """Returns oracles for `data_cfg`, training and caching them on a miss.

  Args:
    data_cfg: `config.data` of a `shapes` source.
    steps: training steps of the oracles (`config.eval.oracle_steps`).
    seed: training seed.
    cache_dir: cache directory (default $I2IJAX_CACHE, else
      ~/.cache/i2ijax/oracles).
    arrays_fn: `(data_cfg, domain, *, split, max_examples=None) -> arrays`,
      default `pipeline.load_eval_arrays` (tests pass renderer arrays).
    data_spec: default `pipeline.get_data_spec(data_cfg)`; needs
      `domain_names`, `num_modes` and `has_masks`.

  Returns:
    Oracles with `test_scores` measured on the real test split.
  """
  spec = data_spec if data_spec is not None else _default_data_spec(data_cfg)
  if not getattr(spec, 'has_masks', False) or spec.num_modes != (
      shapes_render.NUM_MODES):
    raise OracleError(
        f'Oracles need ground-truth masks and {shapes_render.NUM_MODES} '
        f'style modes, which only the shapes source has; data.name='
        f'{data_cfg.name!r} has num_modes={spec.num_modes}. Use '
        f"data.name='shapes' or skip the shapes metrics.")
  if data_spec is None and arrays_fn is None and tuple(data_cfg.domains):
    # A subset of the source's domains is judged by the oracles of all of
    # them: no training per subset, and the same judge for every model.
    all_cfg = ml_collections.ConfigDict(data_cfg.to_dict())
    all_cfg.domains = ()
    all_names = tuple(_default_data_spec(all_cfg).domain_names)
    if set(spec.domain_names) < set(all_names):
      return get_oracles(all_cfg, steps=steps, seed=seed,
                         cache_dir=cache_dir).restricted_to(spec.domain_names)
  arrays_fn = arrays_fn or _default_arrays_fn
  domain_names = tuple(spec.domain_names)

  def train():
    train = [arrays_fn(data_cfg, d, split='train')
             for d in range(len(domain_names))]
    oracles = train_oracles(train, domain_names, int(data_cfg.image_size),
                            steps=steps, seed=seed)
    oracles.evaluate_real([arrays_fn(data_cfg, d, split='test')
                           for d in range(len(domain_names))])
    return oracles

  return load_or_train(cache_key(data_cfg, domain_names, steps, seed), train,
                       cache_dir=cache_dir, packaged=True,
                       what='shapes oracles')


def main(argv):
  """Trains (or finds) and caches the oracles of a config's data source."""
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  config = flags.FLAGS.config
  oracles = get_oracles(config.data, steps=config.eval.oracle_steps, seed=0,
                        cache_dir=flags.FLAGS.cache_dir)
  print(json.dumps(oracles.test_scores, sort_keys=True))


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
  flags.DEFINE_string('cache_dir', None, 'Cache directory (default '
                      '$I2IJAX_CACHE, else ~/.cache/i2ijax/oracles).')
  flags.mark_flag_as_required('config')
  app.run(main)
