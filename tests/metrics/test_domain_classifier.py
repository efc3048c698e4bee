"""The domain classifier of `domain_acc` on sources with known domains.

A tiny image-folder source is written to a temporary directory: shapes
scenes rendered in two very different styles (`day` as domain A, `sketch`
as domain B) at 32 px, as PNG files read back through the real folder
pipeline. One classifier (a few dozen steps) is trained per test session and
cached in a temporary cache directory that the other tests reuse.
"""

import types

import jax
import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from i2ijax import config_lib
from i2ijax import evaluate
from i2ijax.data import pipeline
from i2ijax.data import shapes_render
from i2ijax.metrics import distribution_metrics as dm
from i2ijax.metrics import domain_classifier as dc
from i2ijax.metrics import oracles as oracles_lib
from i2ijax.metrics import shapes_metrics

SIZE = 32
STEPS = 40
# Folder domain -> shapes domain rendered into it (day, sketch).
STYLES = {'A': 0, 'B': 2}


def _write_domain(directory, shapes_domain, count, seed):
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True)
  for i in range(count):
    image, _ = shapes_render.render(
        shapes_render.sample_scene(rng), shapes_domain,
        int(rng.integers(shapes_render.NUM_MODES)), SIZE, seed=seed + i)
    PIL.Image.fromarray(image).save(directory / f'{i:03d}.png')


def _folder_cfg(root):
  data_cfg = config_lib.base_config().data
  data_cfg.update(dict(name='folder', root=str(root), source_size=SIZE,
                       load_size=SIZE, image_size=SIZE))
  return data_cfg


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """trainA/B (48 images each) and testA/B (16 each)."""
  root = tmp_path_factory.mktemp('folder_source')
  for index, (name, style) in enumerate(STYLES.items()):
    _write_domain(root / f'train{name}', style, 48, seed=10 * index)
    _write_domain(root / f'test{name}', style, 16, seed=10 * index + 5)
  return _folder_cfg(root)


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('classifier_cache'))


@pytest.fixture(scope='module')
def classifier(folder, cache_dir):
  return dc.get_domain_classifier(folder, ('A', 'B'), steps=STEPS,
                                  cache_dir=cache_dir)


class _TrainingSpy:
  """Counts `oracles.train_oracles` calls and keeps their training sets."""

  def __init__(self, monkeypatch):
    self.train_sets = []
    train = oracles_lib.train_oracles

    def spy(train_arrays, *args, **kwargs):
      self.train_sets.append([a['image'] for a in train_arrays])
      return train(train_arrays, *args, **kwargs)
    monkeypatch.setattr(oracles_lib, 'train_oracles', spy)


def test_classifier_learns_the_domains_of_a_folder_source(classifier,
                                                         folder):
  assert classifier.heads == ('domain',)
  assert classifier.domain_names == ('A', 'B')
  assert classifier.test_scores['domain_acc_real'] >= 0.95
  # Re-measured on the test folders, not only read from the training run.
  for d in range(2):
    test = pipeline.load_eval_arrays(folder, d, split='test')['image']
    assert len(test) == 16
    assert dc.domain_acc(classifier, test, d) >= 0.9


def test_the_cache_is_reused_and_a_changed_key_retrains(
    classifier, folder, cache_dir, monkeypatch):
  spy = _TrainingSpy(monkeypatch)
  again = dc.get_domain_classifier(folder, ('A', 'B'), steps=STEPS,
                                   cache_dir=cache_dir)
  assert not spy.train_sets
  assert again.test_scores == classifier.test_scores
  assert jax.tree.all(jax.tree.map(np.array_equal, again.params,
                                   classifier.params))
  # Other steps, another domain order: two new trainings.
  dc.get_domain_classifier(folder, ('A', 'B'), steps=2, cache_dir=cache_dir)
  dc.get_domain_classifier(folder, ('B', 'A'), steps=2, cache_dir=cache_dir)
  assert len(spy.train_sets) == 2
  # The folder's absolute path is part of the key too.
  key = lambda root: dc.cache_key(_folder_cfg(root), ('A', 'B'), steps=STEPS,
                                  seed=0, max_examples=1000)
  assert key(folder.root + '/./') == key(folder.root)
  assert key('/elsewhere') != key(folder.root)


def test_a_source_without_test_split_holds_out_training_images(
    tmp_path, monkeypatch):
  """Named folders (cat/, dog/): evaluation reads the training images, so
  the classifier trains on 4 of 5 and is tested on the fifth."""
  for index, (name, style) in enumerate(STYLES.items()):
    _write_domain(tmp_path / 'data' / name.lower(), style, 10, seed=index)
  data_cfg = _folder_cfg(tmp_path / 'data')
  spy = _TrainingSpy(monkeypatch)
  dc.get_domain_classifier(data_cfg, ('a', 'b'), steps=2,
                           cache_dir=str(tmp_path / 'cache'))
  [trained] = spy.train_sets
  for d, images in enumerate(trained):
    every = pipeline.load_eval_arrays(data_cfg, d, split='train')['image']
    np.testing.assert_array_equal(images, np.delete(every, [4, 9], axis=0))


