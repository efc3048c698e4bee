"""Tests of the training / eval pipelines on a small `shapes` dataset."""

import collections

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from i2ijax import config_lib
from i2ijax.data import pipeline
from i2ijax.data import shapes

NUM_TRAIN, NUM_TEST = 40, 6


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(shapes, 'NUM_TRAIN_PER_DOMAIN', NUM_TRAIN)
    mp.setattr(shapes, 'NUM_TEST_SCENES', NUM_TEST)
    yield str(tmp_path_factory.mktemp('tfds'))


def _cfg(data_dir, **overrides):
  cfg = config_lib.base_config().data
  cfg.update(dict(data_dir=data_dir, source_size=32, load_size=36,
                  image_size=32, shuffle_buffer=64))
  cfg.update(overrides)
  return cfg


def _domain_of(image):
  """Classifies a [-1, 1] shapes image by its statistics (see renderer)."""
  x = (image + 1) / 2
  if x.mean() < 0.4:
    return 'night'           # dark background
  saturation = (x.max(-1) - x.min(-1)).max()
  return 'day' if saturation > 0.33 else 'sketch'   # colour-filled shapes


def test_data_spec(data_dir):
  spec = pipeline.get_data_spec(_cfg(data_dir))
  assert spec == pipeline.DataSpec(name='shapes',
                                   domain_names=('day', 'night', 'sketch'),
                                   image_size=32, num_modes=3, has_masks=True)
  by_name = pipeline.get_data_spec(_cfg(data_dir, domains=('day', 'sketch')))
  by_index = pipeline.get_data_spec(_cfg(data_dir, domains=(0, 2)))
  assert by_name.domain_names == by_index.domain_names == ('day', 'sketch')


def test_train_batches(data_dir):
  it = pipeline.create_train_iterator(_cfg(data_dir), 8, seed=0)
  batch = next(it)
  assert set(batch) == {'image', 'domain'}
  assert batch['image'].shape == (8, 32, 32, 3)
  assert batch['image'].dtype == np.float32
  assert -1.0 <= batch['image'].min() < batch['image'].max() <= 1.0
  assert batch['domain'].shape == (8,) and batch['domain'].dtype == np.int32


def test_labels_match_images_and_domains_are_balanced(data_dir):
  order = ('sketch', 'day', 'night')   # labels follow the selection order
  it = pipeline.create_train_iterator(
      _cfg(data_dir, domains=order, load_size=32), 8, seed=1)
  counts = collections.Counter()
  for _ in range(40):
    batch = next(it)
    for image, label in zip(batch['image'], batch['domain']):
      assert _domain_of(image) == order[label]
      counts[int(label)] += 1
  assert set(counts) == {0, 1, 2}
  for c in counts.values():
    assert 0.25 < c / 320 < 0.42, counts


def test_balanced_batches_hold_equal_ordered_domain_parts(data_dir):
  order = ('night', 'day')
  it = pipeline.create_train_iterator(
      _cfg(data_dir, domains=order, load_size=32), 6, seed=2, balanced=True)
  for _ in range(5):
    batch = next(it)
    np.testing.assert_array_equal(batch['domain'], [0, 0, 0, 1, 1, 1])
    assert [_domain_of(x) for x in batch['image']] == [
        'night'] * 3 + ['day'] * 3
  with pytest.raises(pipeline.DataError, match='divisible'):
    pipeline.create_train_iterator(_cfg(data_dir), 4, seed=0, balanced=True)


def test_determinism(data_dir):
  cfg = _cfg(data_dir)

  def first(seed, process_index=0):
    it = pipeline.create_train_iterator(cfg, 6, seed=seed,
                                        process_index=process_index,
                                        process_count=2)
    return [next(it) for _ in range(2)]

  a, b, c = first(0), first(0), first(1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['image'], y['image'])
    np.testing.assert_array_equal(x['domain'], y['domain'])
  assert not np.array_equal(a[0]['image'], c[0]['image'])
  assert not np.array_equal(a[0]['image'], first(0, process_index=1)[0]
                            ['image'])


def test_processes_read_disjoint_shards(data_dir):
  cfg = _cfg(data_dir, domains=('night',), load_size=32, flip=False)
  seen = []
  for index in range(2):
    it = pipeline.create_train_iterator(cfg, 10, seed=0, process_index=index,
                                        process_count=2)
    images = np.concatenate([next(it)['image'] for _ in range(6)])
    seen.append({im.tobytes() for im in images})
  assert len(seen[0]) == len(seen[1]) == NUM_TRAIN // 2   # a full epoch each
  assert not seen[0] & seen[1]


def _folder_cfg(root):
  rng = np.random.default_rng(0)
  for domain in ('trainA', 'trainB'):
    (root / domain).mkdir(parents=True)
    for i in range(6):
      PIL.Image.fromarray(rng.integers(0, 255, (20, 20, 3), np.uint8)).save(
          root / domain / f'{i}.png')
  return _cfg('', name='folder', root=str(root), load_size=20,
              image_size=16)


# Mixed batches of the shapes source (TFDS files, sample_from_datasets) and
# balanced ones of a folder source (choose_from_datasets, ignore_errors).
@pytest.mark.parametrize('source, balanced', [('shapes', False),
                                              ('folder', True)])
