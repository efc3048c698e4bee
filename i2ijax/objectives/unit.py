"""UNIT (Liu, Breuel, Kautz, NIPS 2017): shared-latent VAE-GANs, pure steps.

Networks (spec unit_munit.md §4.4, §4.6; `models.unit`): 'g' is one
`UNITGenerator` holding E_a, E_b, G_a, G_b with `model.shared_layers`
res blocks shared between the domains (1 = the paper, 0 = the public v1
code); 'd' holds the two multi-scale discriminators D_a, D_b. Optimizer
groups 'g' and 'd' (`config.optim.g` / `.d`): Adam(0.5, 0.999), lr 1e-4,
coupled L2 1e-4, lr halved every 100k steps (spec §5).

Batches are balanced (`balanced_batches`): rows [0, B/2) are domain a
(x_a), rows [B/2, B) domain b (x_b). One `train_step` is the v1 loop's
iteration (spec §4.7): a D step, then a G step through the *updated* D.

D step (fresh noise): z_a = E_a(x_a) + η_a, z_b = E_b(x_b) + η_b,
  x_ba = G_a(z_b), x_ab = G_b(z_a) (stop-gradient),
  L_D = gan·(D-loss(D_a; real x_a, fake x_ba) + D-loss(D_b; x_b, x_ab)).
G step (fresh noise), the latent q(z|x) = N(h, I) with h = E(x):
  z_a = h_a + η_a, z_b = h_b + η_b (the *same* z feeds reconstruction and
  translation, as the v1 code does);
  x_aa = G_a(z_a), x_bb = G_b(z_b), x_ba = G_a(z_b), x_ab = G_b(z_a);
  h_a' = E_b(x_ab), h_b' = E_a(x_ba); x_aba = G_a(h_a' + η), x_bab =
  G_b(h_b' + η) with fresh η;
  L_G = gan·(G-loss(D_a, x_ba) + G-loss(D_b, x_ab))
      + recon_x·(|x_aa − x_a| + |x_bb − x_b|)
      + recon_kl·(mean h_a² + mean h_b²)
      + recon_x_cyc·(|x_aba − x_a| + |x_bab − x_b|)
      + recon_kl_cyc·(mean h_a'² + mean h_b'²)
      + vgg·(L_vgg(x_ba, x_b) + L_vgg(x_ab, x_a)),
with |·| the mean absolute error and mean h² the mean over all elements:
the v1 code's KL(N(h, I) ‖ N(0, I)) surrogate (the paper's ½‖h‖² up to
scale, spec §8.5). GAN losses are `losses.munit_gan` (LSGAN summed over
scales by default). Config weights are the v1 ones (1, 10, 0.01, 10, 0.01);
the paper's λ0..λ4 = (10, 0.1, 100, 0.1, 100) are exactly ×10
(`configs/unit.py:paper_weights`). L_vgg is the domain-invariant
perceptual loss of spec §1.8 (`losses.perceptual`: IN'd relu5_3 features
of a frozen VGG16, each translation against its own content source), used
by the v1 gta2city configs and computed only when `loss.vgg` > 0; `init`
then loads the VGG16 params into `state.model_state['vgg']` (a step
argument rather than a 59 MB compile-time constant; no optimizer, never
updated, saved with checkpoints).

Test time (spec §4.8): translation decodes the latent *mean*,
x_ab = G_b(E_a(x_a)), so `translate` is deterministic and ignores its key
(`model.sample_at_test=True` adds η ~ N(0, I) instead). UNIT is unimodal:
`translate_reference` ignores the reference images and returns the
translation to the reference's domain.

Deviations: the discriminators judge real and fake images in one batched
call (the reference makes two; identical results without spectral norm);
the VGG16 of L_vgg has torchvision's weights and preprocessing instead of
the reference's Caffe ones (`models.vgg`, spec §8 #9).
"""

from typing import Any

import jax
import jax.numpy as jnp

from i2ijax.layers import compute
from i2ijax.losses import munit_gan
from i2ijax.losses import perceptual
from i2ijax.losses import reconstruction
from i2ijax.models import munit_blocks
from i2ijax.models import unit as unit_nets
from i2ijax.models import vgg as vgg_lib
from i2ijax.training import optim
from i2ijax.training import state as state_lib


def _halves(x):
  h = x.shape[0] // 2
  return x[:h], x[h:]


