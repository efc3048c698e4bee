"""Unpaired multi-domain input pipelines (spec §2.1) on tf.data, as numpy.

Sources (`config.data.name`):

  'shapes'   the embedded synthetic benchmark (`shapes.py`), built into the
             TFDS data dir on first use; size `data.source_size`. Eval splits
             carry ground truth: style `mode`, shape `mask` and `scene_id`.
  'folder'   `data.root` with one image folder per domain (`folders.py`):
             trainA/, trainB/, … (+ testA/, …) or named folders (cat/, dog/;
             no test split, so eval reads the training images).
  other      a TFDS catalog dataset with one split per domain, e.g.
             'cycle_gan/apple2orange' (domains 'A', 'B' = trainA, trainB; eval
             testA, testB). Nothing is downloaded: the data must already be
             prepared in the TFDS data dir, otherwise a DataError says how to
             provide it.

`data.domains` selects a subset by name or index, in the given order, which is
the label order ('A', 'B' / 0, 1). Every example of a training batch picks
its domain uniformly at random: each selected domain is its own stream
(sharded per process, shuffled, repeated), and the streams are mixed with
`tf.data.Dataset.sample_from_datasets`. All randomness derives from `seed`
and `process_index`, so the batches are reproducible, and the training
iterator's position can be saved and restored exactly (`TrainIterator`).
"""

import dataclasses
import functools
import json
import os
import re
from typing import Any

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from i2ijax import config_lib
from i2ijax.data import folders
from i2ijax.data import preprocess
from i2ijax.data import shapes
# The TF-free pieces, re-exported as pipeline.DataError / DataSpec / ...
from i2ijax.data.spec import DataError  # noqa: F401
from i2ijax.data.spec import DataSpec  # noqa: F401
from i2ijax.data.spec import select_domains  # noqa: F401


@dataclasses.dataclass(frozen=True)
class _Domain:
  name: str
  train: Any         # TFDS split name, or a directory for folders
  test: Any | None   # None: no test split (eval falls back to train)


# Catalog datasets whose domain splits are known without reading their
# metadata (needed under `tfds.testing.mock_data`, which reports no splits).
_CATALOG_DOMAINS = {
    'cycle_gan': (_Domain('A', 'trainA', 'testA'),
                  _Domain('B', 'trainB', 'testB')),
}
_TRAIN_SPLIT_RE = re.compile(r'^train[_-]?(.+)$')


