"""TUNIT pure step: the two phases, what each update touches, EMA, queue,
and the inference functions."""

import functools

import jax
from jax import flatten_util
import numpy as np

from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.layers import compute
import config_files
import purity

BATCH = 4
SPEC = pipeline.DataSpec(name='shapes', domain_names=('day', 'night', 'sketch'),
                         image_size=32, num_modes=3, has_masks=True)


def _config():
  config = config_files.get_config('tunit', 'smoke')
  config.train.update(dict(batch_size=BATCH, warmup_steps=1,
                           ema_start_steps=2))
  config.model.bn_copy_every = 3
  return config


@functools.lru_cache(maxsize=None)
def _run():
  """The model, its initial state and the states after steps 1, 2, 3."""
  model = objectives.build(_config(), SPEC)
  warmup, joint = jax.jit(model.warmup_step), jax.jit(model.train_step)
  states, metrics = [model.init(jax.random.key(0))], []
  for i in range(3):
    step = warmup if model.is_warmup_step(i) else joint
    state, m = step(states[-1], _batch(i), jax.random.key(7))
    states.append(state)
    metrics.append(jax.device_get(m))
  return model, states, metrics


def _batch(seed):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32),
          'domain': rng.integers(0, 3, BATCH).astype(np.int32)}


def _changed(before, after):
  return {name for name in before
          if any(not np.array_equal(a, b) for a, b in zip(
              jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))}


def _count(state, name):
  """Optimizer updates taken by network `name` (Adam / RMSprop count)."""
  return int(jax.tree.leaves(state.opt_state[name])[0])


def test_warmup_step_trains_only_the_guiding_network():
  model, (s0, s1, _, _), (m1, _, _) = _run()
  assert [model.is_warmup_step(i) for i in range(3)] == [True, False, False]
  assert _changed(s0.params, s1.params) == {'guide'}
  assert {n: _count(s1, n) for n in model.nets} == {
      'guide': 1, 'gen': 0, 'dis': 0}
  assert m1['train/joint'] == 0.0
  assert all(m1[k] == 0.0 for k in m1 if k.startswith(('d/', 'g/')))
  assert np.isfinite(m1['e/total'])


def test_joint_step_updates_every_network_and_e_twice():
  model, (_, s1, s2, _), (_, m2, _) = _run()
  assert _changed(s1.params, s2.params) == {'guide', 'gen', 'dis'}
  # One E step from L_E, one from L_G (spec §1.7.3): two optimizer updates.
  assert {n: _count(s2, n) for n in model.nets} == {
      'guide': 3, 'gen': 1, 'dis': 1}
  assert m2['train/joint'] == 1.0
  assert all(np.isfinite(v) for v in m2.values())
  # L_E is scaled by e_after_warmup once joint training runs.
  w = model.loss_cfg
  np.testing.assert_allclose(
      m2['e/total'],
      w.e_after_warmup * (m2['e/style'] + w.iic * m2['e/iic']), rtol=1e-5)


def test_both_steps_are_pure():
  model = objectives.build(_config(), SPEC)
  state = jax.eval_shape(model.init, jax.random.key(0))   # no compilation
  for step in (model.warmup_step, model.train_step):
    purity.assert_traces_to_the_same_program(step, state, _batch(0),
                                             jax.random.key(7))


