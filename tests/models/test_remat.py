"""`config.model.remat`: the same parameters, outputs and gradients, with
the residual blocks rematerialised (`nn.remat`) in the compiled program,
and a train step that needs less memory when jitted as the loop does."""

import re

import jax
from jax import flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax import objectives
from i2ijax.layers import compute
from i2ijax.training import parallel
import smoke_models

REMAT_MODELS = ('mdmm', 'gmvae_mdmm', 'munit', 'unit', 'cyclegan', 'tunit')
# jax's rematerialisation primitive ('remat2' in jax 0.10, 'checkpoint' in
# others) as printed in a jaxpr: `remat2[jaxpr=... prevent_cse=True ...]`.
REMAT_PRIMITIVE = re.compile(r'\b(remat|checkpoint)\w*\[')


@pytest.mark.parametrize('name', REMAT_MODELS)
def test_remat_gives_the_same_params_outputs_and_gradients(name):
  plain, config = smoke_models.build(name)
  remat, remat_config = smoke_models.build(name, remat=True)
  state = plain.init(jax.random.key(0))
  remat_state = remat.init(jax.random.key(0))
  assert (jax.tree.structure(remat_state.params) ==
          jax.tree.structure(state.params))
  params = objectives.inference_params(plain, state)
  batch = smoke_models.batch(config)
  images, references = batch['image'], batch['image'][::-1]
  weights = jax.random.normal(jax.random.key(2), images.shape)

  def loss(p, model):
    """E + G (reference-guided translation) against fixed random weights."""
    out = model.translate_reference(p, images, references,
                                    batch['domain'][::-1], jax.random.key(3))
    return jnp.sum(weights * out), out

  def grad_fn(model):
    return jax.value_and_grad(lambda p: loss(p, model), has_aux=True)

  # Only the remat model's program rematerialises.
  assert REMAT_PRIMITIVE.search(str(jax.make_jaxpr(grad_fn(remat))(params)))
  assert not REMAT_PRIMITIVE.search(
      str(jax.make_jaxpr(grad_fn(plain))(params)))
  (_, out), grads = jax.jit(grad_fn(plain))(params)
  # Compiled as the loop compiles it (on the CPU: barriers kept).
  (_, remat_out), remat_grads = jax.jit(
      grad_fn(remat),
      compiler_options=compute.compiler_options(remat_config.model))(params)
  np.testing.assert_allclose(remat_out, out, rtol=1e-4, atol=1e-5)
  # All gradients as one vector: float32 rounding differs (XLA fuses the
  # recomputed forward differently), some entries are pure rounding noise
  # (biases right before an instance norm have an exact gradient of 0).
  flat, flat_remat = (flatten_util.ravel_pytree(tree)[0]
                      for tree in (grads, remat_grads))
  assert float(jnp.linalg.norm(flat)) > 0
  rel = float(jnp.linalg.norm(flat_remat - flat) / jnp.linalg.norm(flat))
  assert rel < 1e-5, rel


def _train_step_temp_bytes(name: str, remat: bool) -> int:
  """XLA temporaries of the smoke train step, jitted as `train.py` does on a
  one-device machine."""
  model, config = smoke_models.build(name, remat=remat)
  state = jax.eval_shape(model.init, jax.random.key(0))
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                       smoke_models.batch(config))
  # One device: split over this process's 8 test devices, the smoke batch
  # leaves too few activations per device to tell (gradients dominate).
  mesh = parallel.make_mesh(config.train.batch_size, jax.devices()[:1])
  step = parallel.jit_step(
      model.train_step, mesh,
      compiler_options=compute.compiler_options(config.model))
  compiled = step.lower(state, batch, jax.random.key(1)).compile()
  return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.slow
@pytest.mark.parametrize('name', ('mdmm', 'munit', 'cyclegan'))
def test_remat_train_step_needs_less_memory(name):
  # At the smoke widths remat saves 10% (CycleGAN, MUNIT) to 50% (MDMM) of
  # the temporaries; at 256 px CycleGAN's drop from 4.1 to 1.6 GB.
  assert (_train_step_temp_bytes(name, remat=True) <
          0.95 * _train_step_temp_bytes(name, remat=False))


@pytest.mark.slow
def test_tunit_remat_step_runs_the_g_step_after_the_d_step():
  # The barrier in TUNIT's _joint_update: without it XLA schedules the G + E
  # step's forward passes into the D step (smoke: ~0.7x the plain step's
  # temporaries instead of ~0.55x; 128 px, batch 32, before `d_grads` split
  # the D step: 19.6 vs 16.2 GiB).
  assert (_train_step_temp_bytes('tunit', remat=True) <
          0.65 * _train_step_temp_bytes('tunit', remat=False))
