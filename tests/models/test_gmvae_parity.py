"""Parity of the GMVAE blocks with jariasf/GMVAE (PyTorch) fixtures.

The fixtures store the Gumbel uniform noise U and the Gaussian ε that the
reference drew; the modules take them as `gumbel_noise` / `gaussian_eps`.
"""

import jax
import numpy as np

import parity_fixtures
from parity_fixtures import assert_close

from i2ijax.models import gmvae
from i2ijax.models import torch_convert


PARITY = parity_fixtures.find_dir('gmvae_inference_net')
pytestmark = parity_fixtures.skip_unless_found(PARITY)


def load(name):
  return parity_fixtures.load_arrays(PARITY, name)


def test_gumbel_softmax():
  arrays = load('gmvae_gumbel_softmax')
  net = gmvae.GumbelSoftmax(6)
  variables = torch_convert.gumbel_softmax_variables(arrays)
  x, u = arrays['input/forward.x'], arrays['input/forward.gumbel_uniform_U']
  for mode, hard in (('soft', False), ('hard', True)):
    logits, prob, y = net.apply(variables, x, 0.5, hard, u)
    assert_close(logits, arrays[f'output/forward_{mode}.logits'])
    assert_close(prob, arrays[f'output/forward_{mode}.prob'])
    assert_close(y, arrays[f'output/forward_{mode}.y'])


def test_gumbel_hard_is_straight_through():
  arrays = load('gmvae_gumbel_softmax')
  net = gmvae.GumbelSoftmax(6)
  variables = torch_convert.gumbel_softmax_variables(arrays)
  x, u = arrays['input/forward.x'], arrays['input/forward.gumbel_uniform_U']
  weights = np.arange(6, dtype=np.float32)

  def loss(x, hard):
    return (net.apply(variables, x, 0.5, hard, u)[2] * weights).sum()

  np.testing.assert_allclose(jax.grad(loss)(x, True), jax.grad(loss)(x, False),
                             rtol=1e-5, atol=1e-6)


def test_gaussian_head():
  arrays = load('gmvae_gaussian')
  net = gmvae.GaussianHead(6)
  variables = torch_convert.gaussian_head_variables(arrays)
  mu, var, z = net.apply(variables, arrays['input/forward.x'],
                         arrays['input/forward.gaussian_eps'])
  assert_close(mu, arrays['output/forward.mu'])
  assert_close(var, arrays['output/forward.var'])
  assert_close(z, arrays['output/forward.z'])


def test_inference_net():
  arrays = load('gmvae_inference_net')
  net = gmvae.InferenceNet(z_dim=8, y_dim=5, hidden=64)
  variables = torch_convert.inference_net_variables(arrays)
  x = arrays['input/forward.x']
  u, eps = arrays['input/forward.gumbel_uniform_U'], arrays[
      'input/forward.gaussian_eps']
  keys = dict(logits='logits', prob='prob_cat', y='categorical', mean='mean',
              var='var', z='gaussian')
  for mode, hard in (('soft', False), ('hard', True)):
    out = net.apply(variables, x, 0.7, hard, u, eps)
    for ours, theirs in keys.items():
      assert_close(out[ours], arrays[f'output/forward_{mode}.{theirs}'])


def test_generative_net():
  arrays = load('gmvae_generative_net')
  net = gmvae.GenerativeNet(x_dim=32, z_dim=8, hidden=64)
  variables = torch_convert.generative_net_variables(arrays)
  out = net.apply(variables, arrays['input/forward.z'],
                  arrays['input/forward.y'])
  for key in ('y_mean', 'y_var', 'x_rec'):
    assert_close(out[key], arrays[f'output/forward.{key}'])


def test_noise_comes_from_rng_streams():
  net = gmvae.InferenceNet(z_dim=4, y_dim=3, hidden=8)
  x = np.ones((2, 5), np.float32)
  rngs = {'params': jax.random.key(0), 'gumbel': jax.random.key(1),
          'reparam': jax.random.key(2)}
  variables = net.init(rngs, x)
  a = net.apply(variables, x, rngs={'gumbel': jax.random.key(3),
                                    'reparam': jax.random.key(4)})
  b = net.apply(variables, x, rngs={'gumbel': jax.random.key(5),
                                    'reparam': jax.random.key(6)})
  assert not np.allclose(a['y'], b['y'])
  assert not np.allclose(a['z'], b['z'])
  np.testing.assert_allclose(a['logits'], b['logits'])