def test_remat_d_step_has_the_d_loss_gradient_in_less_memory():
  # With remat `d_grads` takes R1's gradient, then the hinge terms' behind
  # a barrier: the same terms and gradient as d_loss's, in ~0.7x the XLA
  # temporaries of d_loss's gradient (128 px, batch 8: 2.3 vs 3.5 GiB).
  config = _config()
  config.model.remat = True
  model = objectives.build(config, SPEC)
  params = model.init(jax.random.key(0)).params['dis']
  x_ref, x_fake = _batch(1)['image'], _batch(2)['image']
  y_ref = np.array([0, 2, 1, 2], np.int32)
  args = (params, x_ref, y_ref, x_fake)
  d_loss_grad = jax.value_and_grad(model.d_loss, has_aux=True)
  compiled = {
      name: jax.jit(fn, compiler_options=compute.compiler_options(
          config.model)).lower(*args).compile()
      for name, fn in (('d_grads', model.d_grads), ('d_loss', d_loss_grad))}
  temp_bytes = {name: c.memory_analysis().temp_size_in_bytes
                for name, c in compiled.items()}
  assert temp_bytes['d_grads'] < 0.85 * temp_bytes['d_loss'], temp_bytes
  (_, want_terms), want = compiled['d_loss'](*args)
  grads, terms = compiled['d_grads'](*args)
  assert terms.keys() == want_terms.keys()
  for k in terms:
    np.testing.assert_allclose(terms[k], want_terms[k], rtol=1e-5)
  assert want_terms['d/r1'] > 0 and want_terms['d/adv'] > 0
  flat, flat_want = (flatten_util.ravel_pytree(t)[0] for t in (grads, want))
  assert np.linalg.norm(flat_want) > 0
  assert (np.linalg.norm(flat - flat_want) / np.linalg.norm(flat_want)
          < 1e-5)


def test_queue_fills_with_one_batch_of_keys_per_step():
  model, states, _ = _run()
  size = model.model_cfg.queue_size
  for i, state in enumerate(states):
    queue = state.model_state['queue']
    assert int(queue.valid.sum()) == min(size, i * BATCH)
    assert int(queue.ptr) == (i * BATCH) % size
  # The keys are E_EMA's style codes: finite and not all zero.
  keys = np.asarray(states[1].model_state['queue'].keys[:BATCH])
  assert np.all(np.isfinite(keys)) and np.abs(keys).max() > 0


def test_ema_copies_follow_their_schedules():
  model, (s0, s1, s2, s3), _ = _run()
  m = model.model_cfg
  # E_EMA decays towards E from the first step (MoCo momentum).
  expected = jax.tree.map(lambda a, b: m.moco_momentum * a +
                          (1 - m.moco_momentum) * b,
                          s0.ema_params['guide'], s1.params['guide'])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                       atol=1e-7),
               s1.ema_params['guide'], expected)
  # G_EMA equals G before ema_start_steps (= 2), then lags behind it.
  for state in (s1, s2):
    jax.tree.map(np.testing.assert_array_equal, state.ema_params['gen'],
                 state.params['gen'])
  assert _changed({'g': s3.ema_params['gen']}, {'g': s3.params['gen']}) == {
      'g'}
  # E's BN statistics are copied into E_EMA's every bn_copy_every (3) steps.
  jax.tree.map(np.testing.assert_array_equal,
               s3.model_state['guide_ema']['batch_stats'],
               s3.model_state['guide']['batch_stats'])
  assert _changed({'s': s2.model_state['guide_ema']['batch_stats']},
                  {'s': s2.model_state['guide']['batch_stats']}) == {'s'}


def test_inference_uses_cluster_styles_and_reference_styles():
  model, states, _ = _run()
  params = objectives.inference_params(model, states[-1])
  x = _batch(10)['image']
  domains = np.array([0, 1, 2, 0])
  table = model.style_table(params, x, domains)
  assert table.shape == (3, model.model_cfg.style_dim)
  params['style_table'] = table
  target = np.array([2, 2, 1, 0])
  out = jax.jit(model.translate)(params, x, domains, target,
                                 jax.random.key(0))
  direct = model.decode(params, x, table[target])
  np.testing.assert_allclose(out, direct, atol=1e-6)
  assert out.shape == x.shape and np.abs(out).max() <= 1.0
  ref = jax.jit(model.translate_reference)(params, x, x[::-1], target,
                                           jax.random.key(0))
  np.testing.assert_allclose(
      ref, model.decode(params, x, model.encode_style(params, x[::-1])),
      atol=1e-6)
  clusters = np.asarray(model.cluster(params, x))
  assert clusters.shape == (BATCH,) and clusters.max() < model.num_clusters
