"""CycleGAN: loss closed forms, image-pool semantics, the pure step."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.objectives import cyclegan
from i2ijax.training import parallel
import config_files
import purity

BATCH, SIZE = 8, 32


def _spec(num_domains=2):
  return pipeline.DataSpec(name='shapes',
                           domain_names=('a', 'b', 'c')[:num_domains],
                           image_size=SIZE, num_modes=3, has_masks=True)


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(
      np.float32), 'domain': np.repeat(np.arange(2, dtype=np.int32),
                                       BATCH // 2)}


@functools.lru_cache(maxsize=None)
def _initial():
  config = config_files.get_config('cyclegan', 'smoke')
  model = objectives.build(config, _spec())
  return model, model.init(jax.random.key(0)), jax.jit(model.train_step)


def _changed(before, after):
  return {name for name in before
          if any(not np.array_equal(a, b) for a, b in zip(
              jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))}


# ------------------------------------------------------------------ losses
def test_lsgan_loss_closed_form():
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 1)).astype(np.float32)
  for target in (0.0, 1.0):
    np.testing.assert_allclose(jax.jit(cyclegan.lsgan_loss,
                                       static_argnums=1)(x, target),
                               np.mean((x - target)**2), rtol=1e-6)


def test_step_losses_match_their_closed_forms():
  """Every logged term recomputed in numpy from the networks' outputs."""
  model, state, step = _initial()
  batch = _batch()
  _, metrics = step(state, batch, jax.random.key(1))
  p = state.params
  a, b = batch['image'][:BATCH // 2], batch['image'][BATCH // 2:]
  gen = lambda name, x: np.asarray(model.generate(p, name, x))
  dis = lambda name, x: np.asarray(model.discriminate(p, name, x))
  fake_b, fake_a = gen('gen_ab', a), gen('gen_ba', b)
  expected = {
      'g/adv_a': np.mean((dis('dis_a', fake_a) - 1)**2),
      'g/adv_b': np.mean((dis('dis_b', fake_b) - 1)**2),
      'g/cycle_a': np.mean(np.abs(gen('gen_ba', fake_b) - a)),
      'g/cycle_b': np.mean(np.abs(gen('gen_ab', fake_a) - b)),
      'g/idt_a': np.mean(np.abs(gen('gen_ba', a) - a)),
      'g/idt_b': np.mean(np.abs(gen('gen_ab', b) - b)),
      # The pools are still filling: D sees this step's own fakes.
      'd/dis_a': 0.5 * (np.mean((dis('dis_a', a) - 1)**2) +
                        np.mean(dis('dis_a', fake_a)**2)),
      'd/dis_b': 0.5 * (np.mean((dis('dis_b', b) - 1)**2) +
                        np.mean(dis('dis_b', fake_b)**2)),
  }
  w = model.loss_cfg
  expected['g/total'] = (
      expected['g/adv_a'] + expected['g/adv_b'] +
      w.cycle_a * expected['g/cycle_a'] + w.cycle_b * expected['g/cycle_b'] +
      w.identity * (w.cycle_a * expected['g/idt_a'] +
                    w.cycle_b * expected['g/idt_b']))
  assert (w.gan, w.cycle_a, w.cycle_b, w.identity) == (1, 10, 10, 0.5)
  for key, value in expected.items():
    np.testing.assert_allclose(metrics[key], value, rtol=1e-4, atol=1e-6,
                               err_msg=key)


def test_identity_terms_are_optional():
  config = config_files.get_config('cyclegan', 'smoke')
  config.loss.identity = 0.0
  model = objectives.build(config, _spec())
  state = model.init(jax.random.key(0))
  batch = _batch()
  g_params = {n: state.params[n] for n in cyclegan.G_NETS}
  loss, (_, terms) = jax.eval_shape(
      model.g_loss, g_params, state.params, batch['image'][:4],
      batch['image'][4:])
  assert loss.shape == () and 'g/idt_a' not in terms


# -------------------------------------------------------------------- pool
def _images(n, start=0):
  """n distinct constant images with values start, start + 1, ..."""
  return jnp.broadcast_to(jnp.arange(start, start + n, dtype=jnp.float32)[
      :, None, None, None], (n, 2, 2, 3))


def _ids(images):
  return [int(v) for v in np.asarray(images)[:, 0, 0, 0]]


def test_pool_fills_then_swaps_with_probability_half():
  query = jax.jit(cyclegan.query_pool)
  pool = cyclegan.init_pool(3, 2)
  pool, out = query(pool, _images(2), jax.random.key(0))
  assert _ids(out) == [0, 1] and int(pool['count']) == 2
  pool, out = query(pool, _images(2, start=2), jax.random.key(1))
  # Image 2 fills the last slot and comes back; the pool is then full.
  assert _ids(out)[0] == 2 and int(pool['count']) == 3
  swapped = 0
  for i in range(200):
    old = _ids(pool['images'])
    incoming = _images(4, start=100 + 4 * i)
    pool, out = query(pool, incoming, jax.random.key(10 + i))
    # Nothing is lost or invented: pool + returned = old pool + incoming.
    assert sorted(_ids(pool['images']) + _ids(out)) == sorted(
        old + _ids(incoming))
    # A swap returns a stored image instead of the incoming one.
    swapped += sum(o != i for o, i in zip(_ids(out), _ids(incoming)))
  assert int(pool['count']) == 3
  assert 0.4 < swapped / 800 < 0.6, swapped


def test_pool_is_deterministic_under_the_rng_and_can_be_off():
  pool = cyclegan.init_pool(2, 2)
  pool, _ = cyclegan.query_pool(pool, _images(2), jax.random.key(0))
  outs = [_ids(cyclegan.query_pool(pool, _images(8, 10), jax.random.key(k))[1])
          for k in (1, 1, 2)]
  assert outs[0] == outs[1] and outs[0] != outs[2]
  empty = cyclegan.init_pool(0, 2)
  new, out = cyclegan.query_pool(empty, _images(3), jax.random.key(0))
  assert _ids(out) == [0, 1, 2] and 'images' not in new
  # Pools off leave no zero-size array in the state (orbax cannot save one).
  assert all(np.size(x) for x in jax.tree.leaves(empty))


# -------------------------------------------------------------------- step
def test_step_updates_g_on_old_d_and_d_on_old_g_fakes():
  """G: an Adam step on ∇L_G(θ) (D frozen); D: on the pre-update fakes.

  Checked at the second step, where Adam's update depends on the gradient's
  size (the first is ±lr), and the pools are full, so the Ds see pooled
  images drawn with the step's own keys.
  """
  model, state, step = _initial()
  batch, rng = _batch(), jax.random.key(1)
  state, _ = step(state, _batch(5), rng)
  new_state, metrics = step(state, batch, rng)
  assert _changed(state.params, new_state.params) == {
      'gen_ab', 'gen_ba', 'dis_a', 'dis_b'}
  assert int(new_state.step) == 2 and int(new_state.iteration) == 2
  counts = {n: int(jax.tree.leaves(new_state.opt_state[n])[0])
            for n in model.nets}
  assert counts == dict.fromkeys(model.nets, 2)
  pool_size = model.model_cfg.pool_size
  assert pool_size <= BATCH // 2, 'the first step fills the pools'
  assert {int(new_state.model_state['pool'][d]['count']) for d in 'ab'} == {
      pool_size}
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())

  expected = jax.jit(functools.partial(_reference_update, model))(
      state, batch, rng)
  _assert_params_close(model, new_state.params, expected, atol=1e-5)


