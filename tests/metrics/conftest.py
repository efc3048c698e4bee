"""Fixtures of the metrics tests: shapes arrays rendered directly.

`RenderedShapes` stands in for `pipeline.load_eval_arrays` (same call
signature, same keys) and keeps every image's scene, so a test can build an
oracle "perfect" translator that re-renders a scene in another domain. The
oracles are the evaluator's own (TFDS shapes train split, 32×32, cached):
they are trained once (about 8 minutes on 2 CPU cores) and the learning
tests reuse them.
"""

import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax.data import shapes_render
from i2ijax.metrics import oracles as oracles_lib

SIZE = 32


class RenderedShapes:
  """Deterministic per-(domain, split) shapes arrays at `size`.

  Calling it matches `load_eval_arrays(data_cfg, domain, *, split,
  max_examples)`. Images are also indexed by their bytes, so `scene_of(image)`
  finds the scene a (possibly padded or copied) image was rendered from.
  """

  def __init__(self, size=SIZE, num_train=600, num_test=120):
    self.size = size
    self.data_cfg = make_data_cfg(size)
    self.counts = {'train': num_train, 'test': num_test}
    self._arrays = {}
    self._scenes = {}

  def _build(self, domain, split):
    n = self.counts[split]
    rng = np.random.default_rng([domain, 0 if split == 'train' else 1, 7])
    images, masks, modes, scenes = [], [], [], []
    for i in range(n):
      scene = shapes_render.sample_scene(rng)
      mode = int(rng.integers(shapes_render.NUM_MODES))
      image, mask = shapes_render.render(scene, domain, mode, self.size,
                                         seed=i)
      images.append(image)
      masks.append(mask)
      modes.append(mode)
      scenes.append(scene)
    images = np.stack(images).astype(np.float32) / 127.5 - 1
    arrays = {'image': images, 'domain': np.full(n, domain, np.int32),
              'mode': np.array(modes, np.int32), 'mask': np.stack(masks),
              'scene_id': np.arange(n, dtype=np.int64)}
    for image, scene in zip(images, scenes):
      self._scenes[image.tobytes()] = scene
    return arrays

  def __call__(self, data_cfg, domain, *, split='test', max_examples=None):
    del data_cfg
    if (domain, split) not in self._arrays:
      self._arrays[domain, split] = self._build(domain, split)
    arrays = self._arrays[domain, split]
    return {k: v[:max_examples] for k, v in arrays.items()}

  def scene_of(self, image):
    return self._scenes[np.asarray(image, np.float32).tobytes()]


def make_data_cfg(size=SIZE):
  data_cfg = config_lib.base_config().data
  data_cfg.source_size = data_cfg.load_size = data_cfg.image_size = size
  return data_cfg


@pytest.fixture(scope='session')
def rendered_shapes():
  return RenderedShapes()


@pytest.fixture(scope='session')
def trained_oracles():
  """The evaluator's own 32x32 oracles (trained on the TFDS shapes train
  split, cached where `evaluate` and the learning tests find them)."""
  return oracles_lib.get_oracles(
      make_data_cfg(), steps=config_lib.base_config().eval.oracle_steps,
      seed=0)
