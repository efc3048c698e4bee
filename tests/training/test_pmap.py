"""`config.train.parallel='pmap'`: the same pure step under `jax.pmap`.

The model is CycleGAN without its image pools: the cheapest objective whose
step is deterministic given the batch (no noise draws, which pmap folds
with the device index), so pmap over 8 devices must equal jit on one up to
float rounding. Its losses are means over examples and patches (LSGAN,
L1), it updates two optimizer groups from the same state, and it splits
the batch into domain halves, which `parallel.split_batch` must keep.
"""

import functools

import jax
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax import train
from i2ijax.data import pipeline
from i2ijax.training import parallel
import config_files

BATCH, SIZE = 16, 32


def _config():
  config = config_files.get_config('cyclegan', 'smoke')
  config.model.pool_size = 0
  config.train.batch_size = BATCH
  return config


def test_split_batch_keeps_each_half_in_the_local_halves():
  batch = {'x': np.arange(16)}
  split = parallel.split_batch(batch, 4)['x']
  np.testing.assert_array_equal(split, [[0, 1, 8, 9], [2, 3, 10, 11],
                                        [4, 5, 12, 13], [6, 7, 14, 15]])
  odd = parallel.split_batch({'x': np.arange(8)}, 8)['x']
  np.testing.assert_array_equal(odd, np.arange(8)[:, None])
  assert len(parallel.pmap_devices(8, jax.devices())) == 4   # 2 per device
  assert len(parallel.pmap_devices(16, jax.devices())) == 8


@functools.lru_cache(maxsize=None)
def _model_and_state():
  config = _config()
  spec = pipeline.DataSpec(name='shapes', domain_names=('a', 'b'),
                           image_size=SIZE, num_modes=3, has_masks=True)
  model = objectives.build(config, spec)
  return config, model, model.init(jax.random.key(0))


def _batch():
  rng = np.random.default_rng(0)
  return {'image': rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(
      np.float32), 'domain': np.repeat(np.arange(2, dtype=np.int32),
                                       BATCH // 2)}


def test_pmap_on_eight_devices_equals_jit_on_one_and_skips_together():
  assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
  config, model, state = _model_and_state()
  batch, key = _batch(), jax.random.key(1)

  mesh = parallel.make_mesh(BATCH, jax.devices()[:1])
  one = parallel.jit_step(model.train_step, mesh, donate=False)
  state1, metrics1 = one(state, parallel.shard_batch(batch, mesh), key)

  devices = parallel.pmap_devices(BATCH)
  assert len(devices) == 8
  # The step as the loop runs it with on_nonfinite='skip' (one compile for
  # both checks): the guard passes a finite update through unchanged.
  mapped = parallel.pmap_step(train.guard_nonfinite(model.train_step, True),
                              devices, donate=False)
  state8, metrics8, params_finite = mapped(state, batch, key)
  assert all(params_finite.values())

  assert set(metrics8) == set(metrics1)
  for name in metrics1:
    np.testing.assert_allclose(metrics8[name], metrics1[name], rtol=1e-5,
                               atol=1e-6, err_msg=name)
  # Adam's moments after one step are (1 - b1)·g and (1 - b2)·g²: they
  # compare the averaged gradients directly (params move by ~lr·sign(g)).
  # Biases followed by instance norm have ~0 gradients, all rounding: the
  # tolerance is relative to the largest moment of the network.
  for name in state1.opt_state:
    for moment in ('mu', 'nu'):
      pairs = [(np.asarray(a), np.asarray(b)) for (path, a), b in zip(
          jax.tree_util.tree_leaves_with_path(state8.opt_state[name]),
          jax.tree.leaves(state1.opt_state[name]))
               if f'.{moment}' in jax.tree_util.keystr(path)]
      assert pairs, (name, moment)
      scale = max(float(np.abs(b).max()) for _, b in pairs)
      for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f'{name} {moment}')
  lr = max(g.learning_rate for g in config.optim.values())
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0,
                                                       atol=2 * lr + 1e-7),
               state8.params, state1.params)
  assert int(state8.step) == 1

  # Row 3 NaN: only device 3's local losses are (rows 3 and 11 go there);
  # every device must skip the update and return the input state.
  batch['image'][3] = np.nan
  assert [bool(np.isnan(r).any()) for r in parallel.split_batch(
      batch, 8)['image']] == [d == 3 for d in range(8)]
  skipped, metrics, params_finite = mapped(state8, batch, key)
  assert np.isnan(metrics['g/total'])        # the mean over devices
  assert train.nonfinite_terms(metrics, params_finite)
  jax.tree.map(np.testing.assert_array_equal, skipped, state8)


def test_validate_rejects_an_unknown_parallel_mode():
  config = config_lib.shrink_for_smoke(config_lib.mdmm_config())
  config.train.parallel = 'pjit'
  with pytest.raises(ValueError, match=r"train.parallel='pjit'.*'jit' or "
                     r"'pmap'"):
    config_lib.validate(config)
