"""Instance norm, the MDMM LayerNorm and the fixed-profile AdaIN, closed form."""

import jax
import numpy as np

from i2ijax import layers

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(2, 5, 4, 3)) * 3 + 1).astype(np.float32)


def test_instance_norm_closed_form():
  y = np.asarray(jax.jit(layers.instance_norm)(X))
  mean = X.mean(axis=(1, 2), keepdims=True)
  var = X.var(axis=(1, 2), keepdims=True)          # biased, as PyTorch IN
  np.testing.assert_allclose(y, (X - mean) / np.sqrt(var + 1e-5), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-3)


def test_layer_norm_over_chw_with_per_channel_affine():
  scale = np.array([0.5, 2.0, -1.0], np.float32)
  bias = np.array([0.1, 0.0, 3.0], np.float32)
  variables = {'params': {'scale': scale, 'bias': bias}}
  y = np.asarray(jax.jit(layers.LayerNorm().apply)(variables, X))
  mean = X.mean(axis=(1, 2, 3), keepdims=True)
  var = X.var(axis=(1, 2, 3), keepdims=True)
  np.testing.assert_allclose(y, (X - mean) / np.sqrt(var + 1e-5) * scale + bias,
                             rtol=1e-5, atol=1e-5)
  # Fresh parameters: γ = 1, β = 0.
  init = layers.LayerNorm().init(jax.random.key(0), X)['params']
  np.testing.assert_array_equal(init['scale'], np.ones(3))
  np.testing.assert_array_equal(init['bias'], np.zeros(3))


def test_adain_closed_form():
  s = RNG.normal(size=(2, 4)).astype(np.float32)
  adain = layers.AdaIN(hidden=6)
  shapes = jax.eval_shape(lambda: adain.init(jax.random.key(0), X, s))
  assert shapes['params']['mlp1']['kernel'].shape == (4, 6)
  assert shapes['params']['mlp2']['kernel'].shape == (6, 6)   # 2·C
  params = jax.tree.map(
      lambda a: RNG.normal(size=a.shape).astype(np.float32),
      shapes['params'])
  out = np.asarray(jax.jit(adain.apply)({'params': params}, X, s))
  h = np.maximum(s @ params['mlp1']['kernel'] + params['mlp1']['bias'], 0)
  gb = h @ params['mlp2']['kernel'] + params['mlp2']['bias']
  gamma, beta = gb[:, None, None, :3], gb[:, None, None, 3:]
  x_hat = (X - X.mean((1, 2), keepdims=True)) / np.sqrt(
      X.var((1, 2), keepdims=True) + 1e-5)
  np.testing.assert_allclose(out, (1 + gamma) * x_hat + beta, rtol=1e-4,
                             atol=1e-4)
