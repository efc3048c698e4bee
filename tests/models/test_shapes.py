"""Output shapes (spec §5) and full-width parameter counts of the networks.

Small runs use 32×32 images, width 8, batch 2, N = 3 with numpy-drawn
weights; the 108/216 shape checks and the full-width parameter counts use
`jax.eval_shape`, so nothing large is ever computed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax.models import gmvae_mdmm
from i2ijax.models import mdmm

B, N, W = 2, 3, 8
RNGS = {'params': jax.random.key(0), 'gumbel': jax.random.key(1),
        'reparam': jax.random.key(2), 'noise': jax.random.key(3)}


def abstract_init(module, *args, **kwargs):
  return jax.eval_shape(lambda: module.init(RNGS, *args, **kwargs))


def numpy_variables(module, *args, **kwargs):
  """Variables of the module's shapes drawn with numpy (no init compile)."""
  rng = np.random.default_rng(0)
  return jax.tree.map(
      lambda s: rng.normal(0, 0.05, s.shape).astype(np.float32),
      abstract_init(module, *args, **kwargs))


def count(module, *args, **kwargs):
  params = abstract_init(module, *args, **kwargs)['params']
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def out_shape(module, *args, method=None, **kwargs):
  variables = abstract_init(module, *args, **kwargs)
  return jax.eval_shape(
      lambda v: module.apply(v, *args, method=method, rngs=RNGS, **kwargs),
      variables)


def images(size):
  return jnp.zeros((B, size, size, 3))


C = jax.nn.one_hot(jnp.arange(B) % N, N)
Z = jnp.zeros((B, 8))


@pytest.mark.parametrize('size', [108, 216])
def test_mdmm_shapes_at_reference_sizes(size):
  h = size // 4
  assert out_shape(mdmm.ContentEncoder(W), images(size),
                   train=True).shape == (B, h, h, 4 * W)
  mu, logvar = out_shape(mdmm.AttributeEncoder(W), images(size), C)
  assert mu.shape == logvar.shape == (B, 8)
  z_c = jnp.zeros((B, h, h, 4 * W))
  assert out_shape(mdmm.Generator(4 * W), z_c, Z, C).shape == (B, size, size,
                                                               3)
  dis = mdmm.ImageDiscriminator(num_domains=N, image_size=size, width=W)
  adv, cls = out_shape(dis, images(size), train=False)
  side = {108: 4, 216: 6}[size]
  assert adv.shape == (B, side, side, 1) and cls.shape == (B, N)
  assert out_shape(mdmm.ContentDiscriminator(N), z_c).shape == (B, N)
  if size == 216:
    assert out_shape(mdmm.ContentDiscriminator(N, adaptive=False),
                     z_c).shape == (B, N)
  else:   # B3: the reference content D cannot run at 108.
    with pytest.raises(ValueError, match='B3'):
      out_shape(mdmm.ContentDiscriminator(N, adaptive=False), z_c)


def test_mdmm_runs_at_32():
  x = jax.random.uniform(jax.random.key(0), (B, 32, 32, 3), minval=-1)
  enc_c, enc_a = mdmm.ContentEncoder(W), mdmm.AttributeEncoder(W)
  gen = mdmm.Generator(4 * W)
  dis = mdmm.ImageDiscriminator(num_domains=N, image_size=32, width=W,
                                num_layers=4)
  dis_c = mdmm.ContentDiscriminator(N)
  z_c0 = jnp.zeros((B, 8, 8, 4 * W))
  v = dict(enc_c=numpy_variables(enc_c, x, train=False),
           enc_a=numpy_variables(enc_a, x, C),
           gen=numpy_variables(gen, z_c0, Z, C),
           dis=numpy_variables(dis, x, train=False),
           dis_c=numpy_variables(dis_c, z_c0))

  @jax.jit
  def run(v, x):
    z_c = enc_c.apply(v['enc_c'], x, train=False)
    z_noisy = enc_c.apply(v['enc_c'], x, train=True,
                          rngs={'noise': jax.random.key(1)})
    mu, logvar = enc_a.apply(v['enc_a'], x, C)
    image = gen.apply(v['gen'], z_c, mu, C)
    adv, cls = dis.apply(v['dis'], image, train=False)
    return z_c, z_noisy, mu, logvar, image, adv, cls, dis_c.apply(v['dis_c'],
                                                                  z_c)

  z_c, z_noisy, mu, logvar, image, adv, cls, logits_c = run(v, x)
  assert z_c.shape == (B, 8, 8, 4 * W)
  assert mu.shape == logvar.shape == (B, 8)
  assert image.shape == (B, 32, 32, 3)
  assert float(jnp.abs(image).max()) < 1
  assert adv.shape == (B, 4, 4, 1) and cls.shape == (B, N)
  assert logits_c.shape == (B, N)
  # The zero-padded adversarial head (B2) has an all-zero outer ring.
  assert float(jnp.abs(adv[:, 1:-1, 1:-1]).min()) > 0
  np.testing.assert_array_equal(adv[:, 0], 0)
  # Training mode adds N(0, 1) noise to the content code.
  noise = np.asarray(z_noisy - z_c)
  assert abs(noise.std() - 1) < 0.1 and abs(noise.mean()) < 0.1


def test_image_discriminator_minimum_size():
  dis = mdmm.ImageDiscriminator(num_domains=N, image_size=32, width=W)
  with pytest.raises(ValueError, match='at least 33x33.*num_layers <= 5'):
    out_shape(dis, images(32), train=False)
  dis5 = mdmm.ImageDiscriminator(num_domains=N, image_size=32, width=W,
                                 num_layers=5, zero_pad_head=False)
  adv, cls = out_shape(dis5, images(32), train=False)
  assert adv.shape == (B, 1, 1, 1) and cls.shape == (B, N)