def _num_threads() -> int:
  return max(2, min(8, (os.cpu_count() or 2) // 2))


def _skip_decoding(keys):
  return {k: tfds.decode.SkipDecoding() for k in keys}


class _TfdsSource:
  """A TFDS builder with one split per domain."""

  def __init__(self, name, builder_fn, domains, *, has_masks=False):
    self.name = name
    self._builder_fn = builder_fn
    self.domains = domains
    self.has_masks = has_masks
    self.num_modes = shapes.NUM_MODES if has_masks else 0

  @functools.cached_property
  def builder(self):
    return self._builder_fn()

  def train_stream(self, domain, *, process_index, process_count, seed,
                   shuffle_buffer) -> tf.data.Dataset:
    """Infinite shuffled stream of encoded images of this process's shard."""
    split = domain.train
    if process_count > 1:
      split = tfds.even_splits(split, n=process_count)[process_index]
    ds = self.builder.as_dataset(
        split=split, shuffle_files=True,
        # No in-memory cache of small datasets: a saved iterator position
        # would hold a copy of the whole cache (the order is the same).
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False),
        decoders=_skip_decoding(['image']))
    ds = ds.map(lambda x: x['image'])
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.repeat()

  def eval_records(self, split, max_examples) -> tf.data.Dataset:
    """Encoded eval examples in a deterministic order."""
    keys = ['image', 'mask'] if self.has_masks else ['image']
    ds = self.builder.as_dataset(split=split, shuffle_files=False,
                                 decoders=_skip_decoding(keys))
    if not self.has_masks:
      ds = ds.map(lambda x: {'image': x['image']})
      return ds if max_examples is None else ds.take(max_examples)
    # shapes: sort by (scene_id, mode), so every domain lists the same
    # scenes in the same order.
    rows = list(tfds.as_numpy(ds))
    rows.sort(key=lambda r: (int(r['scene_id']), int(r['mode'])))
    rows = rows[:max_examples]
    columns = {
        'image': np.array([r['image'] for r in rows], dtype=object),
        'mask': np.array([r['mask'] for r in rows], dtype=object),
        'mode': np.array([r['mode'] for r in rows], dtype=np.int32),
        'scene_id': np.array([r['scene_id'] for r in rows], dtype=np.int64),
    }
    if not rows:
      columns['image'] = columns['mask'] = np.zeros((0,), dtype=str)
    return tf.data.Dataset.from_tensor_slices(columns)


class _FolderSource:
  """Image folders read with tf.data (see `folders.py`)."""

  num_modes = 0
  has_masks = False

  def __init__(self, name, layout: folders.FolderLayout):
    self.name = name
    self.domains = tuple(_Domain(n, tr, te) for n, tr, te in zip(
        layout.domain_names, layout.train_dirs, layout.test_dirs))

  def _files(self, directory):
    try:
      return folders.list_images(directory)
    except folders.FolderError as e:
      raise DataError(str(e)) from None

  def train_stream(self, domain, *, process_index, process_count, seed,
                   shuffle_buffer) -> tf.data.Dataset:
    del shuffle_buffer  # File names are shuffled in full.
    files = self._files(domain.train)[process_index::process_count]
    if not files:
      raise DataError(f'{domain.train!r} has fewer images than the '
                      f'{process_count} processes that share it')
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.repeat().map(tf.io.read_file)

  def eval_records(self, directory, max_examples) -> tf.data.Dataset:
    files = self._files(directory)[:max_examples]
    ds = tf.data.Dataset.from_tensor_slices(np.array(files, dtype=str))
    return ds.map(lambda f: {'image': tf.io.read_file(f)})


def _unavailable(name: str, data_dir: str) -> DataError:
  where = (data_dir or os.environ.get('TFDS_DATA_DIR')
           or tfds.core.constants.DATA_DIR)
  return DataError(
      f'TFDS dataset {name!r} is not prepared in {where} and will not be '
      'downloaded: set TFDS_DATA_DIR (or data.data_dir) to a directory '
      f"holding a prepared copy (e.g. from `tfds build {name}` on a machine "
      "with network access), or use data.name='folder' with data.root=<a "
      'directory with trainA/, trainB/, … image folders>')


def _catalog_source(name: str, data_dir: str) -> _TfdsSource:
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except ValueError as e:  # DatasetNotFoundError, unknown config, ...
    first_line = (str(e).strip().splitlines() or [''])[0]
    first_line = first_line.split(' Here are ')[0]
    raise DataError(f'Unknown dataset {name!r} ({first_line}); data.name '
                    f'must be {config_lib.KNOWN_DATASETS_HINT}') from None
  domains = _CATALOG_DOMAINS.get(builder.name)
  if domains is None:
    splits = list(builder.info.splits.keys())
    if not splits:
      raise _unavailable(name, data_dir)
    domains = tuple(
        _Domain(m.group(1), s, next((t for t in (f'test{m.group(1)}',
                                                 f'test_{m.group(1)}',
                                                 f'test-{m.group(1)}')
                                     if t in splits), None))
        for s in sorted(splits) if (m := _TRAIN_SPLIT_RE.match(s)))
    if not domains:
      raise DataError(f'TFDS dataset {name!r} has no per-domain splits '
                      f'(train<Domain>); its splits are {sorted(splits)}')
  if 'image' not in builder.info.features:
    raise DataError(f"TFDS dataset {name!r} has no 'image' feature")
  # Fails fast (no download, no retries) when the data are absent.
  try:
    builder.as_dataset(split=domains[0].train,
                       decoders=_skip_decoding(['image']))
  except AssertionError:
    raise _unavailable(name, data_dir) from None
  return _TfdsSource(name, lambda: builder, domains)


def _make_source(data_cfg):
  """The source named by `data_cfg.name`, after checking the sizes."""
  load_size, image_size = int(data_cfg.load_size), int(data_cfg.image_size)
  if not 0 < image_size <= load_size:
    raise DataError(f'data.image_size ({image_size}) must be positive and at '
                    f'most data.load_size ({load_size})')
  name = data_cfg.name
  data_dir = data_cfg.get('data_dir', '') or ''
  if name == 'shapes':
    size = int(data_cfg.source_size)
    if size not in shapes.SIZES:
      raise DataError(f'data.source_size must be one of {shapes.SIZES} for '
                      f'shapes, got {size}')
    domains = tuple(_Domain(d, f'train_{d}', f'test_{d}')
                    for d in shapes.DOMAINS)
    return _TfdsSource(
        name, lambda: shapes.prepare(size, data_dir or None), domains,
        has_masks=True)
  if name == 'folder':
    try:
      layout = folders.scan(data_cfg.root)
    except folders.FolderError as e:
      raise DataError(str(e)) from None
    return _FolderSource(name, layout)
  if not name:
    raise DataError('data.name is empty; it must be '
                    f'{config_lib.KNOWN_DATASETS_HINT}')
  return _catalog_source(name, data_dir)


def _source_and_domains(data_cfg):
  source = _make_source(data_cfg)
  names = tuple(d.name for d in source.domains)
  selected = select_domains(names, data_cfg.get('domains', ()))
  return source, [source.domains[i] for i in selected]


def get_data_spec(data_cfg) -> DataSpec:
  """What the models and metrics need to know about `data_cfg`'s source."""
  source, domains = _source_and_domains(data_cfg)
  return DataSpec(name=data_cfg.name,
                  domain_names=tuple(d.name for d in domains),
                  image_size=int(data_cfg.image_size),
                  num_modes=source.num_modes, has_masks=source.has_masks)


def _options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = _num_threads()
  options.threading.max_intra_op_parallelism = 1
  return options


def create_train_iterator(data_cfg, batch_size: int, *, seed: int,
                          process_index: int = 0,
                          process_count: int = 1,
                          balanced: bool = False) -> 'TrainIterator':
  """Infinite iterator of this process's training batches.

  By default every example's domain is drawn uniformly at random (MDMM's
  mixed batches). With `balanced`, each batch holds B/N examples of every
  selected domain in domain order (rows [k·B/N, (k+1)·B/N) are domain k):
  the (x_a, x_b) batches of two-domain models such as UNIT, MUNIT and
  CycleGAN.

  Args:
    data_cfg: `config.data`.
    batch_size: the batch size B of this shard (of this process, when every
      process reads one shard).
    seed: the same on every process; it is combined with `process_index`.
    process_index: which shard of every domain to read.
    process_count: number of shards (`train.data_shards`, by default one
      per process).
    balanced: equal, ordered per-domain parts in every batch (B % N == 0).

  Returns:
    a `TrainIterator` yielding {'image': float32 (B, S, S, 3) in [-1, 1],
    'domain': int32 (B,)}, the domain being the index into the selected
    domains; its position can be saved and restored.
  """
  if batch_size < 1:
    raise DataError(f'batch_size must be positive, got {batch_size}')
  if not 0 <= process_index < process_count:
    raise DataError(f'process_index {process_index} not in '
                    f'[0, {process_count})')
  # What makes two pipelines the same (except the seed), for `restore`.
  settings = dict(data=data_cfg.to_dict(), batch_size=batch_size,
                  process_index=process_index, process_count=process_count,
                  balanced=balanced)
  build = functools.partial(_train_dataset, data_cfg, batch_size,
                            process_index=process_index,
                            process_count=process_count, balanced=balanced)
  # As JSON reads them back (tuples become lists), to compare with a save.
  return TrainIterator(build, seed=seed, process_index=process_index,
                       settings=json.loads(json.dumps(settings)))


class TrainIterator:
  """Training batches as numpy, with tf.data's own position checkpointing.

  `next()` gives the next batch. `save(directory)` writes the underlying
  tf.data iterator's state (`tf.train.Checkpoint(iterator=...)`: file
  offsets, shuffle and prefetch buffers, the domain-mixing RNG, the example
  counter that seeds the augmentation) to `<directory>/process_<i>.*`, one
  set of files per data shard i (per process by default), plus
  `process_<i>.json` with the seed and the pipeline settings.
  `restore(directory)` continues with exactly the batches that followed the
  saved one, rebuilding the pipeline with the saved seed if it differs. The
  buffers make a saved state about `data.shuffle_buffer` encoded images per
  domain.
  """

  def __init__(self, build, *, seed: int, process_index: int,
               settings: dict[str, Any]):
    """`build(seed)` gives the `tf.data.Dataset` of batches; `settings`
    (JSON) are what else a saved position must match."""
    self._build, self._process_index = build, process_index
    self._settings = settings
    self._start(seed)

  def _start(self, seed):
    self.seed = int(seed)
    self._iterator = iter(self._build(self.seed))
    self._checkpoint = tf.train.Checkpoint(iterator=self._iterator)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in next(self._iterator).items()}

  def _prefix(self, directory):
    return os.path.join(os.fspath(directory),
                        f'process_{self._process_index}')

  def save(self, directory) -> None:
    """Writes this process's position into `directory` (synchronously)."""
    prefix = self._prefix(directory)
    tf.io.gfile.makedirs(os.fspath(directory))
    self._checkpoint.write(prefix)
    with tf.io.gfile.GFile(prefix + '.json', 'w') as f:
      json.dump({'seed': self.seed, 'settings': self._settings}, f)

  def restore(self, directory) -> None:
    """Continues from the position saved in `directory`.

    Raises:
      FileNotFoundError: no position of this process in `directory`.
      ValueError: it was saved by a pipeline with other settings (data
        config, batch size, process count, ...).
    """
    prefix = self._prefix(directory)
    if not tf.io.gfile.exists(prefix + '.json'):
      raise FileNotFoundError(f'No saved data position {prefix}.json')
    with tf.io.gfile.GFile(prefix + '.json') as f:
      saved = json.load(f)
    if saved['settings'] != self._settings:
      changed = sorted(
          k for k in set(saved['settings']) | set(self._settings)
          if saved['settings'].get(k) != self._settings.get(k))
      raise ValueError(f'The data position in {directory} was saved by a '
                       f'pipeline with other settings ({", ".join(changed)})')
    if saved['seed'] != self.seed:
      self._start(saved['seed'])
    self._checkpoint.read(prefix).assert_consumed()


