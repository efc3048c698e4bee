"""MUNIT pure steps: loss terms vs closed forms, updates, jit, devices,
inference functions and the config file."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.objectives import munit as munit_objective
from i2ijax.training import parallel
import config_files
import purity

BATCH = 8
SIZE = 32


def _model(**loss_overrides):
  config = config_files.get_config('munit', 'smoke')
  config.train.batch_size = BATCH
  config.loss.update(loss_overrides)
  spec = pipeline.DataSpec(name='shapes', domain_names=('day', 'night'),
                           image_size=SIZE, num_modes=3, has_masks=True)
  return objectives.build(config, spec)


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(
      np.float32), 'domain': np.repeat(np.arange(2, dtype=np.int32),
                                       BATCH // 2)}


@functools.lru_cache(maxsize=None)
def _initial():
  model = _model()
  return model, model.init(jax.random.key(0))


@functools.lru_cache(maxsize=None)
def _jitted_step():
  model, state = _initial()
  return jax.jit(model.train_step)(state, _batch(), jax.random.key(3))


def _gen(params, method, *args):
  """One generator's method (jit-compiled once per method and shape)."""
  return _apply_gen(params, method, *args)


@functools.partial(jax.jit, static_argnums=1)
def _apply_gen(params, method, *args):
  return _initial()[0].gen.apply({'params': params}, *args, method=method)


@jax.jit
def _dis(params, images):
  return _initial()[0].dis.apply({'params': params}, images)


def _changed(before, after):
  return {name for name in before
          if any(not np.array_equal(a, b) for a, b in zip(
              jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))}


def _assert_params_close(model, params_a, params_b):
  """Adam moves a weight by ~lr·sign(grad); a ~0 gradient may flip sign."""
  max_lr = max(group.learning_rate for group in model.config.optim.values())
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=0,
                                 atol=2 * max_lr + 1e-6), params_a, params_b)


def test_train_step_updates_every_network_once():
  model, state = _initial()
  new_state, metrics = _jitted_step()
  assert _changed(state.params, new_state.params) == {
      'gen_a', 'gen_b', 'dis_a', 'dis_b'}
  counts = {n: int(jax.tree.leaves(new_state.opt_state[n])[0])
            for n in model.nets}
  assert counts == {'gen_a': 1, 'gen_b': 1, 'dis_a': 1, 'dis_b': 1}
  assert int(new_state.step) == 1 and int(new_state.iteration) == 1
  metrics = jax.device_get(metrics)
  assert all(np.isfinite(v) for v in metrics.values())
  assert 'g/recon_x_cyc_a' not in metrics      # x_cyc weight 0: not computed
  np.testing.assert_allclose(metrics['train/lr_g'],
                             model.config.optim.g.learning_rate)


def _lsgan_np(maps, target):
  return sum(np.mean((np.asarray(m) - target)**2) for m in maps)