def test_spectral_norm_state_in_batch_stats():
  dis = mdmm.ImageDiscriminator(num_domains=N, image_size=32, width=W,
                                num_layers=4, spectral_norm=True)
  variables = abstract_init(dis, images(32), train=False)
  stats = variables['batch_stats']
  assert sorted(stats) == [f'conv{i}' for i in range(4)]
  assert stats['conv3']['conv']['u'].shape == (4 * W,)
  assert 'batch_stats' not in abstract_init(
      mdmm.ImageDiscriminator(num_domains=N, image_size=32, width=W,
                              num_layers=4), images(32), train=False)


def test_gmvae_modules_at_32():
  k = 6   # more components than domains
  x = jax.random.uniform(jax.random.key(0), (B, 32, 32, 3), minval=-1)
  enc = gmvae_mdmm.GMVAEAttributeEncoder(num_components=k, width=W,
                                         feature_dim=8, z_dim=5, hidden=16)
  gen = gmvae_mdmm.GMVAEGenerator(content_channels=4 * W, z_dim=5,
                                  use_adain=True, double_convt=True, hidden=16,
                                  aux_head=True)
  z_c = jnp.zeros((B, 8, 8, 4 * W))
  y0 = jnp.zeros((B, k))
  v_enc = numpy_variables(enc, x, C, temperature=1.0)
  v_gen = numpy_variables(gen, z_c, jnp.zeros((B, 5)), y0)
  assert {'backbone', 'pzy', 'pxz'} <= set(v_gen['params'])
  assert {'adain', 'dec2_extra', 'dec3_extra'} <= set(
      v_gen['params']['backbone'])

  @jax.jit
  def run(x):
    q = enc.apply(v_enc, x, C, temperature=0.5, hard=True,
                  rngs={'gumbel': jax.random.key(1),
                        'reparam': jax.random.key(2)})
    image = gen.apply(v_gen, z_c + 1.0, q['z'], q['y'])
    prior = gen.apply(v_gen, q['y'], method='prior')
    small = gen.apply(v_gen, q['z'], method='reconstruct')
    return q, image, prior, small

  q, image, (y_mean, y_var), small = run(x)
  for key in ('mean', 'var', 'z'):
    assert q[key].shape == (B, 5)
  for key in ('logits', 'prob', 'y'):
    assert q[key].shape == (B, k)
  np.testing.assert_allclose(q['y'].sum(-1), 1, rtol=1e-5)
  assert set(np.unique(np.round(np.asarray(q['y']), 5))) <= {0.0, 1.0}
  assert float(q['var'].min()) > 0
  assert image.shape == (B, 32, 32, 3)
  assert y_mean.shape == y_var.shape == (B, 5) and float(y_var.min()) > 0
  assert small.shape == (B, 8, 8, 3)


def test_gmvae_generator_init_creates_prior_heads():
  gen = gmvae_mdmm.GMVAEGenerator(content_channels=4 * W, z_dim=8)
  params = abstract_init(gen, jnp.zeros((B, 8, 8, 4 * W)), Z, C)['params']
  assert params['pzy']['mean']['kernel'].shape == (N, 8)
  assert params['pzy']['var']['kernel'].shape == (N, 8)
  assert 'adain' not in params['backbone']


FULL = [
    ('E_c', lambda: count(mdmm.ContentEncoder(), images(216), train=False),
     5_099_136),
    ('E_a concat N=3', lambda: count(mdmm.AttributeEncoder(), images(216), C),
     1_347_152),
    ('G concat N=3', lambda: count(mdmm.Generator(),
                                   jnp.zeros((B, 54, 54, 256)), Z, C),
     5_465_273),
    ('D 216 N=3', lambda: count(
        mdmm.ImageDiscriminator(num_domains=3, image_size=216), images(216),
        train=False), 15_737_472),
    ('D 108 N=3', lambda: count(
        mdmm.ImageDiscriminator(num_domains=3, image_size=108), images(108),
        train=False), 15_712_896),
    ('D_c reference', lambda: count(
        mdmm.ContentDiscriminator(3, adaptive=False),
        jnp.zeros((B, 54, 54, 256))), 10_684_163),
    # [AUTH] sizes at 108 (N = K = 2, z = 108) without its unused fcVar
    # (27,756) and row-MLP (373,868): spec §4.3 / §4.4.
    ('GMVAE E_a', lambda: count(
        gmvae_mdmm.GMVAEAttributeEncoder(num_components=2, feature_dim=108,
                                         z_dim=108), images(108),
        jnp.zeros((B, 2)), temperature=1.0), 2_147_314 - 27_756),
    ('GMVAE G', lambda: count(
        gmvae_mdmm.GMVAEGenerator(z_dim=108), jnp.zeros((B, 27, 27, 256)),
        jnp.zeros((B, 108)), jnp.zeros((B, 2))), 10_337_668 - 373_868),
    ('GMVAE G double ConvT', lambda: count(
        gmvae_mdmm.GMVAEGenerator(z_dim=108, double_convt=True),
        jnp.zeros((B, 27, 27, 256)), jnp.zeros((B, 108)), jnp.zeros((B, 2))),
     10_337_668 - 373_868 + 773_004),
]


@pytest.mark.parametrize('name,counter,expected', FULL,
                         ids=[f[0] for f in FULL])
def test_full_width_parameter_counts(name, counter, expected):
  del name
  assert counter() == expected