def _reference_update(model, state, batch, rng):
  """One Adam step per network on its own loss at the old params."""
  a, b = batch['image'][:BATCH // 2], batch['image'][BATCH // 2:]
  g_params = {n: state.params[n] for n in cyclegan.G_NETS}
  grads = jax.grad(lambda g: model.g_loss(g, state.params, a, b)[0])(
      g_params)
  keys = jax.random.split(jax.random.fold_in(rng, state.iteration))
  pools = state.model_state['pool']
  fakes = {
      'dis_a': cyclegan.query_pool(
          pools['a'], model.generate(state.params, 'gen_ba', b), keys[0])[1],
      'dis_b': cyclegan.query_pool(
          pools['b'], model.generate(state.params, 'gen_ab', a), keys[1])[1]}
  reals = {'dis_a': a, 'dis_b': b}
  for name in cyclegan.D_NETS:
    grads[name] = jax.grad(lambda p, name=name: model.d_loss(
        {name: p}, name, reals[name], fakes[name]))(state.params[name])
  expected = {}
  for name in model.nets:
    updates, _ = model.txs[name].update(grads[name], state.opt_state[name],
                                        state.params[name])
    expected[name] = jax.tree.map(lambda p, u: p + u, state.params[name],
                                  updates)
  return expected


def _cancelled_by_norm(path):
  """Biases of convs right before an instance norm: their gradient is 0.

  Adam turns that exact-zero-in-theory gradient into ±lr steps whose sign is
  float noise, so those leaves only agree up to a few learning rates.
  """
  return path[-1].key == 'bias' and path[-2].key not in ('conv0', 'conv_out')


def _assert_params_close(model, params_a, params_b, atol=None, steps=1):
  """Params agree; a weight with a ~0 gradient may move by ±lr per step."""
  max_lr = max(group.learning_rate for group in model.config.optim.values())
  atol = 2 * max_lr + 1e-6 if atol is None else atol

  def check(path, a, b):
    tol = 2 * steps * max_lr + 1e-6 if _cancelled_by_norm(path) else atol
    np.testing.assert_allclose(a, b, rtol=0, atol=tol,
                               err_msg=jax.tree_util.keystr(path))
  jax.tree_util.tree_map_with_path(check, params_a, params_b)


def test_train_step_is_pure():
  """Also covers the history pool: its draws come from the step's rng."""
  config = config_files.get_config('cyclegan', 'smoke')
  model = objectives.build(config, _spec())
  state = jax.eval_shape(model.init, jax.random.key(0))   # no compilation
  purity.assert_traces_to_the_same_program(model.train_step, state, _batch(2),
                                           jax.random.key(3))


def test_one_device_equals_eight_devices():
  assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
  model, state, step = _initial()
  batch, rng = _batch(1), jax.random.key(4)
  # Two steps, so that the second one draws from a non-empty pool.
  state1, metrics1 = step(*step(state, batch, rng)[:1], batch, rng)
  mesh = parallel.make_mesh(BATCH, jax.devices())
  step8 = parallel.jit_step(model.train_step, mesh, donate=False)
  state8 = parallel.replicate(state, mesh)
  batch8 = parallel.shard_batch(batch, mesh)
  rng8 = parallel.replicate(rng, mesh)
  state8, metrics8 = step8(*step8(state8, batch8, rng8)[:1], batch8, rng8)
  for key in metrics1:
    np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-4,
                               atol=1e-5, err_msg=key)
  _assert_params_close(model, state1.params, state8.params, steps=2)