def _styles(rng):
  """The random styles of g_loss / d_fakes: split(rng) → s_a, s_b."""
  k_a, k_b = jax.random.split(rng)
  return (jax.random.normal(k_a, (BATCH // 2, 8)),
          jax.random.normal(k_b, (BATCH // 2, 8)))


def _mae(a, b):
  return np.mean(np.abs(np.asarray(a) - np.asarray(b)))


def test_loss_terms_match_closed_forms():
  """Every term recomputed from separate network calls with numpy."""
  _, state = _initial()
  model_cyc = _model(recon_x_cyc=10.0)
  params = state.params
  x = _batch(5)['image']
  x_a, x_b = x[:BATCH // 2], x[BATCH // 2:]
  rng = jax.random.key(7)
  g_params = {n: params[n] for n in ('gen_a', 'gen_b')}
  d_params = {n: params[n] for n in ('dis_a', 'dis_b')}
  loss, terms = jax.jit(model_cyc.g_loss)(g_params, d_params, x_a, x_b, rng)

  gen_a, gen_b = params['gen_a'], params['gen_b']
  s_a, s_b = _styles(rng)
  c_a, s_a_enc = _gen(gen_a, 'encode', x_a)
  c_b, s_b_enc = _gen(gen_b, 'encode', x_b)
  x_ba, x_ab = _gen(gen_a, 'decode', c_b, s_a), _gen(gen_b, 'decode', c_a,
                                                     s_b)
  c_b_rec, s_a_rec = _gen(gen_a, 'encode', x_ba)
  c_a_rec, s_b_rec = _gen(gen_b, 'encode', x_ab)
  expected = {
      'g/adv_a': _lsgan_np(_dis(params['dis_a'], x_ba), 1.0),
      'g/adv_b': _lsgan_np(_dis(params['dis_b'], x_ab), 1.0),
      'g/recon_x_a': _mae(_gen(gen_a, 'decode', c_a, s_a_enc), x_a),
      'g/recon_x_b': _mae(_gen(gen_b, 'decode', c_b, s_b_enc), x_b),
      'g/recon_s_a': _mae(s_a_rec, s_a), 'g/recon_s_b': _mae(s_b_rec, s_b),
      'g/recon_c_a': _mae(c_a_rec, c_a), 'g/recon_c_b': _mae(c_b_rec, c_b),
      'g/recon_x_cyc_a': _mae(_gen(gen_a, 'decode', c_a_rec, s_a_enc), x_a),
      'g/recon_x_cyc_b': _mae(_gen(gen_b, 'decode', c_b_rec, s_b_enc), x_b),
  }
  for key, value in expected.items():
    np.testing.assert_allclose(terms[key], value, rtol=1e-4, atol=1e-5,
                               err_msg=key)
  w = model_cyc.loss_cfg
  total = (w.gan * (expected['g/adv_a'] + expected['g/adv_b']) +
           w.recon_x * (expected['g/recon_x_a'] + expected['g/recon_x_b']) +
           w.recon_s * (expected['g/recon_s_a'] + expected['g/recon_s_b']) +
           w.recon_c * (expected['g/recon_c_a'] + expected['g/recon_c_b']) +
           w.recon_x_cyc * (expected['g/recon_x_cyc_a'] +
                              expected['g/recon_x_cyc_b']))
  np.testing.assert_allclose(loss, total, rtol=1e-4)
  np.testing.assert_allclose(terms['g/total'], total, rtol=1e-4)


def test_step_losses_match_closed_forms_with_the_updated_d():
  """The step's D terms use the old D; its G terms the *updated* D."""
  _, state = _initial()
  new_state, metrics = _jitted_step()
  x = _batch()['image']
  x_a, x_b = x[:BATCH // 2], x[BATCH // 2:]
  k_d, k_g = jax.random.split(jax.random.fold_in(jax.random.key(3), 0))
  old, new = state.params, new_state.params

  s_a, s_b = _styles(k_d)
  x_ba = _gen(old['gen_a'], 'decode',
              _gen(old['gen_b'], 'encode_content', x_b), s_a)
  x_ab = _gen(old['gen_b'], 'decode',
              _gen(old['gen_a'], 'encode_content', x_a), s_b)
  d_a = (_lsgan_np(_dis(old['dis_a'], x_a), 1.0) +
         _lsgan_np(_dis(old['dis_a'], x_ba), 0.0))
  d_b = (_lsgan_np(_dis(old['dis_b'], x_b), 1.0) +
         _lsgan_np(_dis(old['dis_b'], x_ab), 0.0))
  np.testing.assert_allclose(metrics['d/dis_a'], d_a, rtol=1e-4)
  np.testing.assert_allclose(metrics['d/dis_b'], d_b, rtol=1e-4)
  np.testing.assert_allclose(metrics['d/total'], d_a + d_b, rtol=1e-4)

  s_a, s_b = _styles(k_g)
  x_ba = _gen(old['gen_a'], 'decode',
              _gen(old['gen_b'], 'encode_content', x_b), s_a)
  np.testing.assert_allclose(
      metrics['g/adv_a'], _lsgan_np(_dis(new['dis_a'], x_ba), 1.0),
      rtol=1e-4)


def test_train_step_is_pure():
  model = _model()
  state = jax.eval_shape(model.init, jax.random.key(0))   # no compilation
  purity.assert_traces_to_the_same_program(model.train_step, state, _batch(),
                                           jax.random.key(3))


def test_one_device_equals_eight_devices():
  assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
  model, state = _initial()
  state1, metrics1 = _jitted_step()
  mesh = parallel.make_mesh(BATCH, jax.devices())
  assert mesh.devices.size == 8
  step = parallel.jit_step(model.train_step, mesh, donate=False)
  state8, metrics8 = step(parallel.replicate(state, mesh),
                          parallel.shard_batch(_batch(), mesh),
                          parallel.replicate(jax.random.key(3), mesh))
  for key in metrics1:
    np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-4,
                               atol=1e-5, err_msg=key)
  _assert_params_close(model, state1.params, state8.params)


def test_init_is_untruncated_he_normal_for_g_and_gaussian_for_d():
  _, state = _initial()
  gen = state.params['gen_a']
  kernel = np.asarray(gen['dec']['up_0']['conv']['kernel'])   # 5·5·32 fan-in
  std = np.sqrt(2.0 / kernel[..., 0].size)
  assert abs(kernel.std() / std - 1) < 0.05
  assert np.abs(kernel).max() > 2.5 * std     # truncated normals stop at 2σ
  for path, leaf in jax.tree_util.tree_leaves_with_path(state.params):
    name = jax.tree_util.keystr(path)
    if name.endswith("['bias']") or name.endswith("['beta']"):
      assert not np.any(np.asarray(leaf)), name
    if name.endswith("['gamma']"):
      assert 0 <= float(leaf.min()) and float(leaf.max()) < 1, name
  d_kernel = np.asarray(
      state.params['dis_a']['scale_0']['layer_2']['conv']['kernel'])
  assert abs(d_kernel.std() / 0.02 - 1) < 0.1


def test_inference_functions():
  model, state = _initial()
  params, x = state.params, _batch(2)['image']
  gen_a, gen_b = params['gen_a'], params['gen_b']
  source = jnp.array([0, 1] * (BATCH // 2), jnp.int32)
  target = 1 - source
  translate = jax.jit(model.translate)
  a = translate(params, x, source, target, jax.random.key(0))
  b = translate(params, x, source, target, jax.random.key(1))
  assert a.shape == x.shape and float(jnp.abs(a).max()) <= 1
  # Different style codes give different outputs, row by row.
  assert float(jnp.abs(a - b).mean(axis=(1, 2, 3)).min()) > 1e-4
  np.testing.assert_array_equal(
      a, translate(params, x, source, target, jax.random.key(0)))
  # Each row is decoded by its target's G from its source's content.
  style = jax.random.normal(jax.random.key(0), (BATCH, 8))
  a_to_b = _gen(gen_b, 'decode', _gen(gen_a, 'encode_content', x[0::2]),
                style[0::2])
  np.testing.assert_allclose(a[0::2], a_to_b, atol=1e-5)

  # Reference-guided: the reference's style under the *target*'s E^s.
  refs = x[::-1]
  ref = jax.jit(model.translate_reference)(params, x, refs, target,
                                           jax.random.key(5))
  ref_style = _gen(gen_b, 'encode_style', refs[0::2])
  np.testing.assert_allclose(ref[0::2], _gen(
      gen_b, 'decode', _gen(gen_a, 'encode_content', x[0::2]), ref_style),
                             atol=1e-5)

  s0, s1 = style[0], style[1]
  path = jax.jit(model.interpolate_styles, static_argnums=4)(
      params, x[0::2], s0, s1, 3)
  assert path.shape == (BATCH // 2, 3, SIZE, SIZE, 3)
  content = _gen(gen_a, 'encode_content', x[0::2])
  for index, end in ((0, s0), (-1, s1)):
    np.testing.assert_allclose(path[:, index], _gen(
        gen_b, 'decode', content, jnp.tile(end, (BATCH // 2, 1))), atol=1e-5)

  grid = jax.eval_shape(functools.partial(model.sample_grid, num_styles=2),
                        params, x[:2], source[:2], jax.random.key(0))
  assert grid.shape == (2, 1 + 2 * 2, SIZE, SIZE, 3)


def test_slerp():
  s0 = jnp.array([[1.0, 0.0], [2.0, 0.0]])
  s1 = jnp.array([[0.0, 1.0], [4.0, 0.0]])   # orthogonal; parallel
  out = munit_objective.slerp(s0, s1, jnp.array([0.0, 0.5, 1.0]))
  np.testing.assert_allclose(out[0], [[1, 0], [np.sqrt(.5), np.sqrt(.5)],
                                      [0, 1]], atol=1e-6)
  np.testing.assert_allclose(out[1], [[2, 0], [3, 0], [4, 0]], atol=1e-6)


@pytest.mark.parametrize('variant', ['', 'shapes', 'smoke', 'edges2shoes',
                                     'edges2handbags',
                                     'summer2winter_yosemite',
                                     'synthia2cityscape',
                                     'apple2orange', 'horse2zebra',
                                     'summer2winter_yosemite,smoke'])
def test_config_variants_build_and_validate(variant):
  config = config_files.get_config('munit', variant or None)
  config_lib.validate(config)
  assert config.model.name == 'munit'
  if 'smoke' in variant:
    assert config.train.num_steps <= 10 and config.model.width <= 8


def test_config_matches_the_reference_settings():
  config = config_files.get_config('munit', 'edges2shoes')
  assert config.data.name == 'folder'
  assert (config.data.image_size, config.train.batch_size) == (256, 2)
  assert (config.model.width, config.model.style_dim, config.model.mlp_dim,
          config.model.n_res, config.model.dis_scales) == (64, 8, 256, 4, 3)
  assert dict(config.loss) == dict(gan=1.0, recon_x=10.0, recon_s=1.0,
                                   recon_c=1.0, recon_x_cyc=0.0,
                                   vgg=0.0)
  summer = config_files.get_config('munit', 'summer2winter_yosemite')
  assert summer.loss.recon_x_cyc == 10.0
  synthia = config_files.get_config('munit', 'synthia2cityscape')
  assert (synthia.data.image_size, synthia.loss.recon_x_cyc,
          synthia.loss.vgg) == (512, 10.0, 1.0)
  g = config.optim.g
  assert (g.learning_rate, g.b1, g.b2, g.weight_decay) == (1e-4, 0.5, 0.999,
                                                           1e-4)
  from i2ijax.training import optim  # pylint: disable=g-import-not-at-top
  schedule = optim.make_schedule(g, config.train.num_steps)
  np.testing.assert_allclose([schedule(0), schedule(99_999),
                              schedule(100_000)], [1e-4, 1e-4, 5e-5])
  shapes = config_files.get_config('munit', 'shapes')
  assert shapes.data.domains == ('day', 'night')


def test_bad_settings_are_clear_errors():
  config = config_files.get_config('munit', 'smoke')
  config.model.dis_scales = 4
  with pytest.raises(ValueError, match='dis_layers'):
    config_lib.validate(config)
  three = pipeline.DataSpec(name='shapes', domain_names=('a', 'b', 'c'),
                            image_size=SIZE, num_modes=3, has_masks=True)
  with pytest.raises(ValueError, match='exactly 2 domains'):
    objectives.build(config_files.get_config('munit', 'smoke'), three)
