"""Multi-process pieces that one process can check: when the distributed
runtime starts, how the global batch splits (and its errors), the shard
layout inside the step, and a process's several shard iterators.
(The 2-process run itself: test_multihost.py.)"""

import jax
import numpy as np
import pytest

from i2ijax import train
from i2ijax.data import pipeline
from i2ijax.training import distributed
from i2ijax.training import parallel
import config_files


def _cyclegan_smoke():
  return config_files.get_config('cyclegan', 'smoke')


@pytest.mark.parametrize('kwargs, environ, expected', [
    ({}, {}, None),
    ({}, {'TPU_WORKER_HOSTNAMES': 'only-host'}, None),   # one TPU host
    ({'coordinator_address': '10.0.0.1:1234', 'num_processes': 2,
      'process_id': 1}, {}, ('10.0.0.1:1234', 2, 1)),
    ({'auto': True}, {}, (None, None, None)),
    ({}, {'JAX_COORDINATOR_ADDRESS': '10.0.0.1:1234'}, (None, None, None)),
    ({}, {'TPU_WORKER_HOSTNAMES': 'host-0,host-1'}, (None, None, None)),
])
def test_maybe_initialize_starts_jax_distributed_only_when_asked(
    monkeypatch, kwargs, environ, expected):
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize',
                      lambda **kw: calls.append(kw))
  started = distributed.maybe_initialize(environ=environ, **kwargs)
  assert started == (expected is not None)
  if expected is None:
    assert not calls
  else:
    assert calls == [dict(zip(
        ('coordinator_address', 'num_processes', 'process_id'), expected))]


def test_split_batch_size_over_shards_and_processes():
  one = distributed.split_batch_size(8)
  assert (one.shards, one.shard_size, one.process_shards,
          one.process_size) == (1, 8, (0,), 8)
  # 2 processes, one shard each (the default), and 4 shards of 2 rows.
  second = distributed.split_batch_size(8, parts=2, process_index=1,
                                        process_count=2, device_count=8)
  assert (second.shards, second.shard_size, second.process_shards,
          second.process_size) == (2, 4, (1,), 4)
  four = distributed.split_batch_size(8, data_shards=4, process_index=1,
                                      process_count=2, device_count=4)
  assert (four.shards, four.shard_size, four.process_shards,
          four.process_size) == (4, 2, (2, 3), 4)
  # One process uses as many devices as divide the batch (no error).
  assert distributed.split_batch_size(6, device_count=8).size == 6


@pytest.mark.parametrize('batch, kwargs, message', [
    (6, dict(process_count=4), r'train.batch_size=6: the global batch does '
     r'not split evenly over the 4 processes \(6/4 rows each\); use a '
     'multiple of 4'),
    (12, dict(process_count=2, device_count=8), r'train.batch_size=12: the '
     r'global batch does not split evenly over the 8 devices of the 2 '
     r'processes \(12/8 rows per device\); use a multiple of 8'),
    (6, dict(data_shards=2, parts=2), r'train.batch_size=6: each of the 2 '
     r'data shards gets 3 rows, which do not split into the 2 equal parts'),
    (8, dict(data_shards=3), r'train.batch_size=8: the global batch does '
     r'not split evenly into 3 data shards'),
    (8, dict(data_shards=3, process_count=2), r'train.data_shards=3: must be '
     'a multiple of the 2 processes'),
    (8, dict(data_shards=-1), r'train.data_shards=-1: must be >= 0'),
])
def test_split_batch_size_errors_name_the_numbers(batch, kwargs, message):
  with pytest.raises(ValueError, match='Bad config value ' + message):
    distributed.split_batch_size(batch, **kwargs)


def test_a_batch_that_does_not_split_over_the_processes_devices_stops_the_run(
    tmp_path, monkeypatch):
  """As `train_and_evaluate` sees 2 processes of 4 devices each (8 in all)
  with a global batch of 12: stopped before anything is compiled."""
  config = _cyclegan_smoke()
  config.train.batch_size = 12
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  with pytest.raises(ValueError, match=r'Bad config value train.batch_size='
                     r'12: the global batch does not split evenly over the 8 '
                     r'devices of the 2 processes'):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_pmap_with_several_processes_is_refused(tmp_path, monkeypatch):
  config = _cyclegan_smoke()
  config.train.update(dict(batch_size=8, parallel='pmap'))
  config.model.pool_size = 0   # pools are refused under pmap anyway
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  with pytest.raises(ValueError, match="Bad config value train.parallel="
                     "'pmap': it runs on one process, not 2; use 'jit'"):
    train.train_and_evaluate(config, str(tmp_path))


def test_interleave_shards_puts_each_domain_block_together_on_the_devices():
  """Two shards of balanced CycleGAN batches ([day, night] each) become one
  batch of [day of both, night of both], on the host and inside `jit_step`
  on the 8-device mesh."""
  config = _cyclegan_smoke()
  shards = [pipeline.create_train_iterator(config.data, 4, seed=0,
                                           process_index=i, process_count=2,
                                           balanced=True) for i in range(2)]
  rows = pipeline.ConcatIterator(shards)
  batch = next(rows)
  np.testing.assert_array_equal(batch['domain'], [0, 0, 1, 1] * 2)
  ordered = jax.tree.map(lambda x: parallel.interleave_shards(x, 2, 2), batch)
  np.testing.assert_array_equal(ordered['domain'], [0, 0, 0, 0, 1, 1, 1, 1])
  # Rows of shard 0, then shard 1, inside each domain block.
  np.testing.assert_array_equal(ordered['image'],
                                batch['image'][[0, 1, 4, 5, 2, 3, 6, 7]])

  mesh = parallel.make_mesh(8)
  assert mesh.size == 8
  seen = parallel.jit_step(lambda state, b, rng: (state, b), mesh,
                           donate=False, num_shards=2, num_parts=2)
  _, inside = seen(np.float32(0), parallel.global_batch(batch, mesh),
                   jax.random.key(0))
  np.testing.assert_array_equal(np.asarray(inside['image']),
                                ordered['image'])
  np.testing.assert_array_equal(np.asarray(inside['domain']),
                                ordered['domain'])
  # One shard, or a step that needs no blocks: the batch as it is.
  assert parallel.interleave_shards(batch['domain'], 1, 2) is batch['domain']
  assert parallel.interleave_shards(batch['domain'], 2, 1) is batch['domain']


def test_concat_iterator_saves_and_restores_every_shard(tmp_path):
  config = _cyclegan_smoke()

  def rows():
    return pipeline.ConcatIterator([
        pipeline.create_train_iterator(config.data, 2, seed=3,
                                       process_index=i, process_count=2)
        for i in range(2)])
  first = rows()
  next(first)
  first.save(tmp_path)
  assert sorted(p.name for p in tmp_path.glob('*.json')) == [
      'process_0.json', 'process_1.json']
  expected = [next(first)['image'] for _ in range(2)]
  again = rows()
  again.restore(tmp_path)
  for want in expected:
    np.testing.assert_array_equal(next(again)['image'], want)
