"""MUNIT: pure train step and inference (spec unit_munit.md §3.3-§3.5, §5).

Two domains a, b (rows [0, B/2) and [B/2, B) of a balanced batch); per
domain a generator (`gen_a`, `gen_b`: E^c, E^s, AdaIN MLP, decoder, no weight
sharing) and a multi-scale LSGAN discriminator (`dis_a`, `dis_b`); optimizer
groups 'g' (both generators) and 'd' (both discriminators), each Adam(0.5,
0.999) with coupled L2 1e-4 and lr 1e-4 halved every 100k steps.

One iteration, as the reference loop (§3.4):
  1. D step: fresh s_a, s_b ~ N(0, I); x_ba = G_a(E_b^c(x_b), s_a),
     x_ab = G_b(E_a^c(x_a), s_b) under stop-gradient;
     L_D = gan·Σ_{d∈{a,b}} LSGAN_D(D_d; real x_d, fake x_{·d}).
  2. G step through the *updated* D, with fresh s_a, s_b:
     (c_a, s_a') = E_a(x_a), x_a_recon = G_a(c_a, s_a'), x_ba = G_a(c_b, s_a),
     (c_b_rec, s_a_rec) = E_a(x_ba) (and symmetrically for b);
     L_G = gan·(L_adv_a + L_adv_b) + recon_x·(‖x_a_recon − x_a‖₁ + ·)
         + recon_s·(‖s_a_rec − s_a‖₁ + ·) + recon_c·(‖c_b_rec − c_b‖₁ + ·)
         + recon_x_cyc·(‖G_a(c_a_rec, s_a') − x_a‖₁ + ·)
         + vgg·(L_vgg(x_ba, x_b) + L_vgg(x_ab, x_a))
     with ‖·‖₁ the mean absolute error, no stop-gradient on the content
     targets (§8 #17), the explicit cycle term computed only when its
     weight is > 0 (§8 #16), and L_vgg the domain-invariant perceptual
     loss of §1.8 (`losses.perceptual`: IN'd relu5_3 features of a frozen
     VGG16, each translation against its own content source), computed
     only when `loss.vgg` > 0.
Implementation: the G step's forward pass runs once, before the D step
(`jax.vjp`), and also renders the D step's fakes: G is not updated between
the two steps, so this is the reference's math with one generator pass
less. Each generator decodes reconstruction, translation and D-step
translation in one call on a concatenated batch, and real and fake images go
through each D in one call; every norm is per sample, so these equal
separate calls. Keys: split(fold_in(rng, iteration)) → (D step, G step),
each split again into the styles of a and b.

Inference (pure functions of the params): `translate` decodes with random
styles s ~ N(0, I) (multimodal), `translate_reference` with the style that
the *target* domain's E^s encodes from a reference image (example-guided),
and `interpolate_styles` decodes a slerp (or linear) path between two styles.

The VGG16 weights (`models.vgg`, torchvision's rather than the reference's
Caffe ones: a documented deviation, spec §8 #9) are loaded by `init` only
when `loss.vgg` > 0. They live in `state.model_state['vgg']`, an argument of
the jitted step rather than a 59 MB compile-time constant, get no optimizer
and are never updated (they are also saved with each checkpoint).
"""

import jax
import jax.numpy as jnp

from i2ijax.layers import compute
from i2ijax.losses import munit_gan
from i2ijax.losses import perceptual
from i2ijax.losses import reconstruction
from i2ijax.models import munit as munit_nets
from i2ijax.models import vgg as vgg_lib
from i2ijax.training import optim
from i2ijax.training import state as state_lib

G_NETS = ('gen_a', 'gen_b')
D_NETS = ('dis_a', 'dis_b')


def _halves(x):
  h = x.shape[0] // 2
  return x[:h], x[h:]


def _split_maps(maps):
  """Score maps of a [first; second] batch → (first maps, second maps)."""
  return [_halves(m)[0] for m in maps], [_halves(m)[1] for m in maps]


