"""Parity of the UNIT generator with the NVlabs/MUNIT `VAEGen` fixture.

Fixture `unit_vaegen` (width 16, n_downsample 2, n_res 2, 64 px): `encode`
gives the latent mean and `decode` the image. The same weights are loaded
into `UNITGenerator` for both domains, without sharing (the v1 code, exact)
and with one shared block (equal weights in both domains, so still exact).
"""

import jax
import numpy as np
import pytest

import parity_fixtures
from parity_fixtures import nhwc

from i2ijax.models import torch_convert_unit
from i2ijax.models import unit


PARITY = parity_fixtures.find_dir('unit_vaegen')
pytestmark = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load(PARITY, name)


def assert_close(ours, ref):
  """Our NHWC output against the reference's NCHW one."""
  parity_fixtures.assert_close(np.asarray(ours).transpose(0, 3, 1, 2), ref)


def _shapes(tree):
  return jax.tree.map(lambda a: tuple(np.shape(a)), dict(tree))


def _kwargs(meta):
  p = meta['constructor']['kwargs']['params']
  return dict(width=p['dim'], n_downsample=p['n_downsample'], n_res=p['n_res'],
              activation=p['activ'], pad_type=p['pad_type'])


def test_vaegen_encode_decode():
  arrays, meta = load('unit_vaegen')
  net = unit.VAEGen(**_kwargs(meta))
  variables = torch_convert_unit.vaegen_variables(arrays)
  x = nhwc(arrays['input/encode.x'])
  assert _shapes(variables) == _shapes(jax.eval_shape(
      lambda: net.init(jax.random.key(0), x)))
  mean = jax.jit(lambda v, x: net.apply(v, x, method='encode'))(variables, x)
  assert_close(mean, arrays['output/encode.mean'])
  image = jax.jit(lambda v, h: net.apply(v, h, method='decode'))(
      variables, nhwc(arrays['input/decode.hiddens']))
  assert_close(image, arrays['output/decode.image'])


@pytest.mark.parametrize('shared_layers', [0, 1])
def test_unit_generator_both_domains(shared_layers):
  arrays, meta = load('unit_vaegen')
  net = unit.UNITGenerator(shared_layers=shared_layers, **_kwargs(meta))
  variables = torch_convert_unit.unit_generator_variables(arrays, arrays,
                                                          shared_layers)
  x = nhwc(arrays['input/encode.x'])
  assert _shapes(variables) == _shapes(jax.eval_shape(
      lambda: net.init(jax.random.key(0), x)))
  h = nhwc(arrays['input/decode.hiddens'])
  for domain in (0, 1):
    mean = net.apply(variables, x, domain, method='encode')
    assert_close(mean, arrays['output/encode.mean'])
    image = net.apply(variables, h, domain, method='decode')
    assert_close(image, arrays['output/decode.image'])


def test_sharing_needs_equal_weights():
  arrays, _ = load('unit_vaegen')
  other = dict(arrays)
  name = 'param/enc.model.3.model.1.model.0.conv.weight'
  other[name] = other[name] + 1.0
  with pytest.raises(ValueError, match='identical'):
    torch_convert_unit.unit_generator_variables(arrays, other, 1)
  # Without sharing, different generators convert fine.
  torch_convert_unit.unit_generator_variables(arrays, other, 0)


def test_converter_rejects_unused_parameters():
  arrays, _ = load('unit_vaegen')
  arrays['param/extra.weight'] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match='extra.weight'):
    torch_convert_unit.vaegen_variables(arrays)
