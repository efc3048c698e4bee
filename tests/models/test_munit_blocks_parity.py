"""Parity of the shared MUNIT/UNIT blocks with NVlabs/MUNIT fixtures.

`MsImageDis` (3 scales, width 8, 64 px) with and without MUNIT's own spectral
norm, plus numpy checks of the pieces whose numerics the spec pins down
(MUNIT LayerNorm, AdaIN slicing, the count_include_pad=False pool, the
multi-scale GAN losses, the initialisers).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity_fixtures
from parity_fixtures import assert_close

from i2ijax.losses import munit_gan
from i2ijax.models import munit_blocks
from i2ijax.models import torch_convert_munit_blocks as convert


PARITY = parity_fixtures.find_dir('munit_msimagedis')
needs_fixtures = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load(PARITY, name)


def _dis(meta):
  kw = meta['constructor']['kwargs']['params']
  return munit_blocks.MsImageDis(
      dim=kw['dim'], n_layer=kw['n_layer'], num_scales=kw['num_scales'],
      norm=kw['norm'], activation=kw['activ'], pad_type=kw['pad_type'])


def _check_tree(net, variables, x):
  expected = jax.eval_shape(lambda: net.init(jax.random.key(0), x))
  shapes = lambda t: jax.tree.map(lambda a: tuple(np.shape(a)), t)  # noqa: E731
  assert shapes(dict(expected)) == shapes(variables)


@needs_fixtures
def test_msimagedis():
  arrays, meta = load('munit_msimagedis')
  net = _dis(meta)
  variables = convert.msimagedis_variables(arrays)
  x = jnp.asarray(arrays['input/forward.x'].transpose(0, 2, 3, 1))
  _check_tree(net, variables, x)
  outs = jax.jit(net.apply)(variables, x)
  assert len(outs) == 3
  for i, out in enumerate(outs):
    assert_close(out.transpose(0, 3, 1, 2), arrays[f'output/forward.out{i}'])


@needs_fixtures
def test_msimagedis_spectral_norm():
  arrays, meta = load('munit_msimagedis_sn')
  net = _dis(meta)
  variables = convert.msimagedis_variables(arrays)
  x = jnp.asarray(arrays['input/forward.x'].transpose(0, 2, 3, 1))
  _check_tree(net, variables, x)
  # MUNIT normalises on every call: eval-style calls give the same maps.
  outs = jax.jit(net.apply)(variables, x)
  outs_train, state = jax.jit(lambda v, x: net.apply(
      v, x, update_stats=True, mutable=['batch_stats']))(variables, x)
  for i in range(3):
    ref = arrays[f'output/forward.out{i}']
    assert_close(outs[i].transpose(0, 3, 1, 2), ref)
    assert_close(outs_train[i].transpose(0, 3, 1, 2), ref)
  for s in range(3):
    for layer in (1, 2, 3):
      ref = f'output/forward.updated_param.cnns.{s}.{layer}.conv.module'
      stats = state['batch_stats'][f'scale_{s}'][f'layer_{layer}']['conv']
      assert_close(stats['u'], arrays[f'{ref}.weight_u'])
      assert_close(stats['v'], arrays[f'{ref}.weight_v'])


@needs_fixtures
def test_converter_rejects_unused_parameters():
  arrays, _ = load('munit_msimagedis')
  arrays['param/extra.weight'] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match='extra.weight'):
    convert.msimagedis_variables(arrays)


# ------------------------------------------------- numerics without torch
def test_default_discriminator_shapes_and_parameter_count():
  net = munit_blocks.MsImageDis()
  x = jnp.zeros((1, 256, 256, 3))
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), x))
  count = sum(np.prod(a.shape) for a in jax.tree.leaves(shapes))
  assert count == 8_271_171   # spec §1.6: 2,757,057 per scale
  outs = jax.eval_shape(lambda: net.apply(
      net.init(jax.random.key(0), x), x))
  assert [o.shape for o in outs] == [(1, 16, 16, 1), (1, 8, 8, 1),
                                     (1, 4, 4, 1)]
  assert munit_blocks.min_dis_input_size(4, 3) == 64
  with pytest.raises(ValueError, match='Reflection padding'):
    jax.eval_shape(lambda: net.init(jax.random.key(0),
                                    jnp.zeros((1, 32, 32, 3))))


def test_layer_norm_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 5, 4, 3)).astype(np.float32)
  ln = munit_blocks.LayerNorm()
  variables = ln.init(jax.random.key(0), x)
  gamma = np.asarray(variables['params']['gamma'])
  assert np.all((gamma >= 0) & (gamma < 1))
  flat = x.reshape(2, -1)
  mean = flat.mean(1)[:, None, None, None]
  std = flat.std(1, ddof=1)[:, None, None, None]
  expected = (x - mean) / (std + 1e-5) * gamma
  np.testing.assert_allclose(ln.apply(variables, x), expected, rtol=1e-5,
                             atol=1e-5)


def test_adain_slicing_is_beta_then_gamma_per_layer():
  channels, layers = 4, 3
  p = jnp.arange(2 * channels * layers, dtype=jnp.float32)[None]
  pairs = munit_blocks.split_adain_params(p, channels, layers)
  for j, (gamma, beta) in enumerate(pairs):
    start = 2 * channels * j
    np.testing.assert_array_equal(beta[0], np.arange(start, start + 4))
    np.testing.assert_array_equal(gamma[0], np.arange(start + 4, start + 8))
  x = np.random.default_rng(1).normal(size=(1, 3, 3, channels))
  gamma, beta = pairs[1]
  mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
  expected = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
  np.testing.assert_allclose(munit_blocks.adain(jnp.asarray(x), gamma, beta),
                             expected, rtol=1e-5, atol=1e-5)


def test_avg_pool_excludes_padding():
  x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
  out = np.asarray(munit_blocks.downsample_avg(jnp.asarray(x)))[0, :, :, 0]
  assert out.shape == (3, 3)
  padded = np.pad(x[0, :, :, 0], 1, constant_values=np.nan)
  expected = np.array([[np.nanmean(padded[2 * i:2 * i + 3, 2 * j:2 * j + 3])
                        for j in range(3)] for i in range(3)])
  np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_upsample_nearest_equals_resize():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 3, 4, 2)))
  np.testing.assert_allclose(
      munit_blocks.upsample_nearest(x),
      jax.image.resize(x, (1, 6, 8, 2), 'nearest'))


def test_lsgan_losses_on_constant_maps():
  maps = lambda v: [jnp.full((2, s, s, 1), v) for s in (4, 2, 1)]  # noqa: E731
  assert float(munit_gan.d_loss(maps(1.0), maps(0.0))) == 0.0
  assert float(munit_gan.g_loss(maps(0.0))) == 3.0
  np.testing.assert_allclose(munit_gan.d_loss(maps(0.5), maps(0.25)),
                             3 * (0.25**2 + 0.5**2))
  # nsgan: BCE(σ(0), ·) = log 2 per term.
  np.testing.assert_allclose(munit_gan.d_loss(maps(0.0), maps(0.0), 'nsgan'),
                             6 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(munit_gan.g_loss(maps(0.0), 'nsgan'),
                             3 * np.log(2), rtol=1e-6)
  with pytest.raises(ValueError, match='gan_type'):
    munit_gan.g_loss(maps(0.0), 'wgan')


def test_initialisers():
  conv = munit_blocks.Conv(64, 3, kernel_init='kaiming')
  params = conv.init(jax.random.key(0), jnp.zeros((1, 8, 8, 32)))['params']
  kernel = np.asarray(params['kernel'])
  assert np.all(np.asarray(params['bias']) == 0)
  np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (32 * 9)), rtol=0.05)
  # Untruncated: a normal sample of this size has values beyond 2 std.
  assert np.abs(kernel).max() > 2.5 * np.sqrt(2 / (32 * 9))
  dis = munit_blocks.Conv(64, 3, kernel_init='gaussian')
  kernel = dis.init(jax.random.key(0), jnp.zeros((1, 8, 8, 32)))['params']
  np.testing.assert_allclose(np.asarray(kernel['kernel']).std(), 0.02,
                             rtol=0.05)
  with pytest.raises(ValueError, match='init'):
    munit_blocks.kernel_initializer('he')
