"""Parity of the CycleGAN networks with the PyTorch reference fixtures.

`cyclegan_resnet_generator` (ngf 8, 9 blocks, 64 px) and
`cyclegan_nlayer_discriminator` (ndf 8, n_layers 3, 64 px): weights through
`torch_convert_cyclegan`, outputs within 1e-4 (shared/parity/README.md).
Also the init (N(0, 0.02²) weights, zero biases) and the spec's parameter
counts at full width.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity_fixtures
from parity_fixtures import nhwc

from i2ijax.models import cyclegan
from i2ijax.models import torch_convert_cyclegan as convert


PARITY = parity_fixtures.find_dir('cyclegan_resnet_generator')
needs_fixtures = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load(PARITY, name)


def check_tree(module, variables, *args):
  """The converted variables have exactly the module's own structure."""
  expected = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
  shapes = lambda tree: jax.tree.map(np.shape, dict(tree))
  assert jax.tree.structure(shapes(variables)) == jax.tree.structure(
      shapes(expected))
  assert jax.tree.leaves(shapes(variables)) == jax.tree.leaves(
      shapes(expected))


@needs_fixtures
def test_resnet_generator():
  arrays, meta = load('cyclegan_resnet_generator')
  kwargs = meta['constructor']['kwargs']
  net = cyclegan.ResnetGenerator(ngf=kwargs['ngf'],
                                 num_blocks=kwargs['n_blocks'])
  variables = convert.resnet_generator_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  check_tree(net, variables, x)
  out = jax.jit(net.apply)(variables, x)
  ref = arrays['output/forward.image']
  assert out.shape == (2, 64, 64, 3)
  np.testing.assert_allclose(np.asarray(out).transpose(0, 3, 1, 2), ref,
                             rtol=0, atol=1e-4)


@needs_fixtures
def test_patch_discriminator():
  arrays, meta = load('cyclegan_nlayer_discriminator')
  kwargs = meta['constructor']['kwargs']
  net = cyclegan.PatchDiscriminator(ndf=kwargs['ndf'],
                                    n_layers=kwargs['n_layers'])
  variables = convert.patch_discriminator_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  check_tree(net, variables, x)
  out = jax.jit(net.apply)(variables, x)
  ref = arrays['output/forward.out']
  assert out.shape == (2, 6, 6, 1)
  np.testing.assert_allclose(np.asarray(out).transpose(0, 3, 1, 2), ref,
                             rtol=0, atol=1e-4)


@needs_fixtures
def test_converter_rejects_unused_parameters():
  arrays, _ = load('cyclegan_nlayer_discriminator')
  arrays['param/extra.weight'] = np.zeros((1, 1, 1, 1), np.float32)
  with pytest.raises(ValueError, match='extra.weight'):
    convert.patch_discriminator_variables(arrays)


def _count(module, size):
  shapes = jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))


def test_parameter_counts_match_the_spec():
  assert _count(cyclegan.ResnetGenerator(num_blocks=9), 32) == 11_378_179
  assert _count(cyclegan.ResnetGenerator(num_blocks=6), 32) == 7_837_699
  assert _count(cyclegan.PatchDiscriminator(n_layers=3), 32) == 2_764_737


def test_shapes_and_init():
  x = jnp.zeros((2, 32, 32, 3))
  gen = cyclegan.ResnetGenerator(ngf=8, num_blocks=2)
  variables = jax.eval_shape(gen.init, jax.random.key(0), x)
  assert jax.eval_shape(gen.apply, variables, x).shape == (2, 32, 32, 3)
  dis = cyclegan.PatchDiscriminator(ndf=8, n_layers=3)
  params = jax.jit(dis.init)(jax.random.key(0), x)['params']
  assert jax.eval_shape(dis.apply, {'params': params}, x).shape == (
      2, 2, 2, 1)
  kernel = np.asarray(params['conv1']['kernel'])      # N(0, 0.02²)
  assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
  assert not any(np.any(np.asarray(layer['bias'])) for layer in
                 params.values())
  with pytest.raises(ValueError, match='at least 24 pixels'):
    jax.eval_shape(dis.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
