"""MDMM (multi-domain DRIT++) and GMVAE-MDMM: pure train steps and inference.

MDMM follows the reference loop (spec §2.3-§2.6): one forward pass per main
step, then in order
  1. dis1 on encoded-attribute fakes, dis2 on random-attribute fakes (D step);
  2. the EG update of E_c, E_a, G through the *updated* dis1;
  3. the G-alone update of E_c, G through the updated dis2, with gradients
     taken at the forward pass of step 1 (`jax.vjp` reuse, spec §2.5), so E_c
     and G take two Adam steps per main step;
and, when the content discriminator is on, `content_d_step` is its own pure
update that the loop calls on `(iteration + 1) % d_iter != 0` (spec §2.5).

GMVAE-MDMM (`GMVAEMDMM`) is the spec's recommended `gmvae_fixed` profile (§6):
  - E_a carries q(y|x) (Gumbel-softmax, per-epoch annealed τ, soft) and
    q(z|x,y); G carries the prior heads p(z|y) and is conditioned on y;
  - KL_a is the GMVAE one-sample MC estimate of KL(q(z|x,y) ‖ p(z|y)) against
    the prior of the *same* y that produced z (fixes seed quirks Q3/Q4),
    weight `loss.kl_a` (w_gauss = 1);
  - a CE anchor of q(y|x_real) on the true domain (Q12) and a differentiable
    label-similarity CE of q(y|fake_rand) on the target domain in G-alone
    (Q5), plus G-alone's adversarial and domain-cls terms (Q6);
  - random attributes for a target domain: a component y of that domain
    (uniform among its `components_per_domain`) and z ~ p(z|y) with
    stop-gradient on the prior heads (Q8); the random-branch fakes are
    conditioned on that one-hot y, exactly as at test time;
  - the generated image is the tanh output (no row-MLP x_rec, Q1); no
    gradient-clipping no-op (Q9); G-alone reuses the step's forward pass like
    MDMM (`model.galone_fresh_forward=True` re-runs it at the updated params,
    as the seed authors' code does).
With `components_per_domain = m > 1`, there are K = N·m mixture components and
component k belongs to domain k // m: domain probabilities are sums of
component probabilities (`losses.divergences.domain_cross_entropy`).

Deviations from the references, on purpose:
  - the discriminators judge real and fake images in one batched call (the
    reference makes two calls); with spectral norm on, the power iteration
    therefore runs once per D update, and G-side D calls use the stored
    vectors without updating them;
  - as in the reference, E_a receives the true domain c as input
    (`model.attr_uses_domain`); `cluster_acc` over *domains* is then not a
    test of unsupervised clustering (set it False for that), while the
    (domain, mode) clustering with m > 1 components is.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from i2ijax.layers import compute
from i2ijax.losses import adversarial
from i2ijax.losses import divergences
from i2ijax.losses import reconstruction
from i2ijax.models import gmvae_mdmm as gmvae_nets
from i2ijax.models import mdmm as mdmm_nets
from i2ijax.training import optim
from i2ijax.training import state as state_lib

G_NETS = ('enc_c', 'enc_a', 'gen')
GALONE_NETS = ('enc_c', 'gen')


def _halves(x):
  h = x.shape[0] // 2
  return x[:h], x[h:]


class MDMM:
  """MDMM networks, optimizers and pure steps (spec §2)."""

  # Which `config.optim.<group>` configures each network.
  GROUPS = {'enc_c': 'g', 'enc_a': 'g', 'gen': 'g', 'dis1': 'd', 'dis2': 'd',
            'dis_content': 'd_content'}
  # Row i of a batch pairs with row i + B/2 (the two halves translate into
  # each other's domains); multi-shard batches keep each shard's pairs.
  paired_halves = True

  def __init__(self, config, *, num_domains: int, image_size: int):
    self.config = config
    self.model_cfg = config.model
    self.loss_cfg = config.loss
    self.num_domains = num_domains
    self.image_size = image_size
    self.nets = self._build_networks()
    self.uses_content_dis = 'dis_content' in self.nets
    self.txs, self.schedules = optim.make_network_optimizers(
        config, {name: self.GROUPS[name] for name in self.nets})

  # ---------------------------------------------------------------- networks
  def _build_networks(self) -> dict[str, Any]:
    m = self.model_cfg
    options = compute.network_options(m)
    nets = dict(
        enc_c=mdmm_nets.ContentEncoder(width=m.width, **options),
        enc_a=mdmm_nets.AttributeEncoder(width=m.width, nz=m.nz, **options),
        gen=mdmm_nets.Generator(content_channels=4 * m.width, nz=m.nz,
                                **options))
    nets.update(self._build_discriminators())
    return nets

  def _build_discriminators(self) -> dict[str, Any]:
    m = self.model_cfg
    dtype = compute.network_options(m)['dtype']
    image_dis = functools.partial(
        mdmm_nets.ImageDiscriminator, width=m.dis_width,
        num_domains=self.num_domains, image_size=self.image_size,
        num_layers=m.dis_layers, zero_pad_head=m.dis_zero_pad_head,
        spectral_norm=m.dis_spectral_norm, dtype=dtype)
    nets = dict(dis1=image_dis(), dis2=image_dis())
    if m.content_dis:
      nets['dis_content'] = mdmm_nets.ContentDiscriminator(
          num_domains=self.num_domains, adaptive=m.content_dis_adaptive,
          dtype=dtype)
    return nets

  @property
  def cond_dim(self) -> int:
    return self.num_domains

  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """A fresh `TrainState` (jit-compiled init)."""
    return jax.jit(self._init)(rng)

  def _init(self, rng):
    size, n = self.image_size, self.num_domains
    x = jnp.zeros((2, size, size, 3), jnp.float32)
    c = jax.nn.one_hot(jnp.arange(2) % n, n)
    keys = dict(zip(self.nets, jax.random.split(rng, len(self.nets))))
    variables = {}
    variables['enc_c'] = self.nets['enc_c'].init(
        {'params': keys['enc_c'], 'noise': keys['enc_c']}, x, train=False)
    z_c = self.nets['enc_c'].apply(variables['enc_c'], x, train=False)
    variables['enc_a'] = self._init_enc_a(keys['enc_a'], x, c)
    variables['gen'] = self._init_gen(keys['gen'], z_c)
    for name in ('dis1', 'dis2'):
      variables[name] = self.nets[name].init(keys[name], x, train=False)
    if self.uses_content_dis:
      variables['dis_content'] = self.nets['dis_content'].init(
          keys['dis_content'], z_c)
    params = {k: v['params'] for k, v in variables.items()}
    model_state = {k: {c: v[c] for c in v if c != 'params'}
                   for k, v in variables.items()}
    ema_names = G_NETS if self.config.train.ema_decay > 0 else ()
    return state_lib.create(params, model_state, self.txs, ema_names)

  def _init_enc_a(self, key, x, c):
    return self.nets['enc_a'].init(key, x, c)

  def _init_gen(self, key, z_c):
    batch = z_c.shape[0]
    return self.nets['gen'].init(
        key, z_c, jnp.zeros((batch, self.model_cfg.nz)),
        jnp.zeros((batch, self.cond_dim)))

  # ------------------------------------------------------- model-specific
  def attr_input(self, c):
    """The domain code E_a sees: c, or zeros when `attr_uses_domain` is off."""
    return c if self.model_cfg.attr_uses_domain else jnp.zeros_like(c)

  def temperature(self, step):
    del step
    return jnp.float32(1.0)

  def encode_attr(self, params, x, c, rng, temperature):
    """Attribute code of x: dict with 'z' (sampled), 'cond' and extras."""
    del temperature
    mean, logvar = self.nets['enc_a'].apply({'params': params['enc_a']}, x,
                                            self.attr_input(c))
    eps = jax.random.normal(rng, mean.shape)
    return dict(z=mean + eps * jnp.exp(0.5 * logvar), cond=c, mean=mean,
                logvar=logvar)

  def random_attr(self, params, domain, rng, *, shared_halves=False):
    """Random attributes for target domains: z_r ~ N(0, I), cond = c.

    With `shared_halves` (training) both halves of the batch share one z_r,
    as the reference does (spec §2.3 step 4).
    """
    del params
    batch = domain.shape[0]
    rows = batch // 2 if shared_halves else batch
    z = jax.random.normal(rng, (rows, self.model_cfg.nz))
    if shared_halves:
      z = jnp.concatenate([z, z])
    return z, jax.nn.one_hot(domain, self.num_domains)

  def attr_losses(self, attr, domain):
    """EG-side attribute terms: KL_a on z_a (spec §2.4, summed, B14)."""
    del domain
    kl = divergences.kl_standard_normal_sum(attr['mean'], attr['logvar'])
    return self.loss_cfg.kl_a * kl, {'g/kl_a': kl}

  def galone_attr_losses(self, attr_rand, domain):
    del attr_rand, domain
    return 0.0, {}

  def generate(self, params, z_c, z, cond):
    return self.nets['gen'].apply({'params': params['gen']}, z_c, z, cond)

  # ------------------------------------------------------------- forward
  def forward(self, g_params, x, domain, rng, temperature):
    """One training forward pass (spec §2.3). Returns a dict of arrays."""
    c = jax.nn.one_hot(domain, self.num_domains)
    k_noise, k_attr, k_rand, k_noise2, k_attr2, k_attr3 = jax.random.split(
        rng, 6)
    z_c = self.nets['enc_c'].apply({'params': g_params['enc_c']}, x,
                                   train=True, rngs={'noise': k_noise})
    attr = self.encode_attr(g_params, x, c, k_attr, temperature)
    z_r, cond_r = self.random_attr(g_params, domain, k_rand,
                                   shared_halves=True)
    zc_a, zc_b = _halves(z_c)
    za_a, za_b = _halves(attr['z'])
    y_a, y_b = _halves(attr['cond'])
    zr_a, zr_b = _halves(z_r)
    yr_a, yr_b = _halves(cond_r)
    # Both directions (target A, then target B) of the encoded-attribute and
    # self-reconstruction fakes in one generator call, the random-attribute
    # fakes in another: the G-alone loss reads only the latter, so its
    # gradient pulls back through those rows alone (the generator is
    # per-sample, so the split changes no value).
    fakes = jnp.split(self.generate(
        g_params, jnp.concatenate([zc_b, zc_a, zc_a, zc_b]),
        jnp.concatenate([za_a, za_a, za_b, za_b]),
        jnp.concatenate([y_a, y_a, y_b, y_b])), 4)
    fake_enc = jnp.concatenate([fakes[0], fakes[2]])
    fake_self = jnp.concatenate([fakes[1], fakes[3]])
    fake_rand = self.generate(g_params, jnp.concatenate([zc_b, zc_a]),
                              jnp.concatenate([zr_a, zr_b]),
                              jnp.concatenate([yr_a, yr_b]))
    # Second cross translation (cross-cycle reconstruction).
    zc_rec = self.nets['enc_c'].apply({'params': g_params['enc_c']}, fake_enc,
                                      train=True, rngs={'noise': k_noise2})
    attr_rec = self.encode_attr(g_params, fake_enc, c, k_attr2, temperature)
    zc_rec_b, zc_rec_a = _halves(zc_rec)
    rec = self.generate(g_params, jnp.concatenate([zc_rec_a, zc_rec_b]),
                        attr_rec['z'], attr_rec['cond'])
    attr_rand = self.encode_attr(g_params, fake_rand, c, k_attr3, temperature)
    return dict(z_c=z_c, attr=attr, z_r=z_r, fake_enc=fake_enc,
                fake_self=fake_self, fake_rand=fake_rand, rec=rec,
                attr_rand=attr_rand)

  # -------------------------------------------------------------- losses
  def _apply_dis(self, name, params, model_state, images, *, update_stats):
    variables = {'params': params, **model_state}
    if update_stats and model_state:
      (adv, cls), new_state = self.nets[name].apply(
          variables, images, train=True, mutable=list(model_state))
      return adv, cls, new_state
    adv, cls = self.nets[name].apply(variables, images, train=False)
    return adv, cls, model_state

  def d_loss(self, params, model_state, name, x, c, fake):
    """L_D = adv(real, fake) + λ_cls·BCE(D_cls(x), c) (spec §2.4)."""
    batch = x.shape[0]
    adv, cls, new_state = self._apply_dis(
        name, params, model_state,
        jnp.concatenate([x, jax.lax.stop_gradient(fake)]), update_stats=True)
    loss_adv = (adversarial.gan_loss_summed_over_batch(adv[:batch], 1.0) +
                adversarial.gan_loss_summed_over_batch(adv[batch:], 0.0))
    loss_cls = adversarial.bce_with_logits(cls[:batch], c)
    loss = loss_adv + self.loss_cfg.cls_d * loss_cls
    return loss, (new_state, {f'd/{name}_adv': loss_adv,
                              f'd/{name}_cls': loss_cls})

  def content_d_loss(self, params, z_c, c):
    logits = self.nets['dis_content'].apply({'params': params},
                                            jax.lax.stop_gradient(z_c))
    return adversarial.bce_with_logits(logits, c)

  def _content_adv_target(self, c):
    if self.model_cfg.content_adv_target == 'flip':
      return 1.0 - c   # reference (B9)
    return jnp.full_like(c, 1.0 / self.num_domains)

  def eg_loss(self, outs, state, x, domain):
    """L_EG (spec §2.4) as a function of the forward outputs."""
    w = self.loss_cfg
    c = jax.nn.one_hot(domain, self.num_domains)
    adv, cls, _ = self._apply_dis('dis1', state.params['dis1'],
                                  state.model_state['dis1'], outs['fake_enc'],
                                  update_stats=False)
    terms = {
        'g/adv_enc': adversarial.gan_loss_summed_over_batch(adv, 1.0),
        'g/cls_enc': adversarial.bce_with_logits(cls, c),
        'g/rec_self': reconstruction.l1(x, outs['fake_self']),
        'g/rec_cycle': reconstruction.l1(x, outs['rec']),
        'g/kl_c': jnp.mean(outs['z_c']**2),
    }
    loss = (w.gan * terms['g/adv_enc'] + w.cls_g * terms['g/cls_enc'] +
            w.rec * (terms['g/rec_self'] + w.cycle_scale * terms['g/rec_cycle'])
            + w.kl_c * terms['g/kl_c'])
    attr_loss, attr_terms = self.attr_losses(outs['attr'], domain)
    loss += attr_loss
    terms.update(attr_terms)
    if self.uses_content_dis:
      logits = self.nets['dis_content'].apply(
          {'params': state.params['dis_content']}, outs['z_c'])
      terms['g/content_adv'] = adversarial.bce_with_logits(
          logits, self._content_adv_target(c))
      loss += w.content_adv * terms['g/content_adv']
    terms['g/eg_total'] = loss
    return loss, terms

  def galone_loss(self, outs, state, x, domain):
    """L_Galone (spec §2.4): adversarial + cls on dis2, latent regression."""
    del x
    w = self.loss_cfg
    c = jax.nn.one_hot(domain, self.num_domains)
    adv, cls, _ = self._apply_dis('dis2', state.params['dis2'],
                                  state.model_state['dis2'], outs['fake_rand'],
                                  update_stats=False)
    mean_a, mean_b = _halves(outs['attr_rand']['mean'])
    zr_a, zr_b = _halves(outs['z_r'])
    terms = {
        'g/adv_rand': adversarial.gan_loss_summed_over_batch(adv, 1.0),
        'g/cls_rand': adversarial.bce_with_logits(cls, c),
        'g/latent': (reconstruction.l1(mean_a, zr_a) +
                     reconstruction.l1(mean_b, zr_b)),
    }
    loss = (w.galone_gan * terms['g/adv_rand'] +
            w.galone_cls * w.cls_g * terms['g/cls_rand'] +
            w.latent * terms['g/latent'])
    extra, extra_terms = self.galone_attr_losses(outs['attr_rand'], domain)
    terms.update(extra_terms)
    loss += extra
    terms['g/galone_total'] = loss
    return loss, terms

  # --------------------------------------------------------------- steps
  def train_step(self, state, batch, rng):
    """One main MDMM iteration. Pure: (state, batch, rng) -> (state, metrics).

    Args:
      state: `TrainState`.
      batch: {'image': (B, S, S, 3) in [-1, 1], 'domain': (B,) int}, B even.
      rng: a key; it is folded with `state.iteration` here, so a loop may
        pass the same key every step.
    """
    x, domain = batch['image'], batch['domain']
    c = jax.nn.one_hot(domain, self.num_domains)
    rng = jax.random.fold_in(rng, state.iteration)
    k_fwd, k_fresh = jax.random.split(rng)
    temperature = self.temperature(state.step)
    g_params = {n: state.params[n] for n in G_NETS}
    forward = lambda p, k: self.forward(p, x, domain, k, temperature)
    outs = forward(g_params, k_fwd)

    # 1. Image discriminators on the (stop-gradient) fakes.
    metrics, d_grads, model_state = {}, {}, dict(state.model_state)
    for name, fake in (('dis1', outs['fake_enc']),
                       ('dis2', outs['fake_rand'])):
      (loss, (model_state[name], terms)), d_grads[name] = jax.value_and_grad(
          self.d_loss, has_aux=True)(state.params[name],
                                     state.model_state[name], name, x, c, fake)
      metrics.update(terms)
      metrics[f'd/{name}_total'] = loss
    state = state_lib.apply_gradients(state, d_grads, self.txs, self.schedules)
    state = state.replace(model_state=model_state)

    # 2. EG through the updated dis1; 3. G-alone through the updated dis2,
    # both differentiated at the same forward pass (pre-update params, same
    # keys). Written as the gradients of loss(forward(params)), so that each
    # pulls back only through what its loss reads (G-alone: the random fakes
    # and their attribute code, not the cross-cycle); the forward pass they
    # share with step 1 is the same computation, which XLA computes once.
    def loss_at_forward(loss_fn, at_state, key):
      return lambda p: loss_fn(forward(p, key), at_state, x, domain)

    state_after_d = state
    (_, eg_terms), eg_grads = jax.value_and_grad(
        loss_at_forward(self.eg_loss, state_after_d, k_fwd), has_aux=True)(
            g_params)
    state = state_lib.apply_gradients(state, eg_grads, self.txs,
                                      self.schedules)
    if self.model_cfg.galone_fresh_forward:
      ga_params, ga_key = {n: state.params[n] for n in G_NETS}, k_fresh
    else:
      ga_params, ga_key = g_params, k_fwd
    (_, ga_terms), ga_grads = jax.value_and_grad(
        loss_at_forward(self.galone_loss, state_after_d, ga_key),
        has_aux=True)(ga_params)
    state = state_lib.apply_gradients(
        state, {n: ga_grads[n] for n in GALONE_NETS}, self.txs, self.schedules)

    state = state_lib.update_ema(state, self.config.train.ema_decay)
    state = state.replace(step=state.step + 1, iteration=state.iteration + 1)
    metrics.update(eg_terms)
    metrics.update(ga_terms)
    metrics['train/temperature'] = temperature
    metrics['train/lr_g'] = self.schedules['gen'](state.step)
    metrics['train/lr_d'] = self.schedules['dis1'](state.step)
    return state, metrics

  def content_d_step(self, state, batch, rng):
    """Content-discriminator-only update (spec §2.5; clip in optim config)."""
    x, domain = batch['image'], batch['domain']
    c = jax.nn.one_hot(domain, self.num_domains)
    rng = jax.random.fold_in(rng, state.iteration)
    z_c = self.nets['enc_c'].apply({'params': state.params['enc_c']}, x,
                                   train=True, rngs={'noise': rng})
    loss, grads = jax.value_and_grad(self.content_d_loss)(
        state.params['dis_content'], z_c, c)
    state = state_lib.apply_gradients(state, {'dis_content': grads}, self.txs,
                                      self.schedules)
    state = state.replace(iteration=state.iteration + 1)
    return state, {'d/content': loss}

  def is_content_d_iteration(self, iteration: int) -> bool:
    """Whether the loop should call `content_d_step` at this iteration."""
    d_iter = self.model_cfg.d_iter
    return self.uses_content_dis and d_iter > 1 and (
        (iteration + 1) % d_iter != 0)

  # ----------------------------------------------------------- inference
  def encode_content(self, params, images):
    return self.nets['enc_c'].apply({'params': params['enc_c']}, images,
                                    train=False)

  def translate(self, params, images, source, target, rng):
    """Random-attribute translation of `images` to `target` domains.

    Args:
      params: the state's params (or EMA params with the same names).
      images: (B, S, S, 3) in [-1, 1]; source: (B,) int (unused by MDMM).
      target: (B,) int target domains; rng: key for the random attributes.
    Returns:
      (B, S, S, 3) in [-1, 1].
    """
    del source
    z, cond = self.random_attr(params, target, rng)
    return self.generate(params, self.encode_content(params, images), z, cond)

  def translate_reference(self, params, images, references, ref_domain, rng):
    """Translation with the attribute encoded from reference images."""
    c = jax.nn.one_hot(ref_domain, self.num_domains)
    attr = self.encode_attr(params, references, c, rng, self.temperature(
        jnp.int32(10**9)))
    return self.generate(params, self.encode_content(params, images),
                         attr['z'], self.reference_cond(attr))

  def reference_cond(self, attr):
    return attr['cond']

  cluster = None   # MDMM has no mixture to cluster with

  def sample_grid(self, params, images, source, rng, num_styles: int):
    """(n, 1 + N·num_styles, S, S, 3): inputs, then styles × target domains."""
    columns = [images]
    for target in range(self.num_domains):
      for k in range(num_styles):
        columns.append(self.translate(
            params, images, source, jnp.full_like(source, target),
            jax.random.fold_in(rng, k)))
    return jnp.stack(columns, axis=1)


class GMVAEMDMM(MDMM):
  """GMVAE-MDMM, the spec's `gmvae_fixed` profile (see module docstring)."""

  @property
  def num_components(self) -> int:
    return self.num_domains * self.model_cfg.components_per_domain

  @property
  def cond_dim(self) -> int:
    return self.num_components

  def _build_networks(self):
    m = self.model_cfg
    options = compute.network_options(m)
    nets = dict(
        enc_c=mdmm_nets.ContentEncoder(width=m.width, **options),
        enc_a=gmvae_nets.GMVAEAttributeEncoder(
            width=m.width, feature_dim=m.feature_dim, z_dim=m.nz,
            num_components=self.num_components, hidden=m.hidden, **options),
        gen=gmvae_nets.GMVAEGenerator(
            content_channels=4 * m.width, z_dim=m.nz, use_adain=m.use_adain,
            double_convt=m.double_convt, hidden=m.hidden, **options))
    nets.update(self._build_discriminators())
    return nets

  def _init_enc_a(self, key, x, c):
    k1, k2, k3 = jax.random.split(key, 3)
    return self.nets['enc_a'].init({'params': k1, 'gumbel': k2, 'reparam': k3},
                                   x, c, temperature=1.0)

  def temperature(self, step):
    """τ = max(τ0·exp(−rate·epoch), τ_min), epoch = step // steps_per_epoch."""
    m = self.model_cfg
    epoch = step // self.config.train.steps_per_epoch
    return jnp.maximum(m.gumbel_init_temp * jnp.exp(-m.gumbel_decay_rate *
                                                    epoch),
                       m.gumbel_min_temp).astype(jnp.float32)

  def _prior(self, params, y):
    return self.nets['gen'].apply({'params': params['gen']}, y,
                                  method='prior')

  def _domain_components(self, domain, rng):
    m = self.model_cfg.components_per_domain
    offset = jax.random.randint(rng, domain.shape, 0, m)
    return jax.nn.one_hot(domain * m + offset, self.num_components)

  def encode_attr(self, params, x, c, rng, temperature):
    k_gumbel, k_reparam = jax.random.split(rng)
    q = self.nets['enc_a'].apply(
        {'params': params['enc_a']}, x, self.attr_input(c),
        temperature=temperature,
        hard=False, rngs={'gumbel': k_gumbel, 'reparam': k_reparam})
    cond = q['y'] if self.model_cfg.cond_on == 'y' else c
    prior_mean, prior_var = self._prior(params, cond)
    return dict(z=q['z'], cond=cond, mean=q['mean'], var=q['var'],
                logits=q['logits'], prior_mean=prior_mean, prior_var=prior_var)

  def random_attr(self, params, domain, rng, *, shared_halves=False):
    """A component y of the target domain and z ~ p(z|y) (stop-gradient)."""
    del shared_halves   # each direction has its own target domain here
    k_comp, k_z = jax.random.split(rng)
    y = self._domain_components(domain, k_comp)
    mean, var = jax.lax.stop_gradient(self._prior(params, y))
    z = mean + jnp.sqrt(var + 1e-10) * jax.random.normal(k_z, mean.shape)
    return z, y

  def attr_losses(self, attr, domain):
    w = self.loss_cfg
    if self.model_cfg.kl_estimator == 'mc':
      kl = divergences.gmvae_gaussian_kl(attr['z'], attr['mean'], attr['var'],
                                         attr['prior_mean'], attr['prior_var'])
    else:
      kl = divergences.gaussian_kl(attr['mean'], attr['var'],
                                   attr['prior_mean'], attr['prior_var'])
    cat_ce = divergences.domain_cross_entropy(
        attr['logits'], domain, self.model_cfg.components_per_domain)
    cat_uniform = divergences.categorical_kl_uniform(attr['logits'])
    loss = w.kl_a * kl + w.cat_domain * cat_ce + w.cat_uniform * cat_uniform
    return loss, {'g/kl_a': kl, 'g/cat_domain': cat_ce,
                  'g/cat_uniform': cat_uniform}

  def galone_attr_losses(self, attr_rand, domain):
    label_sim = divergences.domain_cross_entropy(
        attr_rand['logits'], domain, self.model_cfg.components_per_domain)
    return self.loss_cfg.label_sim * label_sim, {'g/label_sim': label_sim}

  def reference_cond(self, attr):
    """Test time: one-hot y = argmax q(y|x_ref) (spec §4.6)."""
    return jax.nn.one_hot(jnp.argmax(attr['logits'], -1), self.num_components)

  def translate_reference(self, params, images, references, ref_domain, rng):
    c = jax.nn.one_hot(ref_domain, self.num_domains)
    attr = self.encode_attr(params, references, c, rng,
                            self.temperature(jnp.int32(10**9)))
    y = self.reference_cond(attr)
    return self.generate(params, self.encode_content(params, images),
                         attr['mean'], y)

  def cluster(self, params, images, domain):
    """argmax q(y|x) component of each image: (B,) int."""
    c = jax.nn.one_hot(domain, self.num_domains)
    q = self.nets['enc_a'].apply(
        {'params': params['enc_a']}, images, self.attr_input(c),
        temperature=1.0, hard=False,
        rngs={'gumbel': jax.random.key(0), 'reparam': jax.random.key(0)})
    return jnp.argmax(q['logits'], -1)
