"""Parity of the MDMM networks with the PyTorch reference fixtures.

Each fixture (see shared/parity/README.md) holds reference weights, inputs and
outputs; the weights go through `torch_convert` and the outputs must agree to
1e-4 (plus rtol 1e-4 for the large ones).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity_fixtures
from parity_fixtures import nhwc, assert_close

from i2ijax.models import mdmm
from i2ijax.models import torch_convert


PARITY = parity_fixtures.find_dir('mdmm_e_content')
pytestmark = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load(PARITY, name)


def check_tree(module, variables, *args, **kwargs):
  """The converted variables have exactly the module's own structure."""
  expected = jax.eval_shape(
      lambda: module.init(jax.random.key(0), *args, **kwargs))
  got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.float32),
                     variables)
  expected = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                          dict(expected))
  assert jax.tree.structure(got) == jax.tree.structure(expected)
  assert jax.tree.leaves(got) == jax.tree.leaves(expected)


def test_content_encoder():
  arrays, _ = load('mdmm_e_content')
  net = mdmm.ContentEncoder(width=8)
  variables = torch_convert.content_encoder_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  check_tree(net, variables, x, train=False)
  out = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, x)
  assert_close(out.transpose(0, 3, 1, 2), arrays['output/forward.content'])


def test_attribute_encoder():
  arrays, _ = load('mdmm_e_attr_concat')
  net = mdmm.AttributeEncoder(width=8, nz=8)
  variables = torch_convert.attribute_encoder_variables(arrays)
  x, c = nhwc(arrays['input/forward.x']), arrays['input/forward.c']
  check_tree(net, variables, x, c)
  mu, logvar = jax.jit(net.apply)(variables, x, c)
  assert_close(mu, arrays['output/forward.mu'])
  assert_close(logvar, arrays['output/forward.logvar'])


def test_generator():
  arrays, _ = load('mdmm_g_concat')
  net = mdmm.Generator(content_channels=32, nz=8)
  variables = torch_convert.generator_variables(arrays)
  args = (nhwc(arrays['input/forward.content']), arrays['input/forward.z'],
          arrays['input/forward.c'])
  check_tree(net, variables, *args)
  image = jax.jit(net.apply)(variables, *args)
  assert_close(image.transpose(0, 3, 1, 2), arrays['output/forward.image'])


@pytest.mark.parametrize('name', ['mdmm_dis', 'mdmm_dis_216'])
def test_image_discriminator(name):
  arrays, meta = load(name)
  net = mdmm.ImageDiscriminator(
      num_domains=3, image_size=meta['constructor']['kwargs']['image_size'],
      width=8)
  variables = torch_convert.image_discriminator_variables(arrays)
  x = nhwc(arrays['input/forward.x'])
  check_tree(net, variables, x, train=False)
  adv, cls = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, x)
  assert_close(adv.transpose(0, 3, 1, 2), arrays['output/forward.out'])
  assert_close(cls, arrays['output/forward.out_cls'])
  # B2: the zero-padded bias-free head leaves an exact-zero ring.
  assert np.all(np.asarray(adv)[:, 0] == 0)
  assert np.all(np.asarray(adv)[:, :, -1] == 0)


def test_image_discriminator_spectral_norm():
  arrays, _ = load('mdmm_dis_sn')
  net = mdmm.ImageDiscriminator(num_domains=3, image_size=64, width=4,
                                spectral_norm=True)
  variables = torch_convert.image_discriminator_variables(arrays)
  x = nhwc(arrays['input/forward_train.x'])
  check_tree(net, variables, x, train=False)

  (adv, cls), state = jax.jit(
      lambda v, x: net.apply(v, x, train=True, mutable=['batch_stats']))(
          variables, x)
  assert_close(adv.transpose(0, 3, 1, 2), arrays['output/forward_train.out'])
  assert_close(cls, arrays['output/forward_train.out_cls'])
  for i in range(6):
    ref = f'output/forward_train.updated_buffer.model.{i}.model.1'
    stats = state['batch_stats'][f'conv{i}']['conv']
    assert_close(stats['u'], arrays[f'{ref}.weight_u'])
    kernel = variables['params'][f'conv{i}']['conv']['kernel']
    assert_close((kernel / stats['sigma']).transpose(3, 2, 0, 1),
                 arrays[f'{ref}.weight'])

  variables = {'params': variables['params'], **state}
  adv, cls = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, x)
  assert_close(adv.transpose(0, 3, 1, 2),
               arrays['output/forward_eval_after_train.out'])
  assert_close(cls, arrays['output/forward_eval_after_train.out_cls'])


def test_content_discriminator_reference():
  arrays, _ = load('mdmm_dis_content')
  net = mdmm.ContentDiscriminator(num_domains=3, adaptive=False)
  variables = torch_convert.content_discriminator_variables(arrays)
  z_c = nhwc(arrays['input/forward.content'])
  check_tree(net, variables, z_c)
  out = jax.jit(net.apply)(variables, z_c)
  assert_close(out, arrays['output/forward.out'])
  # Where the reference runs, the adaptive (B3-fixed) variant is the same.
  adaptive = mdmm.ContentDiscriminator(num_domains=3, adaptive=True)
  assert_close(jax.jit(adaptive.apply)(variables, z_c),
               arrays['output/forward.out'])


def test_converter_rejects_unused_parameters():
  arrays, _ = load('mdmm_e_content')
  arrays['param/extra.weight'] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match='extra.weight'):
    torch_convert.content_encoder_variables(arrays)