def _translator(folder, kind):
  """'identity' returns its input; 'real' returns real test images of the
  target domain (a perfect translator for the classifier)."""
  real = [pipeline.load_eval_arrays(folder, d, split='test')['image']
          for d in range(2)]

  def translate(images, source, target, key):
    del source, key
    if kind == 'identity':
      return images
    return real[int(target[0])][:len(images)]
  return translate


def _domain_acc(folder, cache_dir, kind):
  return dm.distribution_metrics(
      _translator(folder, kind), folder, ('A', 'B'), ['domain_acc'],
      num_examples=16, batch_size=8, rng=jax.random.key(0),
      classifier_steps=STEPS, cache_dir=cache_dir)


def test_domain_acc_of_identity_is_low_and_of_real_targets_high(
    classifier, folder, cache_dir):
  identity = _domain_acc(folder, cache_dir, 'identity')
  perfect = _domain_acc(folder, cache_dir, 'real')
  assert set(identity) == {'domain_acc', 'domain_acc/to_A', 'domain_acc/to_B',
                           'domain_classifier/real_test_acc'}
  assert identity['domain_acc'] <= 0.1, identity
  assert perfect['domain_acc'] >= 0.9, perfect
  for result in (identity, perfect):
    assert result['domain_acc'] == pytest.approx(
        (result['domain_acc/to_A'] + result['domain_acc/to_B']) / 2)
    assert result['domain_classifier/real_test_acc'] == (
        classifier.test_scores['domain_acc_real'])


def test_evaluate_computes_domain_acc_by_name(classifier, folder, cache_dir,
                                              tmp_path, monkeypatch):
  """`--metrics=domain_acc` through `evaluate.compute_metrics` (a stand-in
  identity objective) and the markdown table next to metrics.json."""
  monkeypatch.setenv('I2IJAX_CACHE', cache_dir)
  config = config_lib.base_config()
  config.data = folder
  config.eval.update(dict(metrics='domain_acc', num_examples=16,
                          batch_size=8, classifier_steps=STEPS))
  objective = types.SimpleNamespace(
      inference_params=lambda state: {},
      translate=lambda params, x, s, t, key: x)
  metrics = evaluate.compute_metrics(config, objective, state=None)
  assert metrics['domain_acc'] <= 0.1, metrics
  assert metrics['domain_classifier/real_test_acc'] == (
      classifier.test_scores['domain_acc_real'])
  evaluate.write_metrics(str(tmp_path), 7, metrics)
  table = (tmp_path / 'eval' / 'metrics.md').read_text()
  assert '| metric (step 7) | value |' in table
  assert f"| domain_acc/to_B | {metrics['domain_acc/to_B']:.4f} |" in table


def test_a_mocked_tfds_source_and_shapes_work_too(tmp_path, rendered_shapes):
  """cycle_gan/* (TFDS mock: random images, so only the plumbing) and
  shapes (rendered arrays: learnt)."""
  with tfds.testing.mock_data(num_examples=10):
    data_cfg = config_lib.base_config().data
    data_cfg.update(dict(name='cycle_gan/apple2orange',
                         data_dir=str(tmp_path), load_size=20,
                         image_size=16))
    mocked = dc.get_domain_classifier(data_cfg, ('A', 'B'), steps=2,
                                      cache_dir=str(tmp_path / 'cache'))
  assert 0 <= mocked.test_scores['domain_acc_real'] <= 1
  [path] = (tmp_path / 'cache').iterdir()
  assert path.name.startswith('domain_classifier_cycle_gan_apple2orange_16px')

  judge = dc.get_domain_classifier(
      rendered_shapes.data_cfg, ('day', 'night', 'sketch'), steps=STEPS,
      max_examples=60, cache_dir=str(tmp_path / 'cache'),
      arrays_fn=rendered_shapes)
  assert judge.test_scores['domain_acc_real'] >= 0.95


def test_bad_input_is_a_clear_error(folder, tmp_path):
  with pytest.raises(oracles_lib.OracleError, match='at least 2 domains'):
    dc.get_domain_classifier(folder, ('A',), steps=2,
                             cache_dir=str(tmp_path))
  with pytest.raises(shapes_metrics.MetricsInputError, match='one of them'):
    dm.parse_metrics('oracle,domain_acc')
  with pytest.raises(shapes_metrics.MetricsInputError, match='domain_ac'):
    dm.parse_metrics('fid,domain_ac')
  # Named folders with fewer than 5 images leave nothing to test on.
  for name in STYLES:
    _write_domain(tmp_path / 'few' / name, 0, 3, seed=0)
  with pytest.raises(oracles_lib.OracleError, match="Domain 'A' has 3 "
                     'training and 0 test images'):
    dc.get_domain_classifier(_folder_cfg(tmp_path / 'few'), ('A', 'B'),
                             steps=2, cache_dir=str(tmp_path))
