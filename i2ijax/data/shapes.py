"""The embedded `shapes` benchmark as a TFDS dataset, built locally on use.

`Shapes` is a `tfds.core.GeneratorBasedBuilder` that renders scenes with
`shapes_render` (no download). It is written as tfrecord files under the TFDS
data dir (`<data_dir>/shapes/<config>/1.0.0`), so `tfds.load('shapes/64')`
reads it once this module has been imported.

Builder configs '32', '64' (default) and '128' give the rendered size S.
Splits, per domain d in `DOMAINS`:

  train_<d>: `NUM_TRAIN_PER_DOMAIN` independent random scenes, each in one
      random style mode. Scenes differ between domains (unpaired).
  test_<d>:  the SAME `NUM_TEST_SCENES` scenes in every domain, each rendered
      in all `NUM_MODES` modes (3 × NUM_TEST_SCENES examples), so every
      translation has a ground truth.

Features: image uint8 (S, S, 3); domain ClassLabel(DOMAINS); mode int32;
mask uint8 (S, S, 1), the shape mask, identical across domains and modes;
scene_id int64 (test: 0..NUM_TEST_SCENES-1; train: (d+1)·10⁶ + index, so ids
never collide). Everything is a pure function of (split, index).

`NUM_TRAIN_PER_DOMAIN` and `NUM_TEST_SCENES` may be lowered (tests do); a
non-default count gives its own config name (e.g. '32_n40_t8'), so datasets
with different counts never share a directory.

`prepare(size, data_dir)` builds the dataset if needed. Two processes that
build at once are serialised with a lock file next to the data; the loser
finds the data prepared and only reads it.
"""

import contextlib
import dataclasses
import fcntl
import io
import os

from absl import logging
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from i2ijax.data import shapes_render

DOMAINS = shapes_render.DOMAINS
NUM_MODES = shapes_render.NUM_MODES
SIZES = (32, 64, 128)
DEFAULT_SIZE = 64
NUM_TRAIN_PER_DOMAIN = 2000
NUM_TEST_SCENES = 100
_DEFAULT_COUNTS = (2000, 100)
_SEED = 20240607
_TRAIN, _TEST = 0, 1
_TRAIN_ID_OFFSET = 1_000_000


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
  """Rendered size and example counts of one `shapes` variant."""
  size: int = DEFAULT_SIZE
  num_train: int = _DEFAULT_COUNTS[0]
  num_test: int = _DEFAULT_COUNTS[1]


def _config_name(size: int, num_train: int, num_test: int) -> str:
  if (num_train, num_test) == _DEFAULT_COUNTS:
    return str(size)
  return f'{size}_n{num_train}_t{num_test}'


class Shapes(tfds.core.GeneratorBasedBuilder):
  """Synthetic day / night / sketch scenes with style modes and masks."""

  # Bump when the renderer's output changes: built data are reused by version.
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      ShapesConfig(name=str(s), size=s, description=f'{s}x{s} renders.')
      for s in SIZES
  ]
  DEFAULT_CONFIG_NAME = str(DEFAULT_SIZE)

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(s, s, 3)),
            'domain': tfds.features.ClassLabel(names=DOMAINS),
            'mode': tfds.features.Scalar(dtype=np.int32),
            'mask': tfds.features.Image(shape=(s, s, 1)),
            'scene_id': tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    splits = {}
    for d, name in enumerate(DOMAINS):
      splits[f'train_{name}'] = self._generate_examples(_TRAIN, d)
      splits[f'test_{name}'] = self._generate_examples(_TEST, d)
    return splits

  def _generate_examples(self, split: int, domain: int):
    """Yields (key, example); a pure function of (split, domain, index)."""
    cfg = self.builder_config
    if split == _TRAIN:
      for i in range(cfg.num_train):
        rng = np.random.default_rng([_SEED, _TRAIN, domain, i])
        scene = shapes_render.sample_scene(rng)
        mode = int(rng.integers(NUM_MODES))
        seed = int(rng.integers(2**31))
        yield i, _example(scene, domain, mode, cfg.size, seed,
                          _TRAIN_ID_OFFSET * (domain + 1) + i)
    else:
      for j in range(cfg.num_test):
        # Independent of the domain: every domain renders the same scenes.
        scene = shapes_render.sample_scene(
            np.random.default_rng([_SEED, _TEST, j]))
        for mode in range(NUM_MODES):
          yield j * NUM_MODES + mode, _example(scene, domain, mode, cfg.size,
                                               j, j)


def _png(array: np.ndarray) -> bytes:
  """PNG bytes (PIL is faster than TFDS's per-image TensorFlow encoder)."""
  buffer = io.BytesIO()
  PIL.Image.fromarray(array).save(buffer, format='PNG', compress_level=1)
  return buffer.getvalue()


def _example(scene, domain, mode, size, seed, scene_id):
  image, mask = shapes_render.render(scene, domain, mode, size, seed)
  return {'image': _png(image), 'domain': domain, 'mode': np.int32(mode),
          'mask': _png(mask), 'scene_id': np.int64(scene_id)}


def builder_config(size: int = DEFAULT_SIZE) -> ShapesConfig:
  """The config for `size` with the current module-level example counts."""
  if size not in SIZES:
    raise ValueError(f'shapes size must be one of {SIZES}, got {size}')
  counts = (NUM_TRAIN_PER_DOMAIN, NUM_TEST_SCENES)
  if counts == _DEFAULT_COUNTS:
    return Shapes.builder_configs[str(size)]
  return ShapesConfig(name=_config_name(size, *counts), size=size,
                      num_train=counts[0], num_test=counts[1],
                      version=Shapes.VERSION)


@contextlib.contextmanager
def _build_lock(path: str):
  """An exclusive `flock` on `path` (a no-op on non-local file systems)."""
  if '://' in path:
    yield
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'a') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare(size: int = DEFAULT_SIZE, data_dir: str | None = None) -> Shapes:
  """Returns a `Shapes` builder whose data exist, building them if needed.

  Args:
    size: rendered size, one of `SIZES`.
    data_dir: TFDS data dir; None = TFDS default ($TFDS_DATA_DIR or
      ~/tensorflow_datasets).
  """
  config = builder_config(size)
  builder = Shapes(config=config, data_dir=data_dir or None,
                   file_format='tfrecord')
  if builder.is_prepared():
    return builder
  lock = os.path.join(os.fspath(builder.data_path.parent.parent),
                      f'.{config.name}.lock')
  with _build_lock(lock):
    if not builder.is_prepared():
      logging.info('Building shapes/%s in %s', config.name, builder.data_path)
      try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                try_download_gcs=False,
                compute_stats=tfds.download.ComputeStatsMode.SKIP))
      except OSError:
        # A builder without the lock (e.g. on a remote file system) won.
        if not builder.is_prepared():
          raise
  # A fresh builder reads the split metadata written by whoever built it.
  return Shapes(config=config, data_dir=data_dir or None,
                file_format='tfrecord')