def slerp(s0: jnp.ndarray, s1: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
  """Spherical interpolation of (B, D) codes at t (T,) → (B, T, D).

  s(t) = sin((1 − t)ω)/sin ω · s0 + sin(tω)/sin ω · s1 with ω the angle
  between s0 and s1; falls back to linear interpolation when sin ω ≈ 0.
  """
  n0 = s0 / jnp.linalg.norm(s0, axis=-1, keepdims=True)
  n1 = s1 / jnp.linalg.norm(s1, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(n0 * n1, -1), -1.0, 1.0))[:, None]
  sin = jnp.sin(omega)
  t = t[None, :]
  safe = jnp.where(sin > 1e-6, sin, 1.0)
  w0 = jnp.where(sin > 1e-6, jnp.sin((1 - t) * omega) / safe, 1 - t)
  w1 = jnp.where(sin > 1e-6, jnp.sin(t * omega) / safe, t)
  return w0[..., None] * s0[:, None] + w1[..., None] * s1[:, None]


class MUNIT:
  """MUNIT networks, optimizers and pure steps (spec §3)."""

  # Which `config.optim.<group>` configures each network.
  GROUPS = {'gen_a': 'g', 'gen_b': 'g', 'dis_a': 'd', 'dis_b': 'd'}
  balanced_batches = True     # rows [0, B/2) domain a, [B/2, B) domain b
  uses_content_dis = False
  cluster = None

  def __init__(self, config, *, num_domains: int, image_size: int):
    if num_domains != 2:
      raise ValueError(
          f'MUNIT translates between exactly 2 domains, got {num_domains}; '
          'select two with config.data.domains, e.g. ("day", "night").')
    if config.loss.vgg > 0:
      vgg_lib.weights_path()     # fails early, naming the install command
    self.config = config
    self.model_cfg = m = config.model
    self.loss_cfg = config.loss
    self.num_domains = num_domains
    self.image_size = image_size
    options = compute.network_options(m)
    self.gen = munit_nets.Generator(
        width=m.width, style_dim=m.style_dim, mlp_dim=m.mlp_dim,
        n_downsample=m.n_downsample, n_res=m.n_res, **options)
    self.dis = munit_nets.discriminator(
        dim=m.dis_width, n_layer=m.dis_layers, num_scales=m.dis_scales,
        dtype=options['dtype'])
    self.nets = dict(gen_a=self.gen, gen_b=self.gen, dis_a=self.dis,
                     dis_b=self.dis)
    self.txs, self.schedules = optim.make_network_optimizers(config,
                                                             self.GROUPS)

  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """A fresh `TrainState` (jit-compiled init).

    With `loss.vgg` > 0, the frozen VGG16 params are added as
    `model_state['vgg']` (loaded outside jit: no 59 MB constants).
    """
    state = jax.jit(self._init)(rng)
    if self.loss_cfg.vgg > 0:
      state = state.replace(model_state={
          **state.model_state, 'vgg': vgg_lib.load_vgg16_params()})
    return state

  def _init(self, rng):
    # The parameters are drawn with an RBG key (XLA's RngBitGenerator) seeded
    # from `rng`: XLA:CPU takes minutes to compile threefry for the ~100
    # parameter tensors of four networks, and a few seconds for RBG. Same
    # distributions; the values depend on `rng` and the backend.
    rng = jax.random.key(jax.random.bits(rng, (), jnp.uint32), impl='rbg')
    x = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    keys = dict(zip(self.nets, jax.random.split(rng, len(self.nets))))
    params = {}
    for name, net in self.nets.items():
      params[name] = net.init(keys[name], x)['params']
    ema_names = G_NETS if self.config.train.ema_decay > 0 else ()
    return state_lib.create(params, {name: {} for name in params}, self.txs,
                            ema_names)

  # ------------------------------------------------------------- networks
  def _gen(self, params, name, method, *args):
    return self.gen.apply({'params': params[name]}, *args, method=method)

  def _dis(self, params, name, images):
    return self.dis.apply({'params': params[name]}, images)

  def sample_styles(self, rng, batch: int) -> jnp.ndarray:
    """s ~ N(0, I): (batch, style_dim)."""
    return jax.random.normal(rng, (batch, self.model_cfg.style_dim))

  # -------------------------------------------------------------- forward
  def _styles(self, rng, batch):
    """(s_a, s_b) ~ N(0, I) from split(rng): the key contract of a step."""
    k_a, k_b = jax.random.split(rng)
    return self.sample_styles(k_a, batch), self.sample_styles(k_b, batch)

  def forward(self, g_params, x_a, x_b, rng, d_rng=None):
    """The G step's forward pass (spec §3.3 steps 1-6) as a dict of arrays.

    With `d_rng`, each decoder also renders the D step's translations
    x_ba_d, x_ab_d from fresh styles (split(d_rng) → s_a, s_b) in the same
    call: G is not updated between the two steps, so they equal the
    reference's separate D-step forward pass.
    """
    h = x_a.shape[0]
    s_a, s_b = self._styles(rng, h)
    c_a, s_a_enc = self._gen(g_params, 'gen_a', 'encode', x_a)
    c_b, s_b_enc = self._gen(g_params, 'gen_b', 'encode', x_b)
    contents_a, styles_a = [c_a, c_b], [s_a_enc, s_a]
    contents_b, styles_b = [c_b, c_a], [s_b_enc, s_b]
    if d_rng is not None:
      s_a_d, s_b_d = self._styles(d_rng, h)
      contents_a.append(c_b)
      styles_a.append(s_a_d)
      contents_b.append(c_a)
      styles_b.append(s_b_d)
    out_a = jnp.split(self._gen(g_params, 'gen_a', 'decode',
                                jnp.concatenate(contents_a),
                                jnp.concatenate(styles_a)), len(styles_a))
    out_b = jnp.split(self._gen(g_params, 'gen_b', 'decode',
                                jnp.concatenate(contents_b),
                                jnp.concatenate(styles_b)), len(styles_b))
    outs = dict(s_a=s_a, s_b=s_b, c_a=c_a, c_b=c_b, x_a_recon=out_a[0],
                x_ba=out_a[1], x_b_recon=out_b[0], x_ab=out_b[1])
    if d_rng is not None:
      outs['x_ba_d'], outs['x_ab_d'] = out_a[2], out_b[2]
    outs['c_b_rec'], outs['s_a_rec'] = self._gen(g_params, 'gen_a', 'encode',
                                                 outs['x_ba'])
    outs['c_a_rec'], outs['s_b_rec'] = self._gen(g_params, 'gen_b', 'encode',
                                                 outs['x_ab'])
    if self.loss_cfg.recon_x_cyc > 0:
      outs['x_aba'] = self._gen(g_params, 'gen_a', 'decode', outs['c_a_rec'],
                                s_a_enc)
      outs['x_bab'] = self._gen(g_params, 'gen_b', 'decode', outs['c_b_rec'],
                                s_b_enc)
    return outs

  # --------------------------------------------------------------- losses
  def d_loss(self, d_params, x_a, x_b, x_ba, x_ab):
    """gan · Σ_d LSGAN_D(D_d; real x_d, fake x_{·d}) (spec §3.3)."""
    gan_type = self.model_cfg.gan_type
    terms = {}
    for name, real, fake in (('dis_a', x_a, x_ba), ('dis_b', x_b, x_ab)):
      real_maps, fake_maps = _split_maps(self._dis(
          d_params, name, jnp.concatenate([real, jax.lax.stop_gradient(
              fake)])))
      terms[f'd/{name}'] = munit_gan.d_loss(real_maps, fake_maps, gan_type)
    loss = self.loss_cfg.gan * (terms['d/dis_a'] + terms['d/dis_b'])
    terms['d/total'] = loss
    return loss, terms

  def g_loss_from(self, outs, d_params, x_a, x_b, vgg_params=None):
    """L_G of spec §3.3 ('Code, exactly') from `forward`'s outputs.

    `vgg_params` (`state.model_state['vgg']`) are needed when `loss.vgg` >
    0. Returns (loss, terms); ‖·‖₁ is the mean absolute error.
    """
    w, gan_type, l1 = self.loss_cfg, self.model_cfg.gan_type, reconstruction.l1
    terms = {
        'g/adv_a': munit_gan.g_loss(self._dis(d_params, 'dis_a',
                                              outs['x_ba']), gan_type),
        'g/adv_b': munit_gan.g_loss(self._dis(d_params, 'dis_b',
                                              outs['x_ab']), gan_type),
        'g/recon_x_a': l1(outs['x_a_recon'], x_a),
        'g/recon_x_b': l1(outs['x_b_recon'], x_b),
        'g/recon_s_a': l1(outs['s_a_rec'], outs['s_a']),
        'g/recon_s_b': l1(outs['s_b_rec'], outs['s_b']),
        'g/recon_c_a': l1(outs['c_a_rec'], outs['c_a']),
        'g/recon_c_b': l1(outs['c_b_rec'], outs['c_b']),
    }
    loss = (w.gan * (terms['g/adv_a'] + terms['g/adv_b']) +
            w.recon_x * (terms['g/recon_x_a'] + terms['g/recon_x_b']) +
            w.recon_s * (terms['g/recon_s_a'] + terms['g/recon_s_b']) +
            w.recon_c * (terms['g/recon_c_a'] + terms['g/recon_c_b']))
    if w.recon_x_cyc > 0:
      terms['g/recon_x_cyc_a'] = l1(outs['x_aba'], x_a)
      terms['g/recon_x_cyc_b'] = l1(outs['x_bab'], x_b)
      loss += w.recon_x_cyc * (terms['g/recon_x_cyc_a'] +
                                 terms['g/recon_x_cyc_b'])
    if w.vgg > 0:
      terms['g/vgg_a'], terms['g/vgg_b'] = perceptual.translation_vgg_losses(
          vgg_params, [outs['x_ba'], outs['x_ab']], [x_b, x_a])
      loss += w.vgg * (terms['g/vgg_a'] + terms['g/vgg_b'])
    terms['g/total'] = loss
    return loss, terms

  def g_loss(self, g_params, d_params, x_a, x_b, rng, vgg_params=None):
    """L_G as a function of the generator params (styles from `rng`)."""
    return self.g_loss_from(self.forward(g_params, x_a, x_b, rng), d_params,
                            x_a, x_b, vgg_params)

  # ---------------------------------------------------------------- steps
  def train_step(self, state, batch, rng):
    """One MUNIT iteration (D step, then G step). Pure.

    The generators' forward pass runs once (`jax.vjp`): it also renders the
    D step's fakes, which need the same, not yet updated, G params. The D
    step updates dis_a, dis_b; L_G is then evaluated through the *updated*
    D and pulled back to gen_a, gen_b.

    Args:
      state: `TrainState`.
      batch: {'image': (B, S, S, 3) in [-1, 1], 'domain': (B,) int}; rows
        [0, B/2) are domain a, [B/2, B) domain b (balanced batches).
      rng: a key; it is folded with `state.iteration` here, so a loop may
        pass the same key every step. split → (D-step key, G-step key).
    Returns:
      (new state, metrics dict of scalars).
    """
    x_a, x_b = _halves(batch['image'])
    rng = jax.random.fold_in(rng, state.iteration)
    k_d, k_g = jax.random.split(rng)
    g_params = {n: state.params[n] for n in G_NETS}
    outs, pullback = jax.vjp(
        lambda p: self.forward(p, x_a, x_b, k_g, d_rng=k_d), g_params)

    d_params = {n: state.params[n] for n in D_NETS}
    (_, d_terms), d_grads = jax.value_and_grad(self.d_loss, has_aux=True)(
        d_params, x_a, x_b, outs['x_ba_d'], outs['x_ab_d'])
    state = state_lib.apply_gradients(state, d_grads, self.txs,
                                      self.schedules)

    d_params = {n: state.params[n] for n in D_NETS}     # updated D
    (_, g_terms), cotangent = jax.value_and_grad(
        self.g_loss_from, has_aux=True)(outs, d_params, x_a, x_b,
                                        state.model_state.get('vgg'))
    (g_grads,) = pullback(cotangent)
    state = state_lib.apply_gradients(state, g_grads, self.txs,
                                      self.schedules)

    state = state_lib.update_ema(state, self.config.train.ema_decay)
    state = state.replace(step=state.step + 1, iteration=state.iteration + 1)
    metrics = {**d_terms, **g_terms}
    metrics['train/lr_g'] = self.schedules['gen_a'](state.step)
    metrics['train/lr_d'] = self.schedules['dis_a'](state.step)
    return state, metrics

  def is_content_d_iteration(self, iteration: int) -> bool:
    del iteration
    return False

  # ------------------------------------------------------------ inference
  def _per_row(self, params, method, domain, *args):
    """gen_a or gen_b per row of (B,) `domain` (both run, rows selected)."""
    out_a = self._gen(params, 'gen_a', method, *args)
    out_b = self._gen(params, 'gen_b', method, *args)
    pick = lambda a, b: jnp.where(
        (domain == 0).reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return jax.tree.map(pick, out_a, out_b)

  def encode_content(self, params, images, source):
    """E^c of each row's source domain: (B, h, w, C)."""
    return self._per_row(params, 'encode_content', source, images)

  def encode_style(self, params, images, domain):
    """E^s of each row's domain: (B, style_dim)."""
    return self._per_row(params, 'encode_style', domain, images)

  def decode(self, params, content, style, target):
    """G of each row's target domain: images (B, S, S, 3) in [-1, 1]."""
    return self._per_row(params, 'decode', target, content, style)

  def translate(self, params, images, source, target, rng):
    """Multimodal translation: x → G_t(E_s^c(x), s), s ~ N(0, I).

    Args:
      params: the state's params (or EMA params with the same names).
      images: (B, S, S, 3) in [-1, 1]; source, target: (B,) int in {0, 1}.
      rng: key of the random styles.
    Returns:
      (B, S, S, 3) in [-1, 1].
    """
    style = self.sample_styles(rng, images.shape[0])
    return self.decode(params, self.encode_content(params, images, source),
                       style, target)

  def translate_reference(self, params, images, references, ref_domain, rng,
                          source=None):
    """Example-guided translation: G_t(E_s^c(x), E_t^s(reference)).

    The style comes from the *target* domain's style encoder applied to
    `references` (B, S, S, 3) of domain `ref_domain` (B,). The source of
    `images` is the other domain unless `source` (B,) is given.
    """
    del rng
    if source is None:
      source = 1 - ref_domain
    style = self.encode_style(params, references, ref_domain)
    return self.decode(params, self.encode_content(params, images, source),
                       style, ref_domain)

  def interpolate_styles(self, params, images, style_a, style_b, num: int, *,
                         source=None, target=None, spherical: bool = True):
    """Decodes `num` styles on the path from `style_a` to `style_b`.

    Args:
      params: the state's params.
      images: (B, S, S, 3) of domain `source` (default 0).
      style_a, style_b: (B, style_dim) or (style_dim,) end points (random or
        encoded codes).
      num: points on linspace(0, 1, num).
      source, target: (B,) int domains (defaults 0 → 1).
      spherical: slerp (default) or linear interpolation.
    Returns:
      (B, num, S, S, 3): content of each image with the interpolated styles.
    """
    batch = images.shape[0]
    source = jnp.zeros((batch,), jnp.int32) if source is None else source
    target = jnp.ones((batch,), jnp.int32) if target is None else target
    style_a = jnp.broadcast_to(style_a, (batch, self.model_cfg.style_dim))
    style_b = jnp.broadcast_to(style_b, (batch, self.model_cfg.style_dim))
    t = jnp.linspace(0.0, 1.0, num)
    if spherical:
      styles = slerp(style_a, style_b, t)
    else:
      styles = (style_a[:, None] * (1 - t)[None, :, None] +
                style_b[:, None] * t[None, :, None])
    content = self.encode_content(params, images, source)
    outs = [self.decode(params, content, styles[:, i], target)
            for i in range(num)]
    return jnp.stack(outs, axis=1)

  def sample_grid(self, params, images, source, rng, num_styles: int):
    """(n, 1 + 2·num_styles, S, S, 3): inputs, then styles × target domains.

    Column block t holds translations to domain t (a reconstruction-like
    random-style decode when t is the source domain).
    """
    columns = [images]
    for target in range(self.num_domains):
      for k in range(num_styles):
        columns.append(self.translate(
            params, images, source, jnp.full_like(source, target),
            jax.random.fold_in(rng, k)))
    return jnp.stack(columns, axis=1)
