"""UNIT pure steps: losses, weight sharing, jit, devices, config variants."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.models import unit as unit_nets
from i2ijax.training import parallel
import config_files
import purity

BATCH = 8
SPEC = pipeline.DataSpec(name='shapes', domain_names=('day', 'night'),
                         image_size=32, num_modes=3, has_masks=True)


def _model(**model_overrides):
  """The smoke config, shrunk further: compile and eager time dominate."""
  config = config_files.get_config('unit', 'smoke')
  config.train.batch_size = BATCH
  config.model.update(dict(width=4, dis_width=4, dis_layers=2,
                           dis_scales=2))
  config.model.update(model_overrides)
  return objectives.build(config, SPEC)


@functools.lru_cache(maxsize=None)
def _initial(shared_layers=1):
  model = _model(shared_layers=shared_layers)
  return model, model.init(jax.random.key(0))


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32),
          'domain': np.repeat(np.arange(2, dtype=np.int32), BATCH // 2)}


def _halves(x):
  return x[:BATCH // 2], x[BATCH // 2:]


# ------------------------------------------------------------------ losses
def test_generator_loss_terms_match_their_closed_forms():
  model, state = _initial()
  x_a, x_b = _halves(_batch()['image'])
  p = state.params
  key = jax.random.key(5)

  @jax.jit
  def run(p):
    total, terms = model.g_loss(p['g'], p['d'], {}, x_a, x_b, key)
    outs = model.g_forward(p['g'], x_a, x_b, key)
    maps, _ = model.discriminate(p['d'], {}, outs['x_ba'], 0)
    return total, terms, outs, maps

  total, terms, outs, maps = jax.tree.map(np.asarray, run(p))
  l1 = lambda a, b: np.mean(np.abs(a - b))  # noqa: E731
  np.testing.assert_allclose(terms['g/recon_x_a'], l1(outs['x_aa'], x_a),
                             rtol=1e-5)
  np.testing.assert_allclose(terms['g/cyc_b'], l1(outs['x_bab'], x_b),
                             rtol=1e-5)
  np.testing.assert_allclose(terms['g/kl_a'], np.mean(outs['h_a']**2),
                             rtol=1e-5)
  np.testing.assert_allclose(terms['g/kl_cyc_a'],
                             np.mean(outs['h_a_rec']**2), rtol=1e-5)
  np.testing.assert_allclose(
      terms['g/adv_a'], sum(np.mean((m - 1)**2) for m in maps),
      rtol=1e-5)
  w = model.loss_cfg
  expected = sum(weight * (terms[f'g/{t}_a'] + terms[f'g/{t}_b']) for t, weight
                 in (('adv', w.gan), ('recon_x', w.recon_x),
                     ('kl', w.recon_kl), ('cyc', w.recon_x_cyc),
                     ('kl_cyc', w.recon_kl_cyc)))
  np.testing.assert_allclose(total, expected, rtol=1e-5)
  assert terms['g/eg_total'] == total
  # Shapes: the latent is (B/2, S/4, S/4, 4·width).
  assert outs['h_a'].shape == (BATCH // 2, 8, 8, 4 * model.model_cfg.width)
  assert outs['x_ab'].shape == x_a.shape


def test_discriminator_loss_is_lsgan_summed_over_scales():
  model, state = _initial()
  x_a, x_b = _halves(_batch(1)['image'])
  fake_a, fake_b = x_b[::-1], x_a[::-1]
  d = state.params['d']
  total, (_, terms) = model.d_loss(d, {}, x_a, x_b, fake_a, fake_b)
  real_maps, _ = model.discriminate(d, {}, x_a, 0)
  fake_maps, _ = model.discriminate(d, {}, fake_a, 0)
  assert len(real_maps) == model.model_cfg.dis_scales
  expected_a = sum(np.mean(np.asarray(f)**2) + np.mean((np.asarray(r) - 1)**2)
                   for r, f in zip(real_maps, fake_maps))
  np.testing.assert_allclose(terms['d/a'], expected_a, rtol=1e-5)
  np.testing.assert_allclose(total, terms['d/a'] + terms['d/b'], rtol=1e-6)


# ------------------------------------------------------------ weight sharing
@functools.lru_cache(maxsize=None)
def _grad_norms(shared_layers):
  """|∂ mean(G_d(E_d(x)))| per generator child, for each domain d alone."""
  model, state = _initial(shared_layers)
  x = jnp.asarray(_batch()['image'][:2])

  def norms(g, domain):
    grads = jax.grad(lambda g: jnp.mean(
        model.decode(g, model.encode(g, x, domain), domain)))(g)
    return {name: sum(jnp.abs(leaf).sum() for leaf in jax.tree.leaves(tree))
            for name, tree in grads.items()}

  out = jax.jit(lambda g: [norms(g, d) for d in (0, 1)])(state.params['g'])
  return jax.tree.map(float, out)


def test_shared_blocks_exist_once_and_get_gradient_from_both_domains():
  model, state = _initial(1)
  g = state.params['g']
  assert set(g) == {'enc_a', 'enc_b', 'enc_shared', 'dec_shared', 'dec_a',
                    'dec_b'}
  n_res = model.model_cfg.n_res
  assert len(g['enc_shared']) == len(g['dec_shared']) == 1
  assert len(g['enc_a']['res']) == len(g['dec_b']['res']) == n_res - 1
  for domain, own, other in ((0, 'a', 'b'), (1, 'b', 'a')):
    norms = _grad_norms(1)[domain]
    assert norms['enc_shared'] > 0 and norms['dec_shared'] > 0
    assert norms[f'enc_{own}'] > 0 and norms[f'dec_{own}'] > 0
    assert norms[f'enc_{other}'] == 0 and norms[f'dec_{other}'] == 0


def test_no_sharing_gives_two_disjoint_generators():
  model, state = _initial(0)
  g = state.params['g']
  assert set(g) == {'enc_a', 'enc_b', 'dec_a', 'dec_b'}
  n_res = model.model_cfg.n_res
  assert len(g['enc_a']['res']) == len(g['dec_a']['res']) == n_res
  for domain, own, other in ((0, 'a', 'b'), (1, 'b', 'a')):
    norms = _grad_norms(0)[domain]
    assert norms[f'enc_{own}'] > 0 and norms[f'dec_{own}'] > 0
    assert norms[f'enc_{other}'] == 0 and norms[f'dec_{other}'] == 0


def test_default_generator_parameter_counts():
  x = jnp.zeros((1, 256, 256, 3))
  count = lambda net: sum(  # noqa: E731
      np.prod(a.shape) for a in jax.tree.leaves(jax.eval_shape(
          lambda: net.init(jax.random.key(0), x))))
  assert count(unit_nets.VAEGen()) == 11_140_483    # spec §4.4
  assert count(unit_nets.UNITGenerator(shared_layers=0)) == 2 * 11_140_483
  assert count(unit_nets.UNITGenerator(shared_layers=1)) == (
      2 * 11_140_483 - 2 * 1_180_160)               # spec §6.12


# -------------------------------------------------------------------- steps
@functools.lru_cache(maxsize=None)
def _jitted_step():
  """One jitted train step on one device (shared by several tests)."""
  model, state = _initial()
  batch, rng = _batch(2), jax.random.key(3)
  return jax.device_get(jax.jit(model.train_step)(state, batch, rng))


def test_train_step_updates_both_groups_once():
  model, state = _initial()
  new_state, metrics = _jitted_step()
  for name in ('g', 'd'):
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(state.params[name]),
        jax.tree.leaves(new_state.params[name]))), name
    assert int(jax.tree.leaves(new_state.opt_state[name])[0]) == 1
  assert int(new_state.step) == 1 and int(new_state.iteration) == 1
  metrics = jax.device_get(metrics)
  assert all(np.isfinite(v) for v in metrics.values())
  assert {'d/total', 'g/eg_total', 'g/kl_a', 'g/cyc_b'} <= set(metrics)


def _assert_params_close(model, params_a, params_b):
  """One Adam step moves a weight by ≈ lr·sign(grad); rounding may flip it."""
  max_lr = max(group.learning_rate for group in model.config.optim.values())
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=0,
                                 atol=2 * max_lr + 1e-6), params_a, params_b)


def test_train_step_is_pure():
  model = _model()
  state = jax.eval_shape(model.init, jax.random.key(0))   # no compilation
  purity.assert_traces_to_the_same_program(model.train_step, state, _batch(2),
                                           jax.random.key(3))


def test_one_device_equals_eight_devices():
  assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
  model, state = _initial()
  batch, rng = _batch(2), jax.random.key(3)
  mesh = parallel.make_mesh(BATCH, jax.devices())
  step = parallel.jit_step(model.train_step, mesh, donate=False)
  results = [_jitted_step(),
             step(parallel.replicate(state, mesh),
                  parallel.shard_batch(batch, mesh),
                  parallel.replicate(rng, mesh))]
  (state1, metrics1), (state8, metrics8) = results
  for key in metrics1:
    np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-4,
                               atol=1e-5, err_msg=key)
  _assert_params_close(model, state1.params, state8.params)


# ---------------------------------------------------------------- inference
def test_translation_uses_the_latent_mean():
  model, state = _initial()
  x = _batch(4)['image']
  source = np.zeros(BATCH, np.int32)
  target = np.ones(BATCH, np.int32)
  translate = jax.jit(model.translate)
  a = translate(state.params, x, source, target, jax.random.key(0))
  b = translate(state.params, x, source, target, jax.random.key(1))
  np.testing.assert_array_equal(a, b)
  direct = jax.jit(lambda g: model.decode(g, model.encode(g, x, 0), 1))
  np.testing.assert_allclose(a, direct(state.params['g']), atol=1e-6)
  ref = jax.jit(model.translate_reference)(state.params, x, x[::-1], target,
                                           jax.random.key(0))
  np.testing.assert_allclose(ref, a, atol=1e-6)
  grid = model.sample_grid(state.params, x[:2], source[:2], jax.random.key(0),
                           3)
  assert grid.shape == (2, 3, 32, 32, 3)


# ------------------------------------------------------------------- config
def test_config_variants():
  default = config_files.get_config('unit')
  config_lib.validate(default)
  assert default.model.name == 'unit' and default.data.name == 'shapes'
  assert tuple(default.data.domains) == ('day', 'night')
  assert default.model.shared_layers == 1
  v1 = config_files.get_config('unit', 'summer2winter')
  assert v1.data.name == 'cycle_gan/summer2winter_yosemite'
  assert (v1.data.image_size, v1.train.batch_size) == (256, 2)
  assert dict(v1.loss) == dict(gan=1.0, recon_x=10.0, recon_kl=0.01,
                               recon_x_cyc=10.0, recon_kl_cyc=0.01, vgg=0.0)
  g = v1.optim.g
  assert (g.learning_rate, g.b1, g.b2, g.weight_decay) == (1e-4, 0.5, 0.999,
                                                           1e-4)
  from i2ijax.training import optim  # pylint: disable=g-import-not-at-top
  schedule = optim.make_schedule(g, v1.train.num_steps)
  np.testing.assert_allclose([schedule(0), schedule(99_999), schedule(100_000)],
                             [1e-4, 1e-4, 5e-5])
  paper = config_files.get_config('unit', 'maps,paper_weights')
  assert paper.data.name == 'cycle_gan/maps'
  assert dict(paper.loss) == pytest.approx(dict(
      gan=10.0, recon_x=100.0, recon_kl=0.1, recon_x_cyc=100.0,
      recon_kl_cyc=0.1, vgg=0.0))
  assert config_files.get_config('unit', 'edges2shoes').data.name == 'folder'
  for arg in ('smoke', 'paper_weights', 'edges2handbags,smoke'):
    config_lib.validate(config_files.get_config('unit', arg))
  with pytest.raises(ValueError, match='variant'):
    config_files.get_config('unit', 'gta2city')


def test_bad_setups_are_clear_errors():
  config = config_files.get_config('unit', 'smoke')
  with pytest.raises(ValueError, match='exactly 2 domains'):
    objectives.build(config, pipeline.DataSpec(
        name='shapes', domain_names=('a', 'b', 'c'), image_size=32,
        num_modes=3, has_masks=True))
  config.model.dis_layers = 4
  with pytest.raises(ValueError, match='dis_layers'):
    objectives.build(config, SPEC)
  config = config_files.get_config('unit', 'smoke')
  config.model.shared_layers = 5
  with pytest.raises(ValueError, match='shared_layers'):
    objectives.build(config, SPEC)
