"""Tests of TFDS catalog sources: cycle_gan (mocked) and the offline error."""

import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from i2ijax import config_lib
from i2ijax.data import pipeline

NAME = 'cycle_gan/apple2orange'


def _cfg(data_dir, **overrides):
  cfg = config_lib.base_config().data
  cfg.update(dict(name=NAME, data_dir=str(data_dir), load_size=20,
                  image_size=16, shuffle_buffer=8))
  cfg.update(overrides)
  return cfg


def test_mocked_cycle_gan(tmp_path):
  with tfds.testing.mock_data(num_examples=6):
    cfg = _cfg(tmp_path)
    spec = pipeline.get_data_spec(cfg)
    assert spec.domain_names == ('A', 'B')
    assert spec.num_modes == 0 and not spec.has_masks
    it = pipeline.create_train_iterator(cfg, 4, seed=0)
    batches = [next(it) for _ in range(4)]
    for batch in batches:
      # Mock images come in random sizes; all are resized and cropped.
      assert batch['image'].shape == (4, 16, 16, 3)
      assert -1 <= batch['image'].min() and batch['image'].max() <= 1
    labels = np.concatenate([b['domain'] for b in batches])
    assert set(labels) == {0, 1}
    a = pipeline.load_eval_arrays(cfg, 1, max_examples=5)
    assert a['image'].shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(a['domain'], np.ones(5, np.int32))
    again = pipeline.load_eval_arrays(cfg, 1, max_examples=5)
    np.testing.assert_array_equal(a['image'], again['image'])
    only_b = pipeline.get_data_spec(_cfg(tmp_path, domains=('B',)))
    assert only_b.domain_names == ('B',)


def test_offline_error_is_clear_and_fast(tmp_path):
  start = time.time()
  with pytest.raises(pipeline.DataError) as info:
    pipeline.get_data_spec(_cfg(tmp_path / 'empty'))
  assert time.time() - start < 10
  message = str(info.value)
  assert '\n' not in message
  assert NAME in message and 'TFDS_DATA_DIR' in message
  assert "data.name='folder'" in message and 'data.root' in message
  with pytest.raises(pipeline.DataError, match='TFDS_DATA_DIR'):
    pipeline.create_train_iterator(_cfg(tmp_path / 'empty'), 2, seed=0)


def test_unknown_catalog_dataset(tmp_path):
  with pytest.raises(pipeline.DataError, match="Unknown dataset.*'shapes'"):
    pipeline.get_data_spec(_cfg(tmp_path, name='cycle_gan/no_such_pair'))
