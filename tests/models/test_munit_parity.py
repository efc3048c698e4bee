"""MUNIT generator: parity with the PyTorch `AdaINGen` fixture, shapes, sizes.

Fixture `munit_adaingen` (shared/parity/README.md): dim 8, mlp_dim 32,
style_dim 8, n_downsample 2, n_res 2, 64 px; calls `encode(x)` → content,
style; `mlp(style)` → AdaIN vector; `decode(content, style)` → image. The
weights go through `torch_convert_munit` and every output must agree to
1e-4 (plus rtol 1e-4).
"""

import jax
import jax.numpy as jnp
import numpy as np

import parity_fixtures

from i2ijax.models import munit
from i2ijax.models import munit_blocks
from i2ijax.models import torch_convert_munit


PARITY = parity_fixtures.find_dir('munit_adaingen')
needs_fixture = parity_fixtures.skip_unless_found(PARITY)


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


@needs_fixture
def test_adaingen_parity():
  arrays, meta = parity_fixtures.load(PARITY, 'munit_adaingen')
  cfg = meta['constructor']['kwargs']['params']
  net = munit.Generator(width=cfg['dim'], style_dim=cfg['style_dim'],
                        mlp_dim=cfg['mlp_dim'],
                        n_downsample=cfg['n_downsample'], n_res=cfg['n_res'])
  variables = torch_convert_munit.generator_variables(arrays)
  x = parity_fixtures.nhwc(arrays['input/encode.x'])
  expected = jax.eval_shape(lambda: net.init(jax.random.key(0), x))
  assert (jax.tree.structure(variables) ==
          jax.tree.structure(dict(expected)))
  assert [a.shape for a in jax.tree.leaves(variables)] == [
      a.shape for a in jax.tree.leaves(expected)]

  content, style = jax.jit(
      lambda v, x: net.apply(v, x, method='encode'))(variables, x)
  parity_fixtures.assert_close(content.transpose(0, 3, 1, 2), arrays['output/encode.content'])
  parity_fixtures.assert_close(style[:, :, None, None], arrays['output/encode.style'])

  style_in = jnp.asarray(arrays['input/decode.style'][:, :, 0, 0])
  adain = jax.jit(lambda v, s: net.apply(v, s, method='adain_params'))(
      variables, style_in)
  parity_fixtures.assert_close(adain, arrays['output/decode.adain_params'])
  image = jax.jit(lambda v, c, s: net.apply(v, c, s, method='decode'))(
      variables, parity_fixtures.nhwc(arrays['input/decode.content']), style_in)
  parity_fixtures.assert_close(image.transpose(0, 3, 1, 2), arrays['output/decode.image'])


def test_full_size_parameter_counts_and_shapes():
  """Spec §6.12-13 at the reference widths (shape inference only)."""
  gen, dis = munit.Generator(), munit.discriminator()
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  g_vars = jax.eval_shape(lambda x: gen.init(jax.random.key(0), x), x)
  params = g_vars['params']
  assert {k: _count(v) for k, v in params.items()} == {
      'enc_content': 5_385_856, 'enc_style': 2_764_936, 'dec': 5_754_627,
      'mlp': 1_120_768}
  assert _count(params) == 15_026_187
  d_vars = jax.eval_shape(lambda x: dis.init(jax.random.key(0), x), x)
  assert _count(d_vars) == 8_271_171
  content, style = jax.eval_shape(
      lambda v, x: gen.apply(v, x, method='encode'), g_vars, x)
  assert content.shape == (1, 64, 64, 256) and style.shape == (1, 8)
  adain = jax.eval_shape(lambda v, s: gen.apply(v, s, method='adain_params'),
                         g_vars, style)
  assert adain.shape == (1, 4096)
  image = jax.eval_shape(lambda v, c, s: gen.apply(v, c, s, method='decode'),
                         g_vars, content, style)
  assert image.shape == (1, 256, 256, 3)
  maps = jax.eval_shape(dis.apply, d_vars, x)
  assert [m.shape for m in maps] == [(1, 16, 16, 1), (1, 8, 8, 1),
                                     (1, 4, 4, 1)]


def test_adain_slicing_order():
  """Spec §10.2: layer j reads β = p[2Cj : 2Cj + C], γ = p[2Cj + C : ...]."""
  channels, layers = 4, 3
  p = jnp.arange(2 * channels * layers, dtype=jnp.float32)[None]
  pairs = munit_blocks.split_adain_params(p, channels, layers)
  for j, (gamma, beta) in enumerate(pairs):
    np.testing.assert_array_equal(beta[0], np.arange(8 * j, 8 * j + 4))
    np.testing.assert_array_equal(gamma[0], np.arange(8 * j + 4, 8 * j + 8))
