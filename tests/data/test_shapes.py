"""Tests of the `shapes` TFDS builder: offline build, splits, determinism."""

import os
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from i2ijax.data import shapes

NUM_TRAIN, NUM_TEST = 30, 5


@pytest.fixture(autouse=True)
def small_counts(monkeypatch):
  monkeypatch.setattr(shapes, 'NUM_TRAIN_PER_DOMAIN', NUM_TRAIN)
  monkeypatch.setattr(shapes, 'NUM_TEST_SCENES', NUM_TEST)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


def _read(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split,
                                               shuffle_files=False)))


def test_builds_offline_with_all_splits(data_dir):
  builder = shapes.prepare(32, data_dir)
  assert builder.is_prepared()
  assert builder.builder_config.name == f'32_n{NUM_TRAIN}_t{NUM_TEST}'
  counts = {k: v.num_examples for k, v in builder.info.splits.items()}
  expected = {}
  for d in shapes.DOMAINS:
    expected[f'train_{d}'] = NUM_TRAIN
    expected[f'test_{d}'] = NUM_TEST * shapes.NUM_MODES
  assert counts == expected
  # The written files are what tfds.load reads.
  ds = tfds.load(f'shapes/{builder.builder_config.name}', split='train_night',
                 data_dir=data_dir)
  example = next(iter(tfds.as_numpy(ds)))
  assert example['image'].shape == (32, 32, 3)
  assert example['image'].dtype == np.uint8
  assert example['mask'].shape == (32, 32, 1)
  assert set(np.unique(example['mask'])) <= {0, 1}
  assert example['domain'] == shapes.DOMAINS.index('night')
  assert example['mode'].dtype == np.int32
  assert example['scene_id'].dtype == np.int64


def test_train_splits_are_unpaired_with_random_modes(data_dir):
  builder = shapes.prepare(32, data_dir)
  splits = {d: _read(builder, f'train_{d}') for d in shapes.DOMAINS}
  for d, rows in splits.items():
    assert {int(r['domain']) for r in rows} == {shapes.DOMAINS.index(d)}
    assert len({int(r['mode']) for r in rows}) == shapes.NUM_MODES
  ids = [{int(r['scene_id']) for r in rows} for rows in splits.values()]
  assert all(len(i) == NUM_TRAIN for i in ids)
  assert not ids[0] & ids[1] and not ids[1] & ids[2]
  masks = {d: {r['mask'].tobytes() for r in rows}
           for d, rows in splits.items()}
  assert not masks['day'] & masks['night']   # different scenes


def test_test_splits_share_scenes_in_all_modes(data_dir):
  builder = shapes.prepare(32, data_dir)
  by_domain = {}
  for d in shapes.DOMAINS:
    rows = _read(builder, f'test_{d}')
    by_domain[d] = {(int(r['scene_id']), int(r['mode'])): r for r in rows}
  keys = {(s, m) for s in range(NUM_TEST) for m in range(shapes.NUM_MODES)}
  for d in shapes.DOMAINS:
    assert set(by_domain[d]) == keys
  for key in keys:
    day, night, sketch = (by_domain[d][key] for d in shapes.DOMAINS)
    np.testing.assert_array_equal(day['mask'], night['mask'])
    np.testing.assert_array_equal(day['mask'], sketch['mask'])
    assert not np.array_equal(day['image'], night['image'])
  # The modes of one scene are different renderings of one content.
  a, b = by_domain['day'][0, 0], by_domain['day'][0, 1]
  np.testing.assert_array_equal(a['mask'], b['mask'])
  assert not np.array_equal(a['image'], b['image'])


def test_build_is_deterministic(tmp_path):
  first = shapes.prepare(32, str(tmp_path / 'a'))
  second = shapes.prepare(32, str(tmp_path / 'b'))
  for split in first.info.splits:
    name = f'shapes-{split}.tfrecord-00000-of-00001'
    assert ((first.data_path / name).read_bytes()
            == (second.data_path / name).read_bytes()), split


def test_concurrent_builds_do_not_corrupt(tmp_path):
  data_dir = str(tmp_path)
  results, errors = [], []

  def build():
    try:
      results.append(shapes.prepare(32, data_dir))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=build) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=120)
  assert not errors
  assert len(results) == 2
  for builder in results:
    assert len(_read(builder, 'test_sketch')) == NUM_TEST * shapes.NUM_MODES
  leftovers = os.listdir(results[0].data_path.parent)
  assert leftovers == ['1.0.0'], leftovers


def test_default_config_and_bad_size(monkeypatch):
  monkeypatch.setattr(shapes, 'NUM_TRAIN_PER_DOMAIN', 2000)
  monkeypatch.setattr(shapes, 'NUM_TEST_SCENES', 100)
  assert shapes.builder_config(64).name == '64'
  assert shapes.Shapes.DEFAULT_CONFIG_NAME == '64'
  with pytest.raises(ValueError, match='32, 64, 128'):
    shapes.builder_config(48)
