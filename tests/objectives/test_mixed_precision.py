"""Every model's jitted steps: bfloat16 compute with float32 state and
losses, and one trace / compilation per step function."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import objectives
from i2ijax.training import parallel
import smoke_models

MODELS = smoke_models.MODELS


def _run_loop(model, config, iterations):
  """Runs the loop's step schedule with its jit wrapper (`parallel.jit_step`,
  donation) on fresh batches; counts how often jax traces each step.

  Returns (final state, per-call metrics, traces per step, jitted steps).
  """
  names = smoke_models.loop_steps(model, iterations)
  mesh = parallel.make_mesh(config.train.batch_size, jax.devices()[:1])
  traces = collections.Counter()

  def counted(step_name):
    step = getattr(model, step_name)

    def traced(state, batch, rng):
      traces[step_name] += 1      # runs only while jax traces the step
      return step(state, batch, rng)
    return parallel.jit_step(traced, mesh)

  steps = {step_name: counted(step_name) for step_name in dict.fromkeys(names)}
  state = parallel.replicate(model.init(jax.random.key(0)), mesh)
  rng = parallel.replicate(jax.random.key(1), mesh)
  metrics = []
  for i, step_name in enumerate(names):
    batch = parallel.shard_batch(smoke_models.batch(config, seed=i), mesh)
    state, step_metrics = steps[step_name](state, batch, rng)
    metrics.append((step_name, jax.device_get(step_metrics)))
  return state, metrics, traces, steps


def _assert_traced_and_compiled_once(traces, steps):
  """One trace and one executable per step function, each called >= 2 times
  (the first call's state comes from `init`, later ones from a step)."""
  assert traces == {name: 1 for name in steps}, traces
  assert {name: step._cache_size() for name, step in steps.items()} == {
      name: 1 for name in steps}


def _iterations(model):
  # MDMM: content-D, content-D, main, ... ; TUNIT (2 warm-up steps in the
  # smoke config): warm-up, warm-up, joint, joint.
  return 6 if model.uses_content_dis else 4


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n == 'tunit' else n
    for n in MODELS])
def test_bfloat16_steps_compute_in_bf16_with_float32_state(name):
  model, config = smoke_models.build(name, dtype='bfloat16')
  iterations = _iterations(model)
  # Every convolution of each step, forward and backward, runs in bf16.
  state = jax.eval_shape(model.init, jax.random.key(0))
  for step_name in dict.fromkeys(smoke_models.loop_steps(model, iterations)):
    hlo = jax.jit(getattr(model, step_name)).lower(
        state, smoke_models.batch(config), jax.random.key(1)).as_text()
    assert smoke_models.conv_dtypes(hlo) == {'bf16'}, step_name
  state, metrics, traces, steps = _run_loop(model, config, iterations)
  for step_name, values in metrics:
    assert {np.asarray(v).dtype for v in values.values()} == {
        np.dtype(np.float32)}, step_name
    assert all(np.isfinite(v) for v in values.values()), (step_name, values)
  # Params, their EMA copies, optimizer moments and model state (norm and
  # spectral-norm statistics, image pools, TUNIT's queue) stay float32.
  for part in ('params', 'ema_params', 'opt_state', 'model_state'):
    assert smoke_models.float_dtypes(getattr(state, part)) <= {
        jnp.dtype(jnp.float32)}, part
  assert smoke_models.float_dtypes(state.params) == {jnp.dtype(jnp.float32)}
  _assert_traced_and_compiled_once(traces, steps)


# The default (float32) path for the models with more than one step
# function (MDMM's content-D step, TUNIT's warm-up and joint steps) and
# CycleGAN's image pools; every model is checked in bfloat16 above.
@pytest.mark.parametrize('name', ['mdmm', 'tunit', 'cyclegan'])
def test_float32_steps_trace_and_compile_once(name):
  model, config = smoke_models.build(name)
  _, _, traces, steps = _run_loop(model, config, _iterations(model))
  assert len(steps) == {'mdmm': 2, 'tunit': 2, 'cyclegan': 1}[name]
  _assert_traced_and_compiled_once(traces, steps)


@pytest.mark.parametrize('name', MODELS)
def test_bfloat16_translation_is_close_to_float32(name):
  """Same params, both dtypes: E + G of reference-guided translation.

  bf16 keeps 8 significant bits (unit roundoff 2^-9 ≈ 0.2%); through the
  ~10-25 conv / norm layers of the smoke networks the relative L2 error of
  the output measured 0.3-1.7% (MDMM lowest, UNIT highest). 5% leaves room
  for other seeds and backends; a float32 computation would give exactly
  0, which the lower bound rules out.
  """
  model32, config = smoke_models.build(name)
  model16, _ = smoke_models.build(name, dtype='bfloat16')
  params = objectives.inference_params(model32, model32.init(
      jax.random.key(0)))
  batch = smoke_models.batch(config)
  args = (params, batch['image'], batch['image'][::-1],
          batch['domain'][::-1], jax.random.key(3))
  out32 = jax.jit(model32.translate_reference)(*args)
  out16 = jax.jit(model16.translate_reference)(*args)
  assert out16.dtype == jnp.float32 and out16.shape == out32.shape
  rel = float(jnp.linalg.norm(out16 - out32) / jnp.linalg.norm(out32))
  assert 0 < rel < 0.05, rel


def test_tunit_objective_builds_networks_in_the_config_dtype():
  config = smoke_models.smoke_config('tunit', dtype='bfloat16')
  model = objectives.build(config, smoke_models.data_spec(config))
  assert {net.dtype for net in model.nets.values()} == {jnp.bfloat16}
