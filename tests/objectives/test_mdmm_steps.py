"""MDMM / GMVAE-MDMM pure steps: what each update touches, jit, devices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.training import parallel
import purity

BATCH = 8


def _model(name, **model_overrides):
  config = (config_lib.gmvae_mdmm_config() if name == 'gmvae_mdmm' else
            config_lib.mdmm_config())
  config_lib.shrink_for_smoke(config)
  config.train.batch_size = BATCH
  config.model.update(model_overrides)
  spec = pipeline.DataSpec(name='shapes', domain_names=('a', 'b', 'c'),
                           image_size=32, num_modes=3, has_masks=True)
  return objectives.build(config, spec)


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32),
          'domain': rng.integers(0, 3, BATCH).astype(np.int32)}


def _changed(before, after):
  return {name for name in before
          if any(not np.array_equal(a, b) for a, b in zip(
              jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))}


@functools.lru_cache(maxsize=None)
def _initial(name):
  model = _model(name)
  return model, model.init(jax.random.key(0))


@pytest.mark.parametrize('name', ['mdmm', 'gmvae_mdmm'])
def test_train_step_updates_every_image_network_not_the_content_d(name):
  model, state = _initial(name)
  new_state, metrics = jax.jit(model.train_step)(state, _batch(),
                                                 jax.random.key(1))
  assert _changed(state.params, new_state.params) == {
      'enc_c', 'enc_a', 'gen', 'dis1', 'dis2'}
  assert int(new_state.step) == 1 and int(new_state.iteration) == 1
  # E_c and G take two Adam steps per main step, E_a and the Ds one.
  counts = {n: int(jax.tree.leaves(new_state.opt_state[n])[0])
            for n in ('enc_c', 'gen', 'enc_a', 'dis1')}
  assert counts == {'enc_c': 2, 'gen': 2, 'enc_a': 1, 'dis1': 1}
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())


def test_content_d_step_updates_only_the_content_discriminator():
  model, state = _initial('mdmm')
  new_state, metrics = jax.jit(model.content_d_step)(state, _batch(),
                                                     jax.random.key(1))
  assert _changed(state.params, new_state.params) == {'dis_content'}
  assert int(new_state.step) == 0 and int(new_state.iteration) == 1
  assert np.isfinite(metrics['d/content'])
  # d_iter = 3: iterations 0 and 1 go to the content D, 2 to the main step.
  assert [model.is_content_d_iteration(i) for i in range(6)] == [
      True, True, False, True, True, False]


def test_steps_are_pure():
  model = _model('gmvae_mdmm')
  state = jax.eval_shape(model.init, jax.random.key(0))   # no compilation
  for step in (model.train_step, model.content_d_step):
    purity.assert_traces_to_the_same_program(step, state, _batch(),
                                             jax.random.key(3))


def _assert_params_close(model, params_a, params_b):
  """Params after one main step agree up to a few Adam steps.

  Adam moves each weight by about lr * sign(grad); where a gradient is ~0,
  float rounding can flip that sign, so a weight may differ by up to
  2 updates x 2 steps x lr. Losses above are compared tightly.
  """
  max_lr = max(group.learning_rate for group in model.config.optim.values())
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=0,
                                 atol=4 * max_lr + 1e-6), params_a, params_b)


def test_one_device_equals_eight_devices():
  assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
  model, state = _initial('gmvae_mdmm')
  batch, rng = _batch(1), jax.random.key(4)
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = parallel.make_mesh(BATCH, devices)
    step = parallel.jit_step(model.train_step, mesh, donate=False)
    results.append(step(parallel.replicate(state, mesh),
                        parallel.shard_batch(batch, mesh),
                        parallel.replicate(rng, mesh)))
  (state1, metrics1), (state8, metrics8) = results
  for key in metrics1:
    np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-4,
                               atol=1e-5, err_msg=key)
  _assert_params_close(model, state1.params, state8.params)


def test_gmvae_inference_functions():
  model, state = _initial('gmvae_mdmm')
  batch = _batch(2)
  target = jnp.full((BATCH,), 2, jnp.int32)
  a = model.translate(state.params, batch['image'], batch['domain'], target,
                      jax.random.key(0))
  b = model.translate(state.params, batch['image'], batch['domain'], target,
                      jax.random.key(1))
  assert a.shape == batch['image'].shape
  assert float(jnp.abs(a - b).max()) > 0, 'styles must depend on the key'
  clusters = model.cluster(state.params, batch['image'], batch['domain'])
  assert clusters.shape == (BATCH,) and int(clusters.max()) < 3
  grid = model.sample_grid(state.params, batch['image'][:2],
                           batch['domain'][:2], jax.random.key(0), 2)
  assert grid.shape == (2, 1 + 3 * 2, 32, 32, 3)
  ref = model.translate_reference(state.params, batch['image'],
                                  batch['image'][::-1], batch['domain'][::-1],
                                  jax.random.key(0))
  assert ref.shape == batch['image'].shape