class ConcatIterator:
  """Batches of several iterators concatenated along the batch axis.

  A process that reads several data shards (`distributed.split_batch_size`)
  draws one batch of every shard's `TrainIterator` per `next()` and returns
  them one after the other: {'image': (n·b, S, S, 3), 'domain': (n·b,)}.
  `save` / `restore` save and restore every shard's position (the files of
  shard i are `process_<i>.*`, as a process reading shard i alone names
  them).
  """

  def __init__(self, iterators):
    self.iterators = list(iterators)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batches = [next(it) for it in self.iterators]
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}

  def save(self, directory) -> None:
    for it in self.iterators:
      it.save(directory)

  def restore(self, directory) -> None:
    for it in self.iterators:
      it.restore(directory)


def _train_dataset(data_cfg, batch_size, seed, *, process_index,
                   process_count, balanced) -> tf.data.Dataset:
  """The batched, prefetched tf.data pipeline of `create_train_iterator`."""
  source, domains = _source_and_domains(data_cfg)
  n = len(domains)
  seeds = np.random.SeedSequence([int(seed), process_index]).generate_state(
      n + 2, dtype=np.uint32).astype(np.int64)
  streams = []
  for label, domain in enumerate(domains):
    ds = source.train_stream(
        domain, process_index=process_index, process_count=process_count,
        seed=int(seeds[label]), shuffle_buffer=int(data_cfg.shuffle_buffer))
    streams.append(ds.map(lambda e, label=label: (e, np.int32(label))))
  if balanced and batch_size % n:
    raise DataError(f'balanced batches need batch_size divisible by the '
                    f'{n} selected domains, got batch_size={batch_size}')
  if n == 1:
    ds = streams[0]
  elif balanced:
    order = np.repeat(np.arange(n, dtype=np.int64), batch_size // n)
    ds = tf.data.Dataset.choose_from_datasets(
        streams, tf.data.Dataset.from_tensor_slices(order).repeat())
  else:
    ds = tf.data.Dataset.sample_from_datasets(
        streams, weights=[1.0 / n] * n, seed=int(seeds[n]))

  load_size, image_size = int(data_cfg.load_size), int(data_cfg.image_size)
  flip = bool(data_cfg.flip)
  aug_seed = int(seeds[n + 1])

  def prepare(index, element):
    encoded, label = element
    image = preprocess.train_image(
        preprocess.decode_image(encoded),
        tf.stack([tf.constant(aug_seed, tf.int64), index]),
        load_size=load_size, image_size=image_size, flip=flip)
    image = tf.ensure_shape(image, (image_size, image_size, 3))
    return {'image': image, 'domain': label}

  ds = ds.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
  if isinstance(source, _FolderSource):
    # Safety net for files that pass PIL's header check but fail to decode.
    ds = ds.ignore_errors(log_warning=True)
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(2)
  return ds.with_options(_options())


def load_eval_arrays(data_cfg, domain: int, *, split: str = 'test',
                     max_examples: int | None = None) -> dict[str, np.ndarray]:
  """All (or the first `max_examples`) eval images of one selected domain.

  Args:
    data_cfg: `config.data`.
    domain: index into the selected domains.
    split: 'test' or 'train'. Sources without a test split (named folders)
      read their training images.
    max_examples: keep only this many, after the deterministic ordering.

  Returns:
    'image' float32 (n, S, S, 3) in [-1, 1] and 'domain' int32 (n,); shapes
    also 'mode' int32 (n,), 'mask' uint8 (n, S, S) and 'scene_id' int64 (n,),
    sorted by (scene_id, mode), so every domain lists the same scenes.
  """
  if split not in ('test', 'train'):
    raise DataError(f"split must be 'test' or 'train', got {split!r}")
  source, domains = _source_and_domains(data_cfg)
  if not 0 <= domain < len(domains):
    raise DataError(f'domain {domain} out of range for the selected domains '
                    f'{[d.name for d in domains]}')
  d = domains[domain]
  where = d.test if split == 'test' else d.train
  if where is None:
    logging.info('%s: domain %r has no test split; evaluating on train.',
                 source.name, d.name)
    where = d.train
  load_size, image_size = int(data_cfg.load_size), int(data_cfg.image_size)

  def prepare(record):
    out = dict(record)
    image = preprocess.eval_image(preprocess.decode_image(record['image']),
                                  load_size=load_size, image_size=image_size)
    out['image'] = tf.ensure_shape(image, (image_size, image_size, 3))
    if 'mask' in record:
      mask = tf.io.decode_png(record['mask'], channels=1)
      mask = preprocess.eval_mask(mask, load_size=load_size,
                                  image_size=image_size)
      out['mask'] = tf.ensure_shape(mask[..., 0], (image_size, image_size))
    return out

  ds = source.eval_records(where, max_examples)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True).batch(256)
  batches = list(ds.with_options(_options()).as_numpy_iterator())
  keys = ['image'] + (['mode', 'mask', 'scene_id'] if source.has_masks
                      else [])
  if batches:
    arrays = {k: np.concatenate([b[k] for b in batches]) for k in keys}
  else:
    s = image_size
    empty = {'image': np.zeros((0, s, s, 3), np.float32),
             'mode': np.zeros((0,), np.int32),
             'mask': np.zeros((0, s, s), np.uint8),
             'scene_id': np.zeros((0,), np.int64)}
    arrays = {k: empty[k] for k in keys}
  arrays['domain'] = np.full((len(arrays['image']),), domain, np.int32)
  return arrays
