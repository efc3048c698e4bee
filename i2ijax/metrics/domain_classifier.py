"""A domain classifier that judges translations on any source with known
domains (image folders, TFDS per-domain splits, shapes).

It is the domain head of the shapes oracles alone (`oracles.ClassifierNet`,
trained by `oracles.train_oracles(heads=('domain',))`: Adam with cosine
decay, random horizontal flips, Gaussian pixel noise), trained on up to
`max_examples` real *training* images of each selected domain at the
evaluation resolution (`data_cfg.image_size`). Its accuracy on up to
`max_examples` real *test* images per domain is measured once and stored
with it (`test_scores['domain_acc_real']`). A source without a test split
(named folders, whose evaluation reads the training images) holds out every
HOLD_OUT-th training image of each domain and measures the accuracy on
those.

`domain_acc(classifier, images, target)` is the fraction of `images` that
the classifier puts in domain `target`: for translations into t, how many
land in t (chance level 1 / #domains).

The trained parameters are cached like the oracles (`oracles.load_or_train`:
`cache_dir`, else $I2IJAX_CACHE, else ~/.cache/i2ijax/oracles; files named
`domain_classifier_<dataset>_<size>px_<hash>.msgpack`), keyed by
`cache_key`: dataset name and folder root, sizes, selected domains, steps,
seed, max_examples and both cache versions. The images themselves are not
hashed: after changing the files of a folder, delete its cache file.
"""

from collections.abc import Callable, Sequence
import os
from typing import Any

import numpy as np

from i2ijax.metrics import oracles as oracles_lib
from i2ijax.metrics import shapes_metrics

# Bump when the selection of training / test images or the format change
# (changes of the network or its training bump oracles.CACHE_VERSION).
CACHE_VERSION = 1
HOLD_OUT = 5          # no test split: every 5th training image is held out
_PREFIX = 'domain_classifier_'


def cache_key(data_cfg, domain_names: Sequence[str], *, steps: int,
              seed: int, max_examples: int) -> dict[str, Any]:
  """What identifies a trained domain classifier: the oracles' key (name,
  sizes, domains, steps, seed, network version) plus the folder root."""
  root = data_cfg.get('root', '') or ''
  if data_cfg.name == 'folder' and root:
    root = os.path.abspath(os.path.expanduser(root))
  return {**oracles_lib.cache_key(data_cfg, domain_names, steps, seed),
          'kind': 'domain_classifier', 'root': root,
          'max_examples': int(max_examples),
          'classifier_version': CACHE_VERSION}


def _image_arrays(arrays, keep=None) -> dict[str, np.ndarray]:
  """'image' (n, S, S, 3) float32 and 'domain' (n,) int32, rows `keep`."""
  keep = slice(None) if keep is None else keep
  return {'image': np.asarray(arrays['image'], np.float32)[keep],
          'domain': np.asarray(arrays['domain'], np.int32)[keep]}


def _train_and_test(data_cfg, domain, name, arrays_fn, max_examples):
  """Training and test arrays of one domain (module docstring)."""
  train = arrays_fn(data_cfg, domain, split='train',
                    max_examples=max_examples)
  test = arrays_fn(data_cfg, domain, split='test', max_examples=max_examples)
  if np.array_equal(train['image'], test['image']):   # no test split
    held_out = np.arange(len(train['image'])) % HOLD_OUT == HOLD_OUT - 1
    train, test = (_image_arrays(train, ~held_out),
                   _image_arrays(train, held_out))
  else:
    train, test = _image_arrays(train), _image_arrays(test)
  if not len(train['image']) or not len(test['image']):
    raise oracles_lib.OracleError(
        f'Domain {name!r} has {len(train["image"])} training and '
        f'{len(test["image"])} test images for the domain classifier; it '
        f'needs both (without a test split, at least {HOLD_OUT} training '
        'images, one in five is held out).')
  return train, test


def get_domain_classifier(
    data_cfg, domain_names: Sequence[str], *, steps: int, seed: int = 0,
    max_examples: int = 1000, cache_dir: str | None = None,
    arrays_fn: Callable[..., dict[str, np.ndarray]] | None = None
) -> oracles_lib.Oracles:
  """The domain classifier of `data_cfg`, trained and cached on a miss.

  Args:
    data_cfg: `config.data` of any source with known domains.
    domain_names: its selected domains, in label order (at least 2).
    steps: training steps (`config.eval.classifier_steps`).
    seed: training seed.
    max_examples: training (and test) images per domain.
    cache_dir: cache directory (module docstring).
    arrays_fn: `(data_cfg, domain, *, split, max_examples=None) -> arrays`
      with 'image' (n, S, S, 3) in [-1, 1] and 'domain' (n,), default
      `pipeline.load_eval_arrays`.

  Returns:
    `oracles.Oracles` with only the 'domain' network and
    `test_scores['domain_acc_real']`, its accuracy on real test images.
  """
  domain_names = tuple(domain_names)
  if len(domain_names) < 2:
    raise oracles_lib.OracleError(
        f'A domain classifier needs at least 2 domains; data.name='
        f'{data_cfg.name!r} selects {list(domain_names)} (data.domains).')
  if steps < 1 or max_examples < 1:
    raise oracles_lib.OracleError(
        f'Domain classifier steps ({steps}) and max_examples '
        f'({max_examples}) must be positive.')
  arrays_fn = arrays_fn or shapes_metrics.default_arrays_fn

  def train():
    train_arrays, test_arrays = zip(*[
        _train_and_test(data_cfg, d, name, arrays_fn, max_examples)
        for d, name in enumerate(domain_names)])
    classifier = oracles_lib.train_oracles(
        train_arrays, domain_names, int(data_cfg.image_size), steps=steps,
        seed=seed, heads=('domain',), num_modes=0)
    classifier.evaluate_real(test_arrays)
    return classifier

  key = cache_key(data_cfg, domain_names, steps=steps, seed=seed,
                  max_examples=max_examples)
  return oracles_lib.load_or_train(key, train, cache_dir=cache_dir,
                                   prefix=_PREFIX, what='domain classifier')


def domain_acc(classifier: oracles_lib.Oracles, images,
               target: int) -> float:
  """Fraction of images (n, S, S, 3) in [-1, 1] put in domain `target`."""
  if not 0 <= target < classifier.num_domains:
    raise oracles_lib.OracleError(
        f'target {target} out of range for the domains '
        f'{classifier.domain_names}.')
  return float(np.mean(classifier.domain(images) == target))
