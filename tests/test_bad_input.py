"""Each row of docs/bad_input.md: the input and the clear error it gets."""

import errno
import os
import pathlib
import re
import warnings

from absl import flags
from etils import epath
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
import PIL.Image
import pytest

from i2ijax import config_lib
from i2ijax.data import pipeline
from i2ijax.training import checkpoint
from i2ijax.training import optim
from i2ijax.training import state as state_lib


def _smoke():
  return config_lib.shrink_for_smoke(config_lib.mdmm_config())


def test_unknown_config_field_on_the_command_line():
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values,
                                  lock_config=True)
  with pytest.raises(flags.UnrecognizedFlagError,
                     match='config.train.nope'):
    values(['main', '--config=configs/mdmm.py:smoke',
            '--config.train.nope=1'])


@pytest.mark.parametrize('field, value, message', [
    ('optim.g.learning_rate', -1e-4, 'optim.g.learning_rate=-0.0001: must '
     'be positive'),
    ('data.load_size', 16, 'data.load_size=16: must be >= '
     'data.image_size=32'),
    ('train.batch_size', 5, 'train.batch_size=5: MDMM splits'),
    ('train.on_nonfinite', 'ignore', "train.on_nonfinite='ignore'"),
])
def test_bad_values(field, value, message):
  config = _smoke()
  section, key = field.rsplit('.', 1)
  node = config
  for part in section.split('.'):
    node = node[part]
  node[key] = value
  with pytest.raises(ValueError, match=message):
    config_lib.validate(config)


def test_unknown_dataset_and_tfds_not_available_offline(tmp_path):
  data = _smoke().data
  data.update(name='no_such_dataset', data_dir=str(tmp_path))
  with pytest.raises(pipeline.DataError, match="Unknown dataset "
                     "'no_such_dataset'"):
    pipeline.get_data_spec(data)
  data.name = 'cycle_gan/apple2orange'
  with pytest.raises(pipeline.DataError, match='not prepared in .* will not '
                     'be downloaded'):
    pipeline.get_data_spec(data)


def _folder_config(root):
  data = _smoke().data
  data.update(name='folder', root=str(root), load_size=16, image_size=16)
  return data


def _png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  PIL.Image.fromarray(array).save(path)


def test_missing_and_empty_domain_folders(tmp_path):
  with pytest.raises(pipeline.DataError, match='does not exist'):
    pipeline.get_data_spec(_folder_config(tmp_path / 'absent'))
  (tmp_path / 'trainA').mkdir()
  _png(str(tmp_path / 'trainB' / '0.png'), np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(pipeline.DataError, match='trainA.*no readable image'):
    pipeline.create_train_iterator(_folder_config(tmp_path), 2, seed=0)


def test_corrupt_truncated_grayscale_rgba_and_16_bit_images(tmp_path):
  rng = np.random.default_rng(0)
  a, b = tmp_path / 'trainA', tmp_path / 'trainB'
  _png(str(a / 'gray.png'), np.full((20, 20), 200, np.uint8))
  _png(str(a / 'rgba.png'), np.full((20, 20, 4), 200, np.uint8))
  # 16-bit grayscale: 51400 / 65535 is 200 / 255 in 8 bits.
  _png(str(a / 'gray16.png'), np.full((20, 20), 51400, np.uint16))
  _png(str(b / 'rgb.png'), rng.integers(0, 255, (20, 20, 3), np.uint8))
  good = (b / 'rgb.png').read_bytes()
  (b / 'truncated.png').write_bytes(good[:len(good) // 2])
  (b / 'corrupt.png').write_bytes(b'not an image')
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    batches = pipeline.create_train_iterator(_folder_config(tmp_path), 8,
                                             seed=0, balanced=True)
    batch = next(batches)
  skipped = sorted(str(w.message) for w in caught
                   if 'Skipping unreadable' in str(w.message))
  assert len(skipped) == 2
  assert 'corrupt.png' in skipped[0] and 'truncated.png' in skipped[1]
  domain_a = batch['image'][:4]
  assert domain_a.shape == (4, 16, 16, 3)
  np.testing.assert_allclose(domain_a, 200 / 127.5 - 1, atol=0.02)


def _state(shape, name='gen'):
  txs = {name: optim.make_optimizer(config_lib.optim_config())}
  return state_lib.create({name: {'w': jnp.ones(shape)}}, {name: {}}, txs)


def test_checkpoint_of_another_model_or_shape_is_refused_untouched(tmp_path):
  saver = checkpoint.Checkpointer(str(tmp_path))
  saver.save(1, _state((2, 3)), _smoke(), {'iteration': 1})
  saver.close()
  folder = tmp_path / 'checkpoints' / '1'
  before = {p: p.read_bytes() for p in folder.rglob('*') if p.is_file()}
  for target in (_state((4, 3)), _state((2, 3), name='enc')):
    loader = checkpoint.Checkpointer(str(tmp_path))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"step 1 in .*saved by model 'mdmm' at 32px.*"
                       r'left untouched'):
      loader.restore(target)
    loader.close()
  after = {p: p.read_bytes() for p in folder.rglob('*') if p.is_file()}
  assert after == before


class _Position:
  """Stands in for `pipeline.TrainIterator` (`disk_full`: its write fails)."""

  def __init__(self, disk_full=False):
    self.disk_full = disk_full

  def save(self, directory):
    if self.disk_full:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
    pathlib.Path(directory, 'process_0.json').write_text('1')

  def restore(self, directory):
    assert pathlib.Path(directory, 'process_0.json').read_text() == '1'


# orbax's background threads report the failed save once more as they stop.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('failing', ['state_and_config', 'data_position'])
def test_disk_full_while_saving_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, failing):
  state, config = _state((2, 3)), _smoke()
  saver = checkpoint.Checkpointer(str(tmp_path))
  saver.save(1, state, config, {'iteration': 1}, data_iterator=_Position())
  saver.close()
  folder = tmp_path / 'checkpoints' / '1'
  before = {p: p.read_bytes() for p in folder.rglob('*') if p.is_file()}

  if failing == 'state_and_config':
    # orbax's own file writes (metadata, JSON), made in the background.
    path_class = type(epath.Path(tmp_path))
    write_text = path_class.write_text

    def full(path, *args, **kwargs):
      if str(path).startswith(str(tmp_path)):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
      return write_text(path, *args, **kwargs)
    monkeypatch.setattr(path_class, 'write_text', full)
  saver = checkpoint.Checkpointer(str(tmp_path))
  with pytest.raises(checkpoint.DiskFullError,
                     match=r'Disk full: no space left to write the checkpoint '
                     rf'of step 2 in {re.escape(str(tmp_path))}\. The '
                     r'previous checkpoint \(step 1\) is intact'):
    try:
      saver.save(2, state, config, {'iteration': 2}, data_iterator=_Position(
          disk_full=failing == 'data_position'))
    finally:
      saver.close()
  monkeypatch.undo()
  # The unfinished step 2 is only a temporary folder, which is ignored.
  assert list((tmp_path / 'checkpoints').glob('2.orbax-checkpoint-tmp*'))
  after = {p: p.read_bytes() for p in folder.rglob('*') if p.is_file()}
  assert after == before
  loader = checkpoint.Checkpointer(str(tmp_path))
  assert loader.latest_step() == 1
  restored, _, position = loader.restore(state)
  loader.restore_data_iterator(1, _Position())
  loader.close()
  assert position == {'iteration': 1}
  jax.tree.map(np.testing.assert_array_equal, restored, state)
