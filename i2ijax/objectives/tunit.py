"""TUNIT: pure train step and inference (spec tunit_cyclegan.md §1.6-§1.8).

No domain labels in training: batches mix all domains of the source
(`batch['domain']` is ignored) and the guiding network E clusters them into
K pseudo-domains. Networks and optimizer groups (§1.7.1):
  guide (E, group 'e'): Adam(0.9, 0.999) 1e-4, coupled L2 1e-3;
  gen (G, group 'g') and dis (D, group 'd'): RMSprop(α 0.99, eps outside
  the square root) 1e-4, coupled L2 1e-4.
Two momentum copies live in `state.ema_params`: 'guide' (E_EMA, the MoCo key
encoder, decay `model.moco_momentum` from step 0) and 'gen' (G_EMA, decay
`train.ema_decay` from `train.ema_start_steps`; before that it follows G).
E's and E_EMA's BatchNorm statistics are `model_state['guide']` and
`model_state['guide_ema']`; E's are copied into E_EMA's every
`model.bn_copy_every` steps (the reference copies once per 1000-iteration
epoch). `model_state['queue']` is the 1024-key negative queue, a fixed ring
buffer with a validity mask (`losses.contrastive.Queue`).

One iteration (§1.7.3), with x⁺ = augment(x) drawn inside the step:
  1. E step: L_E = InfoNCE(E_s(x), sg E_EMA_s(x⁺), Q) + iic·L_IIC(p(x), p(x⁺)),
     × `loss.e_after_warmup` once step ≥ `train.warmup_steps`.
  then, only after the warm-up (`train_step`; `warmup_step` stops here and
  the loop calls it while `is_warmup_step(step)`):
  2. pseudo labels y = argmax E_c(x) of the *updated* E; references
     x_ref = x[perm], y_ref = y[perm]; fakes G(x, E_s(x_ref)), no gradient.
  3. D step: hinge(D(x_ref, y_ref), D(fake, y_ref)) + gp·R1(x_ref, y_ref).
  4. G step, also a second E step: s_src = E_s(x), s_ref = E_s(x_ref),
     x_fake = G(x, s_ref), x_rec = G(x, s_src);
     L_G = adv·(−D(x_fake, y_ref) − D(x_rec, y)) + rec·|x_rec − x|
           + style·InfoNCE(E_s(x_fake), sg E_EMA_s(x_ref), Q)
     through the updated D, gradients to G and E.
  5. enqueue E_EMA_s(x⁺) of step 1; E_EMA and G_EMA updates.
Every call of E or E_EMA normalises with its own batch (spec A8); the
running statistics are threaded through the calls in order.

Choices where the spec leaves room (documented deviations):
  * The queue starts empty (spec A6 alternative): the first step's InfoNCE
    has no negatives and is 0; from step 2 on it matches the reference.
  * G_EMA before `ema_start_steps` equals G, then decays (the reference
    copies G at the start step, then decays: the same).
  * x⁺ is built from the S×S training image, not the original resolution
    (`data.augment`, spec Part III note 15).
  * Data parallel (spec A23): the step is written for the global batch, so
    under `jit` with a sharded batch every BatchNorm call uses the
    statistics of the whole batch (synchronised BN), unlike the reference's
    per-GPU statistics.

Inference (pure functions of `inference_params`): `translate` to a true
domain t decodes with the average E_EMA style of the pseudo-domain matched
to t (§1.8.3; the table is built by `style_table` from real images, the
matching is the Hungarian one of cluster_acc); `translate_reference`
decodes with E_EMA's style of a reference image; `cluster` is argmax of the
online E's class head (§1.8.1).
"""

import jax
import jax.numpy as jnp
import numpy as np

from i2ijax.data import augment
from i2ijax.layers import compute
from i2ijax.losses import adversarial
from i2ijax.losses import contrastive
from i2ijax.losses import reconstruction
from i2ijax.metrics import clustering
from i2ijax.models import tunit as tunit_nets
from i2ijax.training import optim
from i2ijax.training import state as state_lib

_D_TERMS = ('d/adv', 'd/r1', 'd/total')
_G_TERMS = ('g/adv', 'g/rec', 'g/style', 'g/total')


def _ema(old, new, decay):
  return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, old, new)


