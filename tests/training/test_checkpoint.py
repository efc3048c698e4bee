"""orbax round trip of a TrainState, config and data position."""

import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax.training import checkpoint
from i2ijax.training import optim
from i2ijax.training import state as state_lib


def _state():
  params = {'gen': {'w': jnp.arange(6.0).reshape(2, 3)},
            'dis': {'b': jnp.ones(4)}}
  txs = {name: optim.make_optimizer(config_lib.optim_config()) for name in
         params}
  state = state_lib.create(params, {'gen': {}, 'dis': {}}, txs, ('gen',))
  grads = jax.tree.map(jnp.ones_like, params)
  schedules = {name: lambda step: 1e-3 for name in params}
  state = state_lib.apply_gradients(state, grads, txs, schedules)
  return state.replace(step=jnp.int32(7), iteration=jnp.int32(19))


def test_round_trip_restores_state_config_and_position(tmp_path):
  state = _state()
  config = config_lib.mdmm_config()
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=2)
  ckpt.save(7, state, config, {'iteration': 19})
  ckpt.close()
  assert (tmp_path / 'checkpoints' / '7').is_dir()

  ckpt = checkpoint.Checkpointer(str(tmp_path))
  assert ckpt.latest_step() == 7
  target = jax.tree.map(jnp.zeros_like, state)
  restored, config_dict, position = ckpt.restore(target)
  ckpt.close()
  jax.tree.map(np.testing.assert_array_equal, restored, state)
  assert type(restored.opt_state['gen']) is type(state.opt_state['gen'])
  assert position == {'iteration': 19}
  assert ml_collections.ConfigDict(config_dict).model.name == 'mdmm'
  restored_config, step = checkpoint.restore_config(str(tmp_path))
  assert step == 7 and restored_config.loss.cls_g == config.loss.cls_g


def test_keeps_the_last_n_and_skips_a_saved_step(tmp_path):
  state, config = _state(), config_lib.mdmm_config()
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=2)
  for step in (1, 2, 3, 3):
    ckpt.save(step, state.replace(step=jnp.int32(step)), config, {})
  ckpt.close()
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir()
                 if p.name.isdigit())
  assert steps == [2, 3]


class _Counter:
  """Stands in for `pipeline.TrainIterator`: a position saved per process."""

  def __init__(self, position=0):
    self.position = position

  def save(self, directory):
    pathlib.Path(directory, 'process_0.json').write_text(
        json.dumps(self.position))

  def restore(self, directory):
    self.position = json.loads(
        pathlib.Path(directory, 'process_0.json').read_text())


def test_data_iterator_position_is_kept_and_pruned_with_its_step(tmp_path):
  state, config = _state(), config_lib.mdmm_config()
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=2)
  ckpt.save(1, state, config, {}, data_iterator=_Counter(5))
  ckpt.save(2, state, config, {})      # as an older version saved it
  ckpt.save(3, state, config, {}, data_iterator=_Counter(7))
  ckpt.close()
  checkpoints = tmp_path / 'checkpoints'
  assert sorted(p.name for p in checkpoints.iterdir()
                if p.name.isdigit()) == ['2', '3']
  assert (checkpoints / '3' / 'data_iterator' / 'process_0.json').exists()

  ckpt = checkpoint.Checkpointer(str(tmp_path))
  counter = _Counter()
  ckpt.restore_data_iterator(3, counter)
  assert counter.position == 7
  with pytest.raises(FileNotFoundError, match='No data position'):
    ckpt.restore_data_iterator(2, counter)
  ckpt.close()


def test_missing_checkpoint_is_a_clear_error(tmp_path):
  try:
    checkpoint.restore_config(str(tmp_path / 'nothing_here'))
  except FileNotFoundError as error:
    assert 'No checkpoint found' in str(error)
  else:
    raise AssertionError('expected FileNotFoundError')