def test_a_saved_position_restores_the_exact_next_batches(
    data_dir, tmp_path, source, balanced):
  cfg = (_cfg(data_dir, domains=('day', 'night')) if source == 'shapes'
         else _folder_cfg(tmp_path / 'images'))
  it = pipeline.create_train_iterator(cfg, 4, seed=3, balanced=balanced)
  for _ in range(10):
    next(it)
  it.save(tmp_path / 'position')
  # 20 more batches: past the end of an epoch (reshuffled) of every domain.
  expected = [next(it) for _ in range(20)]
  # Built with another seed: `restore` rebuilds it with the saved one.
  resumed = pipeline.create_train_iterator(cfg, 4, seed=4, balanced=balanced)
  resumed.restore(tmp_path / 'position')
  for want in expected:
    got = next(resumed)
    np.testing.assert_array_equal(got['image'], want['image'])
    np.testing.assert_array_equal(got['domain'], want['domain'])

  other = pipeline.create_train_iterator(cfg, 2, seed=3, balanced=balanced)
  with pytest.raises(ValueError, match=r'other settings \(batch_size\)'):
    other.restore(tmp_path / 'position')
  with pytest.raises(FileNotFoundError, match='process_0'):
    other.restore(tmp_path)


def test_eval_arrays_pair_scenes_across_domains(data_dir):
  cfg = _cfg(data_dir)
  arrays = [pipeline.load_eval_arrays(cfg, d) for d in range(3)]
  n = NUM_TEST * shapes.NUM_MODES
  for d, a in enumerate(arrays):
    assert a['image'].shape == (n, 32, 32, 3) and a['image'].dtype == np.float32
    assert -1.0 <= a['image'].min() and a['image'].max() <= 1.0
    assert a['mask'].shape == (n, 32, 32) and a['mask'].dtype == np.uint8
    assert a['mode'].dtype == np.int32 and a['scene_id'].dtype == np.int64
    np.testing.assert_array_equal(a['domain'], np.full(n, d, np.int32))
    np.testing.assert_array_equal(a['scene_id'],
                                  np.repeat(np.arange(NUM_TEST), 3))
    np.testing.assert_array_equal(a['mode'], np.tile(np.arange(3), NUM_TEST))
    np.testing.assert_array_equal(a['mask'], arrays[0]['mask'])
    assert {_domain_of(im) for im in a['image']} == {shapes.DOMAINS[d]}
  assert arrays[0]['mask'].any()
  firsts = pipeline.load_eval_arrays(cfg, 2, max_examples=4)
  np.testing.assert_array_equal(firsts['image'], arrays[2]['image'][:4])


def test_eval_preprocessing_is_identity_at_native_size(data_dir):
  cfg = _cfg(data_dir, load_size=32, domains=('sketch',))
  a = pipeline.load_eval_arrays(cfg, 0, max_examples=3)
  builder = shapes.prepare(32, data_dir)
  raw = {(int(r['scene_id']), int(r['mode'])): r for r in tfds.as_numpy(
      builder.as_dataset(split='test_sketch'))}
  for image, mask, s, m in zip(a['image'], a['mask'], a['scene_id'],
                               a['mode']):
    np.testing.assert_allclose((image + 1) * 127.5,
                               raw[s, m]['image'], atol=1e-3)
    np.testing.assert_array_equal(mask, raw[s, m]['mask'][..., 0])


def test_eval_masks_resized_and_cropped_like_images(data_dir):
  a = pipeline.load_eval_arrays(_cfg(data_dir, load_size=64), 0,
                                max_examples=3)
  assert a['mask'].shape == (3, 32, 32)
  assert set(np.unique(a['mask'])) <= {0, 1}
  # A 2× upscale then centre crop: the mask shows the central half, where
  # the day shapes are filled with a colour far from the background.
  x = (a['image'] + 1) / 2
  saturation = x.max(-1) - x.min(-1)
  inside = saturation[a['mask'] == 1].mean()
  outside = saturation[a['mask'] == 0].mean()
  assert inside > outside + 0.2


@pytest.mark.parametrize('domains, match', [
    (('day', 'dusk'), "'dusk'.*0='day', 1='night', 2='sketch'"),
    ((0, 5), 'index 5 out of range'),
    (('day', 0), 'selected twice'),
])
def test_bad_domains(data_dir, domains, match):
  with pytest.raises(pipeline.DataError, match=match):
    pipeline.get_data_spec(_cfg(data_dir, domains=domains))


def test_bad_config_errors(data_dir):
  with pytest.raises(pipeline.DataError, match="Unknown dataset 'no_such_ds"):
    pipeline.get_data_spec(_cfg(data_dir, name='no_such_ds'))
  with pytest.raises(pipeline.DataError, match='source_size'):
    pipeline.get_data_spec(_cfg(data_dir, source_size=48))
  with pytest.raises(pipeline.DataError, match='image_size'):
    pipeline.get_data_spec(_cfg(data_dir, image_size=40))
  with pytest.raises(pipeline.DataError, match='split'):
    pipeline.load_eval_arrays(_cfg(data_dir), 0, split='val')
  with pytest.raises(pipeline.DataError, match='out of range'):
    pipeline.load_eval_arrays(_cfg(data_dir, domains=('day',)), 1)
  assert issubclass(pipeline.DataError, ValueError)