def _split_maps(outs):
  """Score maps of a [real; fake] batch → (real maps, fake maps)."""
  pairs = [_halves(o) for o in outs]
  return [p[0] for p in pairs], [p[1] for p in pairs]


def kl_surrogate(h: jnp.ndarray) -> jnp.ndarray:
  """mean(h²) over all elements: v1 UNIT's KL(N(h, I) ‖ N(0, I)) term."""
  return jnp.mean(jnp.square(h))


class UNIT:
  """UNIT networks, optimizers and pure steps (see module docstring)."""

  GROUPS = {'g': 'g', 'd': 'd'}
  balanced_batches = True     # rows [0, B/2) domain a, [B/2, B) domain b
  uses_content_dis = False
  cluster = None              # no mixture to cluster with

  def __init__(self, config, *, num_domains: int, image_size: int):
    if num_domains != 2:
      raise ValueError(
          f'UNIT translates between exactly 2 domains, got {num_domains}; '
          "select two with data.domains (e.g. ('day', 'night') on shapes).")
    m = config.model
    if m.dis_pad_type == 'reflect':
      need = munit_blocks.min_dis_input_size(m.dis_layers, m.dis_scales)
      if image_size < need:
        raise ValueError(
            f'data.image_size={image_size} is too small for a reflect-padded '
            f'discriminator with model.dis_layers={m.dis_layers} and '
            f'model.dis_scales={m.dis_scales}: it needs >= {need} px.')
    if not 0 <= m.shared_layers <= m.n_res:
      raise ValueError(f'model.shared_layers={m.shared_layers} must be in '
                       f'[0, model.n_res={m.n_res}].')
    self.config = config
    self.model_cfg = m
    self.loss_cfg = config.loss
    # Configs saved before `loss.vgg` existed have no such field.
    self.vgg_weight = config.loss.get('vgg', 0.0)
    if self.vgg_weight > 0:
      vgg_lib.weights_path()     # fails early, naming the install command
    self.num_domains = num_domains
    self.image_size = image_size
    options = compute.network_options(m)
    self.nets = {
        'g': unit_nets.UNITGenerator(
            width=m.width, n_downsample=m.n_downsample, n_res=m.n_res,
            shared_layers=m.shared_layers, activation=m.activation,
            pad_type=m.pad_type, kernel_init=m.init, **options),
        'd': unit_nets.DomainDiscriminators(
            dim=m.dis_width, n_layer=m.dis_layers,
            num_scales=m.dis_scales, norm=m.dis_norm,
            activation=m.dis_activation, pad_type=m.dis_pad_type,
            kernel_init=m.dis_init, dtype=options['dtype']),
    }
    self.txs, self.schedules = optim.make_network_optimizers(config,
                                                             self.GROUPS)

  # ---------------------------------------------------------------- state
  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """A fresh `TrainState` (jit-compiled init).

    With `loss.vgg` > 0, the frozen VGG16 params are added as
    `model_state['vgg']` (loaded outside jit: no 59 MB constants).
    """
    state = jax.jit(self._init)(rng)
    if self.vgg_weight > 0:
      state = state.replace(model_state={
          **state.model_state, 'vgg': vgg_lib.load_vgg16_params()})
    return state

  def _init(self, rng):
    x = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    keys = dict(zip(self.nets, jax.random.split(rng, len(self.nets))))
    variables = {name: net.init(keys[name], x)
                 for name, net in self.nets.items()}
    params = {k: v['params'] for k, v in variables.items()}
    model_state = {k: {c: v[c] for c in v if c != 'params'}
                   for k, v in variables.items()}
    ema_names = ('g',) if self.config.train.ema_decay > 0 else ()
    return state_lib.create(params, model_state, self.txs, ema_names)

  # -------------------------------------------------------------- networks
  def encode(self, g_params, x, domain: int):
    """Latent mean h = E_domain(x); `domain` a Python int."""
    return self.nets['g'].apply({'params': g_params}, x, domain,
                                method='encode')

  def decode(self, g_params, z, domain: int):
    """G_domain(z) in [-1, 1]; `domain` a Python int."""
    return self.nets['g'].apply({'params': g_params}, z, domain,
                                method='decode')

  def discriminate(self, d_params, d_state, x, domain: int, *,
                   update_stats: bool = False):
    """Score maps of D_domain and the (possibly updated) model state."""
    variables = {'params': d_params, **d_state}
    if update_stats and d_state:
      return self.nets['d'].apply(variables, x, domain, update_stats=True,
                                  mutable=list(d_state))
    return self.nets['d'].apply(variables, x, domain), d_state

  # ---------------------------------------------------------------- losses
  def d_loss(self, d_params, d_state, x_a, x_b, x_ba, x_ab):
    """L_D = gan·Σ_domains D-loss (spec §4.7 dis_update), fakes constant."""
    gan_type = self.model_cfg.gan_type
    terms, new_state = {}, d_state
    for domain, name, real, fake in ((0, 'a', x_a, x_ba), (1, 'b', x_b, x_ab)):
      outs, new_state = self.discriminate(
          d_params, new_state, jnp.concatenate(
              [real, jax.lax.stop_gradient(fake)]), domain, update_stats=True)
      real_maps, fake_maps = _split_maps(outs)
      terms[f'd/{name}'] = munit_gan.d_loss(real_maps, fake_maps, gan_type)
    total = self.loss_cfg.gan * (terms['d/a'] + terms['d/b'])
    terms['d/total'] = total
    return total, (new_state, terms)

  def g_forward(self, g_params, x_a, x_b, rng):
    """The G step's forward pass (spec §4.7 steps 1-5): dict of arrays."""
    k_a, k_b, k_a_rec, k_b_rec = jax.random.split(rng, 4)
    h_a = self.encode(g_params, x_a, 0)
    h_b = self.encode(g_params, x_b, 1)
    z_a = h_a + jax.random.normal(k_a, h_a.shape, h_a.dtype)
    z_b = h_b + jax.random.normal(k_b, h_b.shape, h_b.dtype)
    z = jnp.concatenate([z_a, z_b])
    x_aa, x_ba = _halves(self.decode(g_params, z, 0))
    x_ab, x_bb = _halves(self.decode(g_params, z, 1))
    h_b_rec = self.encode(g_params, x_ba, 0)
    h_a_rec = self.encode(g_params, x_ab, 1)
    x_aba = self.decode(g_params, h_a_rec + jax.random.normal(
        k_a_rec, h_a_rec.shape, h_a_rec.dtype), 0)
    x_bab = self.decode(g_params, h_b_rec + jax.random.normal(
        k_b_rec, h_b_rec.shape, h_b_rec.dtype), 1)
    return dict(h_a=h_a, h_b=h_b, x_aa=x_aa, x_bb=x_bb, x_ab=x_ab, x_ba=x_ba,
                h_a_rec=h_a_rec, h_b_rec=h_b_rec, x_aba=x_aba, x_bab=x_bab)

  def g_loss(self, g_params, d_params, d_state, x_a, x_b, rng,
             vgg_params=None):
    """L_G of spec §4.7 (gen_update); D parameters are constants.

    `vgg_params` (`state.model_state['vgg']`) are needed when `loss.vgg` >
    0.
    """
    w, gan_type = self.loss_cfg, self.model_cfg.gan_type
    outs = self.g_forward(g_params, x_a, x_b, rng)
    adv_a, _ = self.discriminate(d_params, d_state, outs['x_ba'], 0)
    adv_b, _ = self.discriminate(d_params, d_state, outs['x_ab'], 1)
    terms = {
        'g/adv_a': munit_gan.g_loss(adv_a, gan_type),
        'g/adv_b': munit_gan.g_loss(adv_b, gan_type),
        'g/recon_x_a': reconstruction.l1(outs['x_aa'], x_a),
        'g/recon_x_b': reconstruction.l1(outs['x_bb'], x_b),
        'g/kl_a': kl_surrogate(outs['h_a']),
        'g/kl_b': kl_surrogate(outs['h_b']),
        'g/cyc_a': reconstruction.l1(outs['x_aba'], x_a),
        'g/cyc_b': reconstruction.l1(outs['x_bab'], x_b),
        'g/kl_cyc_a': kl_surrogate(outs['h_a_rec']),
        'g/kl_cyc_b': kl_surrogate(outs['h_b_rec']),
    }
    total = sum(
        weight * (terms[f'g/{term}_a'] + terms[f'g/{term}_b'])
        for term, weight in (('adv', w.gan), ('recon_x', w.recon_x),
                             ('kl', w.recon_kl), ('cyc', w.recon_x_cyc),
                             ('kl_cyc', w.recon_kl_cyc)))
    if self.vgg_weight > 0:
      terms['g/vgg_a'], terms['g/vgg_b'] = perceptual.translation_vgg_losses(
          vgg_params, [outs['x_ba'], outs['x_ab']], [x_b, x_a])
      total += self.vgg_weight * (terms['g/vgg_a'] + terms['g/vgg_b'])
    # 'eg_total' (encoders + generators) is the name the loop logs by.
    terms['g/eg_total'] = total
    return total, terms

  # ----------------------------------------------------------------- step
  def train_step(self, state, batch, rng):
    """One UNIT iteration: D step, then G step through the updated D.

    Args:
      state: `TrainState`.
      batch: {'image': (B, S, S, 3) in [-1, 1], 'domain': (B,)}; rows
        [0, B/2) are domain a and [B/2, B) domain b (labels not read).
      rng: a key; it is folded with `state.iteration` here, so a loop may
        pass the same key every step.
    Returns:
      (new state, dict of scalar metrics).
    """
    x_a, x_b = _halves(batch['image'])
    rng = jax.random.fold_in(rng, state.iteration)
    k_d_a, k_d_b, k_g = jax.random.split(rng, 3)

    # D step: fresh latent samples, fakes without gradient.
    g_params = jax.lax.stop_gradient(state.params['g'])
    h_a = self.encode(g_params, x_a, 0)
    h_b = self.encode(g_params, x_b, 1)
    x_ba = self.decode(g_params, h_b + jax.random.normal(
        k_d_b, h_b.shape, h_b.dtype), 0)
    x_ab = self.decode(g_params, h_a + jax.random.normal(
        k_d_a, h_a.shape, h_a.dtype), 1)
    (_, (d_state, metrics)), d_grads = jax.value_and_grad(
        self.d_loss, has_aux=True)(state.params['d'], state.model_state['d'],
                                   x_a, x_b, x_ba, x_ab)
    state = state_lib.apply_gradients(state, {'d': d_grads}, self.txs,
                                      self.schedules)
    state = state.replace(model_state={**state.model_state, 'd': d_state})

    # G step through the updated discriminators.
    (_, g_terms), g_grads = jax.value_and_grad(self.g_loss, has_aux=True)(
        state.params['g'], state.params['d'], state.model_state['d'], x_a,
        x_b, k_g, state.model_state.get('vgg'))
    state = state_lib.apply_gradients(state, {'g': g_grads}, self.txs,
                                      self.schedules)
    state = state_lib.update_ema(state, self.config.train.ema_decay)
    metrics.update(g_terms)
    metrics['train/lr_g'] = self.schedules['g'](state.step)
    metrics['train/lr_d'] = self.schedules['d'](state.step)
    state = state.replace(step=state.step + 1, iteration=state.iteration + 1)
    return state, metrics

  # ------------------------------------------------------------ inference
  def _latent(self, params, images, source, rng):
    h = jnp.where((source == 0)[:, None, None, None],
                  self.encode(params['g'], images, 0),
                  self.encode(params['g'], images, 1))
    if self.model_cfg.sample_at_test:
      h = h + jax.random.normal(rng, h.shape, h.dtype)
    return h

  def translate(self, params, images, source, target, rng):
    """x → G_target(E_source(x)), the latent mean (spec §4.8).

    Args:
      params: the state's params (or EMA params with the same names).
      images: (B, S, S, 3) in [-1, 1].
      source, target: (B,) int in {0, 1}; source == target reconstructs.
      rng: used only with `model.sample_at_test`.
    Returns:
      (B, S, S, 3) in [-1, 1].
    """
    h = self._latent(params, images, source, rng)
    return jnp.where((target == 0)[:, None, None, None],
                     self.decode(params['g'], h, 0),
                     self.decode(params['g'], h, 1))

  def translate_reference(self, params, images, references, ref_domain, rng):
    """UNIT has no style: `translate` to `ref_domain`, references unused.

    The source domain is taken as the other one (2 domains).
    """
    del references
    return self.translate(params, images, 1 - ref_domain, ref_domain, rng)

  def sample_grid(self, params, images, source, rng, num_styles: int):
    """(n, 1 + 2·k, S, S, 3): inputs, then k outputs per target domain.

    k = 1 (deterministic) unless `model.sample_at_test`, then num_styles.
    The column of the source's own domain is its reconstruction.
    """
    styles = num_styles if self.model_cfg.sample_at_test else 1
    columns: list[Any] = [images]
    for target in range(self.num_domains):
      for k in range(styles):
        columns.append(self.translate(params, images, source,
                                      jnp.full_like(source, target),
                                      jax.random.fold_in(rng, k)))
    return jnp.stack(columns, axis=1)
