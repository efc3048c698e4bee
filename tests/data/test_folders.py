"""Tests of the image-folder source: layouts, image modes, bad files, errors."""

import numpy as np
import PIL.Image
import pytest

from i2ijax import config_lib
from i2ijax.data import pipeline

RED = (200, 40, 40)


def _save(path, array, mode=None, fmt=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  PIL.Image.fromarray(np.asarray(array, np.uint8), mode).save(path, fmt)


def _solid(h, w, colour):
  return np.broadcast_to(np.array(colour, np.uint8), (h, w, len(colour)))


@pytest.fixture
def split_root(tmp_path):
  """trainA (RGB of two sizes, grayscale, RGBA, corrupt), trainB (JPEG)."""
  root = tmp_path / 'data'
  _save(root / 'trainA' / 'a0.png', _solid(40, 30, RED))
  _save(root / 'trainA' / 'a1.png', _solid(20, 50, RED))
  _save(root / 'trainA' / 'gray.png', np.full((24, 24), 90), 'L')
  _save(root / 'trainA' / 'rgba.png', _solid(24, 24, RED + (128,)), 'RGBA')
  (root / 'trainA' / 'bad.png').write_bytes(b'\x89PNG\r\n not an image')
  for i in range(3):
    _save(root / 'trainB' / f'b{i}.jpg', _solid(36, 36, (20, 20, 220)),
          fmt='JPEG')
  _save(root / 'testA' / 't0.png', _solid(32, 32, RED))
  _save(root / 'testB' / 't0.png', _solid(32, 32, (20, 20, 220)))
  return root


def _cfg(root, **overrides):
  cfg = config_lib.base_config().data
  cfg.update(dict(name='folder', root=str(root), load_size=20, image_size=16,
                  shuffle_buffer=8))
  cfg.update(overrides)
  return cfg


def test_split_layout(split_root):
  spec = pipeline.get_data_spec(_cfg(split_root))
  assert spec.domain_names == ('A', 'B')
  assert spec.num_modes == 0 and not spec.has_masks
  with pytest.warns(UserWarning, match=r'bad\.png'):
    it = pipeline.create_train_iterator(_cfg(split_root), 4, seed=0)
  for _ in range(5):
    batch = next(it)
    assert batch['image'].shape == (4, 16, 16, 3)
    assert batch['image'].dtype == np.float32
    for image, label in zip(batch['image'], batch['domain']):
      pixel = (image[8, 8] + 1) * 127.5
      if label == 1:                       # blue JPEGs
        assert pixel[2] > 180 and pixel[0] < 60
      else:                                # red or gray (from grayscale)
        assert pixel[0] > 60


def test_grayscale_and_rgba_become_rgb(split_root):
  cfg = _cfg(split_root, load_size=24, image_size=24)
  with pytest.warns(UserWarning, match=r'bad\.png'):
    a = pipeline.load_eval_arrays(cfg, 0, split='train')
  # Sorted file order: a0, a1, gray, rgba (bad.png skipped).
  assert a['image'].shape == (4, 24, 24, 3)
  pixels = np.round((a['image'][:, 12, 12] + 1) * 127.5)
  np.testing.assert_allclose(pixels[2], [90, 90, 90], atol=1)
  np.testing.assert_allclose(pixels[3], RED, atol=1)
  np.testing.assert_allclose(pixels[0], RED, atol=1)


def test_eval_uses_test_folders(split_root):
  a = pipeline.load_eval_arrays(_cfg(split_root), 1)
  assert a['image'].shape == (1, 16, 16, 3)
  np.testing.assert_array_equal(a['domain'], [1])
  assert set(a) == {'image', 'domain'}


def test_named_layout_falls_back_to_train(tmp_path):
  for name, colour in (('cat', RED), ('dog', (20, 220, 20))):
    for i in range(2):
      _save(tmp_path / name / f'{i}.png', _solid(18, 18, colour))
  cfg = _cfg(tmp_path, domains=('dog',))
  assert pipeline.get_data_spec(cfg).domain_names == ('dog',)
  a = pipeline.load_eval_arrays(cfg, 0, split='test')
  assert a['image'].shape == (2, 16, 16, 3)
  assert ((a['image'][:, 8, 8, 1] + 1) * 127.5 > 200).all()   # green dogs
  batch = next(pipeline.create_train_iterator(cfg, 3, seed=0))
  assert (batch['domain'] == 0).all()


def test_missing_and_empty_folders(tmp_path):
  missing = tmp_path / 'nope'
  with pytest.raises(pipeline.DataError, match=str(missing)):
    pipeline.get_data_spec(_cfg(missing))
  with pytest.raises(pipeline.DataError, match='no sub-folders'):
    pipeline.get_data_spec(_cfg(tmp_path))
  with pytest.raises(pipeline.DataError, match='data.root is empty'):
    pipeline.get_data_spec(_cfg(''))
  _save(tmp_path / 'trainA' / 'x.png', _solid(8, 8, RED))
  (tmp_path / 'trainB').mkdir()
  with pytest.raises(pipeline.DataError,
                     match=f"{tmp_path / 'trainB'}.*no readable image"):
    pipeline.create_train_iterator(_cfg(tmp_path), 2, seed=0)


def test_unknown_domain_lists_available(split_root):
  with pytest.raises(pipeline.DataError, match="'C'.*0='A', 1='B'"):
    pipeline.get_data_spec(_cfg(split_root, domains=('A', 'C')))