class TUNIT:
  """TUNIT networks, optimizers and the pure step (spec §1)."""

  GROUPS = {'guide': 'e', 'gen': 'g', 'dis': 'd'}
  balanced_batches = False     # one stream of all domains, labels unused
  uses_content_dis = False

  def __init__(self, config, *, num_domains: int, image_size: int):
    m = config.model
    self.config = config
    self.model_cfg = m
    self.loss_cfg = config.loss
    self.num_domains = num_domains
    self.image_size = image_size
    self.num_clusters = m.num_clusters
    self.num_components = m.num_clusters   # evaluate: cluster_acc_modes
    options = compute.network_options(m)     # dtype, remat
    self.remat = options['remat']
    self.guide = tunit_nets.GuidingNetwork(
        num_clusters=m.num_clusters, style_dim=m.style_dim,
        widths=tunit_nets.vgg11_widths(m.guide_width),
        dtype=options['dtype'])
    self.gen = tunit_nets.Generator(
        image_size=image_size, style_dim=m.style_dim, nf=m.gen_width or None,
        nf_mlp=m.mlp_dim, n_res=m.n_res, **options)
    self.dis = tunit_nets.Discriminator(
        num_domains=m.num_clusters, dim_in=m.dis_width or None,
        max_conv_dim=m.dis_max_width, **options)
    self.nets = dict(guide=self.guide, gen=self.gen, dis=self.dis)
    self.txs, self.schedules = optim.make_network_optimizers(config,
                                                             self.GROUPS)
    self.augment_kwargs = dict(color_jitter=bool(m.color_jitter))

  # ----------------------------------------------------------------- init
  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """A fresh `TrainState` (jit-compiled init)."""
    return jax.jit(self._init)(rng)

  def _init(self, rng):
    # RBG key for the parameter draws: XLA:CPU compiles threefry slowly for
    # many tensors (as in the other objectives).
    rng = jax.random.key(jax.random.bits(rng, (), jnp.uint32), impl='rbg')
    k_e, k_g, k_d = jax.random.split(rng, 3)
    x = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    e_vars = self.guide.init(k_e, x)
    params = {
        'guide': e_vars['params'],
        'gen': self.gen.init(k_g, x, jnp.zeros((1, self.model_cfg.style_dim))
                             )['params'],
        'dis': self.dis.init(k_d, x, jnp.zeros((1,), jnp.int32))['params'],
    }
    state = state_lib.create(params, {}, self.txs, ema_names=('guide', 'gen'))
    model_state = {
        'guide': {'batch_stats': e_vars['batch_stats']},
        'guide_ema': {'batch_stats': e_vars['batch_stats']},
        'gen': {}, 'dis': {},
        'queue': contrastive.init_queue(self.model_cfg.queue_size,
                                        self.model_cfg.style_dim),
    }
    return state.replace(model_state=model_state)

  # ------------------------------------------------------------- networks
  def guide_train(self, params, batch_stats, x):
    """E in train mode: ((logits, style), new batch_stats)."""
    out, updates = self.guide.apply(
        {'params': params, 'batch_stats': batch_stats}, x, train=True,
        mutable=['batch_stats'])
    return out, updates['batch_stats']

  def guide_eval(self, variables, x):
    """E in eval mode (running statistics): (logits, style)."""
    return self.guide.apply(variables, x)

  def _dis(self, params, x, y):
    return self.dis.apply({'params': params}, x, y)[0]

  def _info_nce(self, query, key, queue):
    return contrastive.info_nce(query, key, queue.keys, queue.valid,
                                temperature=self.model_cfg.temperature,
                                normalize=self.model_cfg.normalize_style)

  # --------------------------------------------------------------- losses
  def e_loss(self, e_params, e_stats, x, x_aug, key, queue):
    """L_E = InfoNCE(E_s(x), key, Q) + iic·L_IIC(p(x), p(x⁺)) (§1.6)."""
    (logits, style), e_stats = self.guide_train(e_params, e_stats, x)
    (logits_aug, _), e_stats = self.guide_train(e_params, e_stats, x_aug)
    terms = {
        'e/style': self._info_nce(style, key, queue),
        'e/iic': contrastive.iic_loss(jax.nn.softmax(logits),
                                      jax.nn.softmax(logits_aug)),
    }
    loss = terms['e/style'] + self.loss_cfg.iic * terms['e/iic']
    return loss, (terms, e_stats)

  def _d_adv(self, d_params, x_ref, y_ref, x_fake):
    """hinge(D(x_ref, y_ref), D(x_fake, y_ref))."""
    real = self._dis(d_params, x_ref, y_ref)
    fake = self._dis(d_params, jax.lax.stop_gradient(x_fake), y_ref)
    return adversarial.hinge_d_loss(real, fake)

  def _d_r1(self, d_params, x_ref, y_ref):
    """R1 = Σ (∂ D(x_ref, y_ref) / ∂x_ref)² / B."""
    return adversarial.r1_penalty(lambda v: self._dis(d_params, v, y_ref),
                                  x_ref)

  def d_loss(self, d_params, x_ref, y_ref, x_fake):
    """hinge(real x_ref, fake) + gp·R1 on x_ref, all at the labels y_ref."""
    return self._d_total(self._d_adv(d_params, x_ref, y_ref, x_fake),
                         self._d_r1(d_params, x_ref, y_ref))

  def _d_total(self, adv, r1):
    """(L_D = adv + gp·R1, its terms)."""
    loss = adv + self.loss_cfg.gp * r1
    return loss, {'d/adv': adv, 'd/r1': r1, 'd/total': loss}

  def d_grads(self, d_params, x_ref, y_ref, x_fake):
    """(∇ d_loss w.r.t. d_params, d_loss's terms).

    With remat (memory over speed), R1's gradient (a double backward) is
    computed first and the hinge terms' after it, behind an optimization
    barrier: D(x_ref) is then evaluated twice, but XLA no longer keeps the
    hinge terms' activations during R1's double backward (128 px, batch 8:
    3.5 → 2.3 GiB of temporaries for the D step). Same sum, another order.
    """
    if not self.remat:
      (_, terms), grads = jax.value_and_grad(self.d_loss, has_aux=True)(
          d_params, x_ref, y_ref, x_fake)
      return grads, terms
    r1, r1_grads = jax.value_and_grad(self._d_r1)(d_params, x_ref, y_ref)
    r1, r1_grads, d_params, x_ref, y_ref, x_fake = (
        jax.lax.optimization_barrier(
            (r1, r1_grads, d_params, x_ref, y_ref, x_fake)))
    adv, adv_grads = jax.value_and_grad(self._d_adv)(d_params, x_ref, y_ref,
                                                     x_fake)
    gp = self.loss_cfg.gp
    grads = jax.tree.map(lambda a, r: a + gp * r, adv_grads, r1_grads)
    return grads, self._d_total(adv, r1)[1]

  def g_loss(self, ge_params, e_stats, ema_vars, d_params, x, x_ref, y,
             y_ref, queue):
    """L_G of §1.7.3 step 4 w.r.t. {'gen': G, 'guide': E} params."""
    g_params, e_params = ge_params['gen'], ge_params['guide']
    (_, s_src), e_stats = self.guide_train(e_params, e_stats, x)
    (_, s_ref), e_stats = self.guide_train(e_params, e_stats, x_ref)
    content = self.gen.apply({'params': g_params}, x, method='encode')
    x_fake = self.gen.apply({'params': g_params}, content, s_ref,
                            method='decode')
    x_rec = self.gen.apply({'params': g_params}, content, s_src,
                           method='decode')
    (_, s_fake), e_stats = self.guide_train(e_params, e_stats, x_fake)
    (_, key), ema_stats = self.guide_train(ema_vars['params'],
                                           ema_vars['batch_stats'], x_ref)
    w = self.loss_cfg
    terms = {
        'g/adv': (adversarial.hinge_g_loss(self._dis(d_params, x_fake, y_ref))
                  + adversarial.hinge_g_loss(self._dis(d_params, x_rec, y))),
        'g/rec': reconstruction.l1(x_rec, x),
        'g/style': self._info_nce(s_fake, key, queue),
    }
    loss = w.adv * terms['g/adv'] + w.rec * terms['g/rec'] + (
        w.style * terms['g/style'])
    terms['g/total'] = loss
    return loss, (terms, e_stats, ema_stats)

  # ---------------------------------------------------------------- steps
  def warmup_step(self, state, batch, rng):
    """One warm-up iteration: the E step alone (§1.7.2). Pure.

    Same arguments and metrics as `train_step` ('d/*', 'g/*' are 0).
    """
    return self._step(state, batch, rng, joint=False)

  def train_step(self, state, batch, rng):
    """One joint iteration (E step ×0.1, D step, G + E step). Pure.

    The reference trains E alone for `train.warmup_steps` first: call
    `warmup_step` while `is_warmup_step(step)` (the loop does). They are two
    functions, not a `lax.cond` in one: XLA:CPU ran the joint branch inside
    a conditional 12× slower than the same computation on its own.

    Args:
      state: `TrainState`.
      batch: {'image': (B, S, S, 3) in [-1, 1]} (a 'domain' entry is
        ignored: TUNIT trains without labels).
      rng: a key, folded with `state.iteration` here; split → (x⁺
        augmentation, reference permutation).
    Returns:
      (new state, metrics of scalars).
    """
    return self._step(state, batch, rng, joint=True)

  def is_warmup_step(self, step: int) -> bool:
    return step < self.config.train.warmup_steps

  def _step(self, state, batch, rng, joint: bool):
    x = batch['image']
    rng = jax.random.fold_in(rng, state.iteration)
    k_aug, k_perm = jax.random.split(rng)
    x_aug = augment.augment(k_aug, x, **self.augment_kwargs)
    queue = state.model_state['queue']

    # (1) E step. The MoCo keys come from E_EMA (train mode) on x⁺.
    (_, keys), ema_stats = self.guide_train(
        state.ema_params['guide'],
        state.model_state['guide_ema']['batch_stats'], x_aug)
    keys = jax.lax.stop_gradient(keys)
    (e_total, (e_terms, e_stats)), e_grads = jax.value_and_grad(
        self.e_loss, has_aux=True)(
            state.params['guide'], state.model_state['guide']['batch_stats'],
            x, x_aug, keys, queue)
    e_scale = self.loss_cfg.e_after_warmup if joint else 1.0
    e_grads = jax.tree.map(lambda g: e_scale * g, e_grads)
    state = state_lib.apply_gradients(state, {'guide': e_grads}, self.txs,
                                      self.schedules)
    state = state.replace(model_state={
        **state.model_state, 'guide': {'batch_stats': e_stats},
        'guide_ema': {'batch_stats': ema_stats}})
    e_terms['e/total'] = e_total * e_scale

    # (2)-(4) after the warm-up.
    if joint:
      state, dg_terms = self._joint_update(state, x, k_perm)
    else:
      dg_terms = {k: jnp.zeros((), jnp.float32) for k in _D_TERMS + _G_TERMS}

    # (5) bookkeeping.
    state = self._bookkeeping(state, keys)
    metrics = {**e_terms, **dg_terms}
    metrics['train/joint'] = jnp.float32(joint)
    metrics['train/queue_fill'] = jnp.mean(
        state.model_state['queue'].valid.astype(jnp.float32))
    return state, metrics

  def _joint_update(self, state, x, k_perm):
    """Steps (2)-(4): pseudo labels, D step, G + E step."""
    e_stats = state.model_state['guide']['batch_stats']
    perm = jax.random.permutation(k_perm, x.shape[0])
    x_ref = x[perm]
    (logits, _), e_stats = self.guide_train(state.params['guide'], e_stats, x)
    y = jnp.argmax(logits, axis=-1)
    y_ref = y[perm]
    (_, s_ref), e_stats = self.guide_train(state.params['guide'], e_stats,
                                           x_ref)
    x_fake = self.gen.apply({'params': state.params['gen']}, x,
                            jax.lax.stop_gradient(s_ref))
    d_grads, d_terms = self.d_grads(state.params['dis'], x_ref, y_ref,
                                    x_fake)
    state = state_lib.apply_gradients(state, {'dis': d_grads}, self.txs,
                                      self.schedules)
    if self.remat:
      # With remat (memory over speed) the G + E step starts after the D
      # step: without this barrier XLA runs G's and E's forward passes during
      # D's R1 backward and keeps both sets of activations (128 px, batch 32:
      # 19.6 instead of 16.2 GiB of temporaries). Not by default: where
      # barriers survive (GPU, multi-device CPU) it slows the plain step
      # (the TUNIT learning test, 8 CPU devices: 90 → 120 s in one pair of
      # runs).
      state, x, x_ref, y, y_ref, e_stats = jax.lax.optimization_barrier(
          (state, x, x_ref, y, y_ref, e_stats))

    ema_vars = {'params': state.ema_params['guide'],
                'batch_stats': state.model_state['guide_ema']['batch_stats']}
    ge_params = {'gen': state.params['gen'], 'guide': state.params['guide']}
    (_, (g_terms, e_stats, ema_stats)), ge_grads = jax.value_and_grad(
        self.g_loss, has_aux=True)(
            ge_params, e_stats, ema_vars, state.params['dis'], x, x_ref, y,
            y_ref, state.model_state['queue'])
    if not self.model_cfg.joint_training:   # "separate" ablation (§1.7.4)
      ge_grads = {'gen': ge_grads['gen']}
    state = state_lib.apply_gradients(state, ge_grads, self.txs,
                                      self.schedules)
    state = state.replace(model_state={
        **state.model_state, 'guide': {'batch_stats': e_stats},
        'guide_ema': {'batch_stats': ema_stats}})
    return state, {**d_terms, **g_terms}

  def _bookkeeping(self, state, keys):
    """Queue, E_EMA (every step), G_EMA (from its start), BN copy."""
    m, train = self.model_cfg, self.config.train
    queue = contrastive.enqueue(state.model_state['queue'], keys)
    guide_ema = _ema(state.ema_params['guide'], state.params['guide'],
                     m.moco_momentum)
    started = state.step >= train.ema_start_steps
    gen_decay = jnp.where(started, train.ema_decay, 0.0)
    gen_ema = _ema(state.ema_params['gen'], state.params['gen'], gen_decay)
    step = state.step + 1
    copy = (step % m.bn_copy_every) == 0
    ema_stats = jax.tree.map(
        lambda e, s: jnp.where(copy, s, e),
        state.model_state['guide_ema']['batch_stats'],
        state.model_state['guide']['batch_stats'])
    return state.replace(
        step=step, iteration=state.iteration + 1,
        ema_params={'guide': guide_ema, 'gen': gen_ema},
        model_state={**state.model_state, 'queue': queue,
                     'guide_ema': {'batch_stats': ema_stats}})

  def is_content_d_iteration(self, iteration: int) -> bool:
    del iteration
    return False

  # ------------------------------------------------------------ inference
  def inference_params(self, state) -> dict:
    """What the inference functions read: G_EMA, E (online, for clusters)
    and E_EMA (styles) with their running BN statistics."""
    return {
        'gen': state.ema_params['gen'],
        'guide': {'params': state.params['guide'],
                  'batch_stats': state.model_state['guide']['batch_stats']},
        'guide_ema': {
            'params': state.ema_params['guide'],
            'batch_stats': state.model_state['guide_ema']['batch_stats']},
    }

  def encode_style(self, params, images):
    """E_EMA style codes (B, style_dim), eval mode."""
    return self.guide_eval(params['guide_ema'], images)[1]

  def cluster(self, params, images, domain=None):
    """Pseudo-domain of each image: argmax of the online E's class head."""
    del domain
    return jnp.argmax(self.guide_eval(params['guide'], images)[0], axis=-1)

  def decode(self, params, images, style):
    """G_EMA(images, style): (B, S, S, 3) in [-1, 1]."""
    return self.gen.apply({'params': params['gen']}, images, style)

  def style_table(self, params, images: np.ndarray,
                  domains: np.ndarray) -> np.ndarray:
    """(num_domains, style_dim): average E_EMA style per true domain's
    matched pseudo-domain (§1.8.3), from real images (host-side).

    Images are grouped by argmax E_c; each true domain t takes the
    pseudo-domain that the Hungarian matching of cluster_acc assigns to it
    (an unmatched or empty cluster falls back to the images of domain t).
    """
    cluster = np.asarray(jax.jit(self.cluster)(params, images))
    styles = np.asarray(jax.jit(self.encode_style)(params, images))
    matched = clustering.hungarian_mapping(cluster, domains)   # cluster → t
    table = np.zeros((self.num_domains, styles.shape[-1]), np.float32)
    for t in range(self.num_domains):
      members = np.isin(cluster, [k for k, d in matched.items() if d == t])
      if not members.any():
        members = domains == t
      table[t] = styles[members].mean(axis=0)
    return table

  def translate(self, params, images, source, target, rng):
    """x → G_EMA(x, s̄_t): the average style of target domain t's cluster.

    `params` must hold 'style_table' (`style_table`); deterministic (rng and
    source unused).
    """
    del source, rng
    style = jnp.asarray(params['style_table'])[target]
    return self.decode(params, images, style)

  def translate_reference(self, params, images, references, ref_domain, rng,
                          source=None):
    """Reference-guided: G_EMA(x, E_EMA_s(reference))."""
    del ref_domain, rng, source
    return self.decode(params, images, self.encode_style(params, references))

  def sample_grid(self, params, images, source, rng, num_styles: int):
    """(n, 1 + n, S, S, 3): inputs, then each input's translation with the
    style of every input as the reference (the reference grid of §1.8.4)."""
    del source, rng, num_styles
    styles = self.encode_style(params, images)
    columns = [images] + [
        self.decode(params, images, jnp.broadcast_to(styles[i], styles.shape))
        for i in range(images.shape[0])]
    return jnp.stack(columns, axis=1)
