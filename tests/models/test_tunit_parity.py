"""Parity of the TUNIT networks with clovaai/tunit fixtures, and shapes.

Fixtures (64 px, reduced widths): `tunit_generator` (nf 8, nf_mlp 32, style
16), `tunit_discriminator` (dim_in 8, max_conv_dim 64, K = 3),
`tunit_guidingnet` (VGG11 widths / 8, style 16, K = 3, eval-mode BN with
random running statistics). Parameter counts at the reference sizes come
from `jax.eval_shape` (no weights are allocated).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity_fixtures
from parity_fixtures import assert_close
from parity_fixtures import nhwc

from i2ijax.models import torch_convert_tunit as convert
from i2ijax.models import tunit

PARITY = parity_fixtures.find_dir('tunit_generator')
needs_fixtures = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load(PARITY, name)


def _shapes(tree):
  return jax.tree.map(lambda a: tuple(np.shape(a)), dict(tree))


def _count(tree):
  return int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree)))


def _check_tree(net, variables, *args, **kwargs):
  expected = jax.eval_shape(
      lambda: net.init(jax.random.key(0), *args, **kwargs))
  assert _shapes(expected) == _shapes(variables)


def _fixture_generator(meta):
  kw = meta['constructor']['kwargs']
  return tunit.Generator(image_size=kw['img_size'], style_dim=kw['sty_dim'],
                         nf=8, nf_mlp=32, n_res=kw['n_res'])


@needs_fixtures
def test_generator():
  arrays, meta = load('tunit_generator')
  net = _fixture_generator(meta)
  variables = convert.generator_variables(arrays)
  x = nhwc(arrays['input/forward.x_src'])
  s = jnp.asarray(arrays['input/forward.s_ref'])
  _check_tree(net, variables, x, s)
  content = net.apply(variables, x, method='encode')
  assert_close(content.transpose(0, 3, 1, 2),
               arrays['output/intermediate.content'])
  assert_close(net.apply(variables, s, method='adain_params'),
               arrays['output/intermediate.adain_params'])
  image = jax.jit(net.apply)(variables, x, s)
  assert_close(image.transpose(0, 3, 1, 2), arrays['output/forward.image'])
  decoded = net.apply(variables, content, s, method='decode')
  assert_close(decoded.transpose(0, 3, 1, 2), arrays['output/forward.image'])


@needs_fixtures
def test_discriminator():
  arrays, meta = load('tunit_discriminator')
  kw = meta['constructor']['kwargs']
  net = tunit.Discriminator(num_domains=kw['num_domains'], dim_in=8,
                            max_conv_dim=kw['max_conv_dim'])
  variables = convert.discriminator_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  y = jnp.asarray(arrays['input/forward.y'].astype(np.int32))
  _check_tree(net, variables, x, y)
  out, logits = jax.jit(net.apply)(variables, x, y)
  assert_close(out, arrays['output/forward.out'])
  assert_close(logits, arrays['output/forward.feat'].reshape(2, -1))


@needs_fixtures
def test_guiding_network():
  arrays, meta = load('tunit_guidingnet')
  k = meta['constructor']['kwargs']['output_k']
  net = tunit.GuidingNetwork(num_clusters=k['disc'], style_dim=k['cont'],
                             widths=tunit.vgg11_widths(8))
  variables = convert.guiding_net_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  _check_tree(net, variables, x)
  logits, style = jax.jit(net.apply)(variables, x)        # eval-mode BN
  for ours, ref in ((style, 'forward.cont'), (logits, 'forward.disc'),
                    (style, 'moco.cont'), (logits, 'iic.disc')):
    assert_close(ours, arrays[f'output/{ref}'])
  # Train mode normalises with the batch and updates the running stats.
  (train_logits, _), updated = jax.jit(functools.partial(
      net.apply, train=True, mutable=['batch_stats']))(variables, x)
  assert not np.allclose(train_logits, logits, atol=1e-3)
  old = variables['batch_stats']['bn0']['mean']
  assert not np.allclose(updated['batch_stats']['bn0']['mean'], old)


@needs_fixtures
@pytest.mark.parametrize('name, converter', [
    ('tunit_generator', convert.generator_variables),
    ('tunit_discriminator', convert.discriminator_variables),
    ('tunit_guidingnet', convert.guiding_net_variables)])
def test_converters_reject_unused_parameters(name, converter):
  arrays, _ = load(name)
  arrays['param/extra.weight'] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match='extra.weight'):
    converter(arrays)


# ------------------------------------------------- reference sizes, no torch
@pytest.mark.parametrize('size, expected', [(128, 27_333_763),
                                            (64, 7_143_299)])
def test_generator_shapes_and_parameter_count(size, expected):
  net = tunit.Generator(image_size=size)
  x, s = jnp.zeros((2, size, size, 3)), jnp.zeros((2, 128))
  variables = jax.eval_shape(lambda: net.init(jax.random.key(0), x, s))
  assert _count(variables) == expected
  bottleneck = 512 if size == 128 else 256
  content = jax.eval_shape(
      lambda v: net.apply(v, x, method='encode'), variables)
  assert content.shape == (2, 16, 16, bottleneck)
  adain = jax.eval_shape(
      lambda v: net.apply(v, s, method='adain_params'), variables)
  assert adain.shape == (2, 4992 if size == 128 else 2432)
  image = jax.eval_shape(net.apply, variables, x, s)
  assert image.shape == (2, size, size, 3)


def test_discriminator_shapes_and_parameter_count():
  net = tunit.Discriminator(num_domains=10)
  x, y = jnp.zeros((2, 128, 128, 3)), jnp.zeros((2,), jnp.int32)
  variables = jax.eval_shape(lambda: net.init(jax.random.key(0), x, y))
  assert _count(variables) == 70_935_242
  out, logits = jax.eval_shape(net.apply, variables, x, y)
  assert out.shape == (2,) and logits.shape == (2, 10)


def test_guiding_network_shapes_and_parameter_count():
  net = tunit.GuidingNetwork(num_clusters=10)
  x = jnp.zeros((2, 128, 128, 3))
  variables = jax.eval_shape(lambda: net.init(jax.random.key(0), x))
  assert _count(variables['params']) == 9_296_778
  assert set(variables) == {'params', 'batch_stats'}
  logits, style = jax.eval_shape(net.apply, variables, x)
  assert logits.shape == (2, 10) and style.shape == (2, 128)


def _random_variables(net, *args):
  """Variables of `net` filled from numpy (no PRNG kernels to compile)."""
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), *args))
  rng = np.random.default_rng(0)
  return jax.tree.map(
      lambda a: rng.normal(size=a.shape).astype(np.float32) * 0.3, shapes)


def test_discriminator_selects_the_logit_of_each_domain():
  net = tunit.Discriminator(num_domains=3, dim_in=4, max_conv_dim=8)
  x = np.random.default_rng(1).normal(size=(3, 16, 16, 3)).astype(np.float32)
  y = jnp.array([2, 0, 1])
  out, logits = jax.jit(net.apply)(_random_variables(net, x, y), x, y)
  np.testing.assert_allclose(out, np.asarray(logits)[np.arange(3), [2, 0, 1]])


def test_frn_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
  frn = tunit.FilterResponseNorm()
  variables = {'params': {'gamma': np.array([1.0, 2.0, 0.5], np.float32),
                          'beta': np.array([0.1, -0.2, 0.0], np.float32),
                          'tau': np.array([0.0, 0.3, -5.0], np.float32)}}
  p = variables['params']
  nu2 = np.mean(x**2, axis=(1, 2), keepdims=True)
  expected = np.maximum(p['gamma'] * x / np.sqrt(nu2 + 1e-6) + p['beta'],
                        p['tau'])
  np.testing.assert_allclose(frn.apply(variables, x), expected, rtol=1e-5,
                             atol=1e-6)


def test_adain_slicing_is_bias_then_scale_per_layer():
  channels = tunit.adain_channels(nf=2, n_downs=2, n_res=2)
  assert channels == [8, 8, 8, 8, 4, 2]
  p = jnp.arange(2 * sum(channels), dtype=jnp.float32)[None]
  pairs = tunit.split_adain_params(p, channels)
  np.testing.assert_array_equal(pairs[0][1][0], np.arange(0, 8))      # bias
  np.testing.assert_array_equal(pairs[0][0][0], np.arange(8, 16))     # scale
  np.testing.assert_array_equal(pairs[5][1][0], np.arange(72, 74))
  np.testing.assert_array_equal(pairs[5][0][0], np.arange(74, 76))
  with pytest.raises(ValueError, match='AdaIN vector'):
    tunit.split_adain_params(p[:, :-1], channels)


def test_initialisers():
  net = tunit.GuidingNetwork(num_clusters=4, style_dim=64, widths=(64, 'M'))
  params = net.init(jax.random.key(0), jnp.zeros((1, 2, 2, 3)))['params']
  kernel = np.asarray(params['conv0']['kernel'])                # fan_out
  np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (9 * 64)), rtol=0.1)
  assert np.abs(kernel).max() > 2.5 * np.sqrt(2 / (9 * 64))   # untruncated
  np.testing.assert_allclose(np.asarray(params['style_head']['kernel']).std(),
                             0.01, rtol=0.2)
  assert np.all(np.asarray(params['conv0']['bias']) == 0)
  assert np.all(np.asarray(params['bn0']['scale']) == 1)
  # G and D convs (`tunit.Conv` defaults): He normal fan_in, bias 0.
  conv = tunit.Conv(64, 3).init(jax.random.key(1), jnp.zeros((1, 3, 3, 32)))
  kernel = np.asarray(conv['params']['kernel'])
  np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (9 * 32)), rtol=0.1)
  assert np.all(np.asarray(conv['params']['bias']) == 0)
  with pytest.raises(ValueError, match='power of two'):
    jax.eval_shape(lambda: tunit.Generator(image_size=48).init(
        jax.random.key(0), jnp.zeros((1, 48, 48, 3)), jnp.zeros((1, 128))))
