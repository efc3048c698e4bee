"""Mixed precision in the shared layers: float32 params and statistics,
bfloat16 convs and dense layers (`i2ijax.layers.compute`)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from i2ijax.layers import compute
from i2ijax.layers import conv
from i2ijax.layers import norm
from i2ijax.models import munit_blocks
from i2ijax.models import tunit

SHAPE = (2, 6, 6, 4)


def _dtypes(tree):
  return {leaf.dtype for leaf in jax.tree.leaves(tree)}


def _bf16(shape, seed=0, scale=3.0):
  """bf16 values away from 0 mean / unit variance, as conv outputs are."""
  x = scale * jax.random.normal(jax.random.key(seed), shape) + 1.5
  return x.astype(jnp.bfloat16)


def _scale_bias():
  k1, k2 = jax.random.split(jax.random.key(5))
  return (1 + jax.random.normal(k1, SHAPE[::3]),
          jax.random.normal(k2, SHAPE[::3]))


def _module(module, *extra):
  """x -> module.apply(params, x, *extra) with params from a float32 init."""
  variables = module.init(jax.random.key(1), jnp.zeros(SHAPE), *extra)
  return lambda x: module.apply(variables, x, *extra)


NORMS = {
    'instance_norm': lambda: norm.instance_norm,
    'affine_instance_norm': lambda: (
        lambda x: norm.affine_instance_norm(x, *_scale_bias())),
    'mdmm_layer_norm': lambda: _module(norm.LayerNorm()),
    'munit_layer_norm': lambda: _module(munit_blocks.LayerNorm()),
    'munit_adain': lambda: lambda x: munit_blocks.adain(x, *_scale_bias()),
    'tunit_frn': lambda: _module(tunit.FilterResponseNorm()),
    'gmvae_adain': lambda: _module(norm.AdaIN(hidden=8),
                                   jnp.ones((SHAPE[0], 3))),
}


@pytest.mark.parametrize('name', sorted(NORMS))
def test_norms_compute_in_float32_and_return_the_input_dtype(name):
  fn = NORMS[name]()
  x = _bf16(SHAPE)
  out = jax.jit(fn)(x)
  assert out.dtype == jnp.bfloat16
  # Exactly the float32 result of the same (bf16-representable) input,
  # rounded once at the end.
  expected = jax.jit(fn)(x.astype(jnp.float32)).astype(jnp.bfloat16)
  np.testing.assert_array_equal(np.asarray(out, np.float32),
                                np.asarray(expected, np.float32))


def test_a_bfloat16_instance_norm_would_differ():
  """The exact comparison above tells the two apart."""
  x = _bf16(SHAPE)
  # The same formula evaluated in bf16 (the norm's private core).
  in_bf16 = norm._instance_norm(x, norm.EPS)  # pylint: disable=protected-access
  in_f32 = norm.instance_norm(x)
  assert in_bf16.dtype == jnp.bfloat16
  assert not np.array_equal(np.asarray(in_bf16, np.float32),
                            np.asarray(in_f32, np.float32))


CONVS = {
    'Conv2d': lambda dtype: conv.Conv2d(5, 3, padding=1, dtype=dtype),
    'Conv2d_sn': lambda dtype: conv.Conv2d(5, 3, padding=1,
                                           spectral_norm=True, dtype=dtype),
    'ConvTranspose2d': lambda dtype: conv.ConvTranspose2d(
        5, 3, 2, 1, 1, dtype=dtype),
    'munit_Conv': lambda dtype: munit_blocks.Conv(5, 3, padding=1,
                                                  dtype=dtype),
    'tunit_Conv': lambda dtype: tunit.Conv(5, 3, padding=1, dtype=dtype),
    'dense': lambda dtype: nn.Dense(5, dtype=dtype),
}


@pytest.mark.parametrize('name', sorted(CONVS))
def test_layers_keep_float32_params_and_compute_in_their_dtype(name):
  x = jax.random.normal(jax.random.key(0), SHAPE)
  layer16, layer32 = CONVS[name](jnp.bfloat16), CONVS[name](jnp.float32)
  variables = layer16.init(jax.random.key(1), x)
  assert _dtypes(variables) == {jnp.dtype(jnp.float32)}

  def loss(params, layer):
    y, _ = layer.apply({**variables, 'params': params}, x,
                       mutable=['batch_stats'])
    return jnp.sum(y.astype(jnp.float32)**2), y

  (_, y16), grads = jax.value_and_grad(loss, has_aux=True)(
      variables['params'], layer16)
  _, y32 = loss(variables['params'], layer32)
  assert y16.dtype == jnp.bfloat16 and y32.dtype == jnp.float32
  assert _dtypes(grads) == {jnp.dtype(jnp.float32)}
  # bf16 inputs and kernel (2^-9 relative rounding each), f32 sums of
  # 3·3·4 = 36 products, bf16 output: a few 2^-9 of the output's scale.
  scale = float(jnp.max(jnp.abs(y32)))
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32,
                             atol=2e-2 * scale)
  assert not np.array_equal(np.asarray(y16, np.float32), y32)


def test_spectral_norm_statistics_stay_float32_in_bfloat16():
  layer = conv.Conv2d(5, 3, padding=1, spectral_norm=True,
                      dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.key(0), SHAPE)
  variables = layer.init(jax.random.key(1), x)
  _, updates = layer.apply(variables, x, update_stats=True,
                           mutable=['batch_stats'])
  assert _dtypes(updates) == {jnp.dtype(jnp.float32)}
  assert float(updates['batch_stats']['sigma']) != 1.0   # it was updated


def test_network_options_read_the_config_with_defaults():
  assert compute.network_options(ml_collections.ConfigDict()) == dict(
      dtype=jnp.float32, remat=False)
  assert compute.network_options(ml_collections.ConfigDict(
      dict(dtype='bfloat16', remat=True))) == dict(dtype=jnp.bfloat16,
                                                   remat=True)
  with pytest.raises(ValueError, match="'float16'.*bfloat16"):
    compute.dtype_from_name('float16')


def test_float32_casts_floating_leaves_only():
  tree = {'x': jnp.ones(2, jnp.bfloat16), 'i': jnp.ones(2, jnp.int32)}
  out = compute.float32(tree)
  assert out['x'].dtype == jnp.float32 and out['i'].dtype == jnp.int32


def test_maybe_remat_wraps_only_when_enabled():
  assert compute.maybe_remat(conv.INSResBlock, False) is conv.INSResBlock
  assert compute.maybe_remat(conv.INSResBlock, True) is not conv.INSResBlock


def test_compiler_options_only_for_remat_on_the_cpu():
  remat = ml_collections.ConfigDict(dict(remat=True))
  assert compute.compiler_options(ml_collections.ConfigDict()) is None
  assert compute.compiler_options(remat, backend='gpu') is None
  assert compute.compiler_options(remat, backend='cpu') == {
      'xla_disable_hlo_passes': 'cse_barrier_expander'}


class _Stack(nn.Module):
  """Eight residual blocks of two 3×3 convs at 16² × 32 channels."""
  remat: bool

  @nn.compact
  def __call__(self, x):
    block = compute.maybe_remat(conv.INSResBlock, self.remat)
    for i in range(8):
      x = block(name=f'block{i}')(x)
    return x


def _grad_temp_bytes(remat: bool) -> int:
  """XLA temporaries of the compiled gradient, jitted as the loop does."""
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 32))
  module = _Stack(remat)
  params = module.init(jax.random.key(1), x)
  loss = lambda p: jnp.sum(jnp.sin(module.apply(p, x)))
  options = compute.compiler_options(
      ml_collections.ConfigDict(dict(remat=remat)))
  compiled = jax.jit(jax.grad(loss), compiler_options=options).lower(
      params).compile()
  return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='XLA:CPU only')
def test_remat_with_the_compiler_options_keeps_fewer_activations_on_cpu():
  # Without the options XLA:CPU merges the recomputation back into the
  # forward pass and both programs need the same memory (compute.py).
  assert _grad_temp_bytes(remat=True) < 0.6 * _grad_temp_bytes(remat=False)