# --------------------------------------------------------------- inference
def test_translate_is_deterministic_and_picks_the_generator():
  model, state, _ = _initial()
  x = jnp.asarray(_batch()['image'][:4])
  target = jnp.array([1, 0, 1, 0])
  translate = jax.jit(model.translate)
  out = translate(state.params, x, 1 - target, target, jax.random.key(0))
  again = translate(state.params, x, 1 - target, target, jax.random.key(9))
  np.testing.assert_array_equal(out, again)
  to_b = model.generate(state.params, 'gen_ab', x)
  to_a = model.generate(state.params, 'gen_ba', x)
  np.testing.assert_allclose(out[0], to_b[0], atol=1e-6)
  np.testing.assert_allclose(out[1], to_a[1], atol=1e-6)
  ref = model.translate_reference(state.params, x, x[::-1], target,
                                  jax.random.key(0))
  np.testing.assert_allclose(ref, out, atol=1e-6)
  grid = model.sample_grid(state.params, x[:2], jnp.array([0, 1]),
                           jax.random.key(0), 3)
  assert grid.shape == (2, 1 + 2 * 3, SIZE, SIZE, 3)
  np.testing.assert_allclose(grid[:, 1], grid[:, 3], atol=0)


def test_needs_exactly_two_domains():
  with pytest.raises(ValueError, match='exactly 2 domains'):
    objectives.build(config_files.get_config('cyclegan', 'smoke'), _spec(3))
