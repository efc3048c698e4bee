"""A non-finite loss: 'stop' keeps the last good checkpoint, 'skip' drops
the update. The real loop (`train.train_and_evaluate`) on CycleGAN's smoke
config, with NaN images injected into chosen batches of the real stream."""

import jax
import numpy as np
import pytest

from i2ijax import train
from i2ijax.training import checkpoint
import config_files


def _config(name='cyclegan', **train_overrides):
  config = config_files.get_config(name, 'smoke')
  config.train.update(dict(sample_every_steps=1000, log_every_steps=1,
                           checkpoint_every_steps=2))
  config.train.update(train_overrides)
  return config


_NEXT_BATCH = train.pipeline.TrainIterator.__next__


def _poison(monkeypatch, nan_batches):
  """Makes the loop's batches number `nan_batches` (0-based) all NaN."""
  served = []

  def poisoned_next(iterator):
    batch = _NEXT_BATCH(iterator)
    i = len(served)
    served.append(i)
    if i in nan_batches:
      batch = dict(batch, image=np.full_like(batch['image'], np.nan))
    return batch
  monkeypatch.setattr(train.pipeline.TrainIterator, '__next__', poisoned_next)
  return served


def _checkpoint_steps(workdir):
  return sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir()
                if p.name.isdigit())


def test_stop_names_the_term_and_step_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch):
  _poison(monkeypatch, {3})          # the update to step 4
  with pytest.raises(train.NonFiniteLossError,
                     match=r'at step 4: .*g/total = nan.*last good '
                     r'checkpoint \(step 2\)'):
    train.train_and_evaluate(_config(num_steps=6), str(tmp_path))
  assert _checkpoint_steps(tmp_path) == [2]
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  _, config, position = ckpt.restore(None)
  ckpt.close()
  assert position == {'iteration': 2, 'step': 2}
  assert config['model']['name'] == 'cyclegan'


def test_skip_drops_the_update_and_stops_after_n_in_a_row(
    tmp_path, monkeypatch, caplog):
  served = _poison(monkeypatch, {1, 2, 5, 6})
  # Batches 1 and 2 are skipped, then steps 2, 3 use batches 3, 4;
  # batches 5 and 6 are the 3rd and 4th skip; 7 and 8 make steps 4, 5.
  state = train.train_and_evaluate(
      _config(num_steps=5, on_nonfinite='skip', max_consecutive_skips=3),
      str(tmp_path / 'a'))
  assert int(state.step) == 5 and int(state.iteration) == 5
  assert served[-1] == 8
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))
  assert 'Update skipped (2 in a row, 4 in total)' in caplog.text

  _poison(monkeypatch, {1, 2, 3})
  with pytest.raises(train.NonFiniteLossError,
                     match=r'at step 2: .*3 updates in a row skipped'):
    train.train_and_evaluate(
        _config(num_steps=5, on_nonfinite='skip', max_consecutive_skips=3),
        str(tmp_path / 'b'))


def test_stop_mode_fetches_metrics_only_at_log_and_checkpoint_steps(
    tmp_path, monkeypatch):
  """'stop' keeps the metrics on the devices between sync steps (one
  transfer per log / checkpoint step, none per step), and still names the
  first bad step and keeps the last good checkpoint when the NaN is seen
  only at the next checkpoint step."""
  fetches = []

  def counting_fetch(tree):
    fetches.append(len(tree))
    return jax.device_get(tree)
  monkeypatch.setattr(train, '_fetch', counting_fetch)
  train.train_and_evaluate(
      _config(num_steps=6, log_every_steps=3, checkpoint_every_steps=100),
      str(tmp_path / 'a'))
  assert fetches == [3, 3]     # steps 1-3 at step 3, steps 4-6 at step 6

  fetches.clear()
  _poison(monkeypatch, {2})          # the update to step 3
  with pytest.raises(train.NonFiniteLossError,
                     match=r'at step 3: .*g/total = nan.*last good '
                     r'checkpoint \(step 2\)'):
    train.train_and_evaluate(
        _config(num_steps=8, log_every_steps=100, checkpoint_every_steps=2),
        str(tmp_path / 'b'))
  assert fetches == [2, 2]     # at the checkpoint steps 2 and 4
  assert _checkpoint_steps(tmp_path / 'b') == [2]
