"""CycleGAN: networks, optimizer groups, the pure train step, inference.

Spec §2.4–§2.5 (reference `cycle_gan_model.py`). Names: `gen_ab` maps domain
A (0) to B (1) (the paper's G, the reference's G_A), `gen_ba` maps B to A
(F, G_B); `dis_a` judges domain A images (D_X, the reference's D_B) and
`dis_b` domain B images (D_Y, the reference's D_A). A batch holds B/2 images
of A in rows [0, B/2) and B/2 of B in rows [B/2, B) (`balanced_batches`).

One train step, as the reference iteration:
  1. fake_b = G_ab(a), rec_a = G_ba(fake_b), fake_a = G_ba(b),
     rec_b = G_ab(fake_a), idt_b = G_ab(b), idt_a = G_ba(a);
  2. generators ('g' group, D frozen):
       L_G = LS(D_b(fake_b), 1) + LS(D_a(fake_a), 1)
             + λ_A·|rec_a − a|₁ + λ_B·|rec_b − b|₁
             + λ_idt·λ_B·|idt_b − b|₁ + λ_idt·λ_A·|idt_a − a|₁
     with LS the LSGAN mean squared error over every patch logit and
     λ_A = `loss.cycle_a`, λ_B = `loss.cycle_b`, λ_idt = `loss.identity`;
  3. discriminators ('d' group) on the step-1 fakes (made by the generators
     *before* their update) after the 50-image history pools:
       L_D = ½·[LS(D(real), 1) + LS(D(pool(fake)), 0)] for each D.
The D update of step 3 depends neither on the G update nor vice versa
(its fakes are stop-gradient step-1 images, and the G loss uses the Ds
before their update), so both gradients are taken at the same state and
applied together: exactly the reference's sequential G-then-D order.
Adam (2e-4, β = (0.5, 0.999), no weight decay) per network; one Adam over
the union of both generators is the same thing, Adam being elementwise.

The image pools are a pure pytree in `state.model_state['pool']`:
{'a': {'images': (P, S, S, 3), 'count': int32}, 'b': ...}, P =
`model.pool_size` (50). Each incoming fake, in batch order (`lax.scan`), is
stored and returned while the pool holds fewer than P images; after that,
with probability ½ a uniformly chosen stored image is returned and replaced
by the incoming one, else the incoming image is returned (spec §2.5). The
coin flips and indices come from the step's rng (folded with the iteration),
so training is deterministic for a given rng; `pool_size=0` turns the pools
off. Storing the pools in the state makes them part of checkpoints and keeps
the step a single jitted function (no host round trip).

Learning-rate schedule: `optim.<g|d>.schedule='linear_decay'` is constant for
`decay_start_steps` steps, then lr0·(1 − (t − t0)/(T − t0 + 1)) at step t:
the reference's 'linear' policy (100 epochs constant, 100 decaying) counted
in steps instead of epochs, the per-iteration form that spec B4 allows (the
per-epoch reference reaches lr0/101 in its last epoch; per step the last
value is 2·lr0/(T − t0 + 1)).

Inference: `translate` is deterministic (ignores its rng and `source`):
target 1 gives G_ab(x), target 0 gives G_ba(x), so a "translation" to the
image's own domain is the identity mapping the identity loss trains.
CycleGAN has no style input: `translate_reference` ignores the reference
images (and rng) and equals `translate` to `ref_domain`; `sample_grid`
repeats each deterministic translation `num_styles` times to keep the
(n, 1 + N·num_styles, S, S, 3) layout of the multi-style models.
"""

import jax
import jax.numpy as jnp

from i2ijax.layers import compute
from i2ijax.losses import reconstruction
from i2ijax.models import cyclegan as nets
from i2ijax.training import optim
from i2ijax.training import state as state_lib

G_NETS = ('gen_ab', 'gen_ba')
D_NETS = ('dis_a', 'dis_b')


def lsgan_loss(outputs: jnp.ndarray, target: float) -> jnp.ndarray:
  """LSGAN: mean of (D(x) − target)² over every patch and sample (MSELoss)."""
  return jnp.mean(jnp.square(outputs - target))


def _halves(x):
  h = x.shape[0] // 2
  return x[:h], x[h:]


def init_pool(pool_size: int, image_size: int) -> dict:
  """An empty history pool: zero images and count 0.

  With `pool_size` 0 (pools off) there is no image array: orbax cannot
  checkpoint zero-size arrays.
  """
  pool = {'count': jnp.zeros((), jnp.int32)}
  if pool_size > 0:
    pool['images'] = jnp.zeros((pool_size, image_size, image_size, 3),
                               jnp.float32)
  return pool


def query_pool(pool: dict, images: jnp.ndarray, rng: jax.Array):
  """The reference ImagePool.query, one image at a time (module docstring).

  Args:
    pool: {'images': (P, S, S, 3), 'count': () int32}.
    images: (n, S, S, 3) new fakes, in the order the reference visits them.
    rng: key for the coin flips and the replaced indices.
  Returns:
    (new pool, (n, S, S, 3) images for the discriminator).
  """
  if 'images' not in pool:    # pool_size 0: pools off
    return pool, images
  size = pool['images'].shape[0]

  def visit(carry, inputs):
    stored, count = carry
    image, key = inputs
    k_coin, k_index = jax.random.split(key)
    filling = count < size
    swap = jnp.logical_and(~filling, jax.random.uniform(k_coin) > 0.5)
    index = jnp.where(filling, count,
                      jax.random.randint(k_index, (), 0, size))
    out = jnp.where(swap, stored[index], image)
    stored = stored.at[index].set(
        jnp.where(jnp.logical_or(filling, swap), image, stored[index]))
    return (stored, count + filling.astype(count.dtype)), out

  keys = jax.random.split(rng, images.shape[0])
  (stored, count), out = jax.lax.scan(visit, (pool['images'], pool['count']),
                                      (images, keys))
  return {'images': stored, 'count': count}, out


class CycleGAN:
  """CycleGAN networks, optimizers and pure steps (module docstring)."""

  GROUPS = {'gen_ab': 'g', 'gen_ba': 'g', 'dis_a': 'd', 'dis_b': 'd'}
  balanced_batches = True    # rows [0, B/2) domain A, [B/2, B) domain B
  uses_content_dis = False
  cluster = None             # no clustering

  def __init__(self, config, *, num_domains: int, image_size: int):
    if num_domains != 2:
      raise ValueError(
          f'CycleGAN translates between exactly 2 domains, got {num_domains}:'
          ' select two with config.data.domains.')
    self.config = config
    self.model_cfg = config.model
    self.loss_cfg = config.loss
    self.num_domains = num_domains
    self.image_size = image_size
    m = config.model
    options = compute.network_options(m)
    gen = nets.ResnetGenerator(ngf=m.width, num_blocks=m.n_res, **options)
    dis = nets.PatchDiscriminator(ndf=m.dis_width, n_layers=m.dis_layers,
                                  dtype=options['dtype'])
    self.nets = {'gen_ab': gen, 'gen_ba': gen, 'dis_a': dis, 'dis_b': dis}
    self.txs, self.schedules = optim.make_network_optimizers(config,
                                                             self.GROUPS)

  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """A fresh `TrainState` with empty image pools (jit-compiled init)."""
    return jax.jit(self._init)(rng)

  def _init(self, rng):
    x = jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)
    keys = jax.random.split(rng, len(self.nets))
    params = {name: nets.init_params(self.nets[name], key, x)
              for name, key in zip(self.nets, keys)}
    model_state = {name: {} for name in self.nets}
    pool = lambda: init_pool(self.model_cfg.pool_size, self.image_size)
    model_state['pool'] = {'a': pool(), 'b': pool()}
    return state_lib.create(params, model_state, self.txs)

  def generate(self, params, name, images):
    return self.nets[name].apply({'params': params[name]}, images)

  def discriminate(self, params, name, images):
    return self.nets[name].apply({'params': params[name]}, images)

  # -------------------------------------------------------------- losses
  def g_loss(self, g_params, d_params, real_a, real_b):
    """L_G of spec §2.4; returns (loss, (fakes, metrics))."""
    w = self.loss_cfg
    use_idt = w.identity > 0
    n = real_a.shape[0]
    # Instance norm is per image, so batching calls changes nothing.
    in_ab = jnp.concatenate([real_a, real_b]) if use_idt else real_a
    in_ba = jnp.concatenate([real_b, real_a]) if use_idt else real_b
    out_ab = self.generate(g_params, 'gen_ab', in_ab)
    out_ba = self.generate(g_params, 'gen_ba', in_ba)
    fake_b, fake_a = out_ab[:n], out_ba[:n]
    rec_a = self.generate(g_params, 'gen_ba', fake_b)
    rec_b = self.generate(g_params, 'gen_ab', fake_a)
    terms = {
        'g/adv_a': lsgan_loss(self.discriminate(d_params, 'dis_a', fake_a),
                              1.0),
        'g/adv_b': lsgan_loss(self.discriminate(d_params, 'dis_b', fake_b),
                              1.0),
        'g/cycle_a': reconstruction.l1(rec_a, real_a),
        'g/cycle_b': reconstruction.l1(rec_b, real_b),
    }
    loss = (w.gan * (terms['g/adv_a'] + terms['g/adv_b']) +
            w.cycle_a * terms['g/cycle_a'] + w.cycle_b * terms['g/cycle_b'])
    if use_idt:
      terms['g/idt_a'] = reconstruction.l1(out_ba[n:], real_a)
      terms['g/idt_b'] = reconstruction.l1(out_ab[n:], real_b)
      loss += w.identity * (w.cycle_a * terms['g/idt_a'] +
                            w.cycle_b * terms['g/idt_b'])
    terms['g/total'] = loss
    return loss, ({'fake_a': fake_a, 'fake_b': fake_b}, terms)

  def d_loss(self, params, name, real, fake):
    """½·[LS(D(real), 1) + LS(D(fake), 0)], one batched D call."""
    n = real.shape[0]
    out = self.discriminate(params, name,
                            jnp.concatenate([real, jax.lax.stop_gradient(
                                fake)]))
    return 0.5 * (lsgan_loss(out[:n], 1.0) + lsgan_loss(out[n:], 0.0))

  # --------------------------------------------------------------- steps
  def train_step(self, state, batch, rng):
    """One CycleGAN iteration. Pure: (state, batch, rng) -> (state, metrics).

    Args:
      state: `TrainState`.
      batch: {'image': (B, S, S, 3) in [-1, 1], 'domain': (B,)}; rows
        [0, B/2) are domain A and [B/2, B) domain B (the labels are not
        read).
      rng: a key; it is folded with `state.iteration` here, so a loop may
        pass the same key every step. Only the image pools use it.
    """
    real_a, real_b = _halves(batch['image'])
    rng = jax.random.fold_in(rng, state.iteration)
    k_pool_a, k_pool_b = jax.random.split(rng)
    g_params = {n: state.params[n] for n in G_NETS}
    (_, (fakes, metrics)), g_grads = jax.value_and_grad(
        self.g_loss, has_aux=True)(g_params, state.params, real_a, real_b)

    pools = state.model_state['pool']
    pool_a, fake_a = query_pool(pools['a'], fakes['fake_a'], k_pool_a)
    pool_b, fake_b = query_pool(pools['b'], fakes['fake_b'], k_pool_b)
    d_grads = {}
    for name, real, fake in (('dis_a', real_a, fake_a),
                             ('dis_b', real_b, fake_b)):
      loss, d_grads[name] = jax.value_and_grad(
          lambda p, name=name, real=real, fake=fake: self.d_loss(
              {name: p}, name, real, fake))(state.params[name])
      metrics[f'd/{name}'] = loss

    state = state_lib.apply_gradients(state, {**g_grads, **d_grads},
                                      self.txs, self.schedules)
    model_state = dict(state.model_state)
    model_state['pool'] = {'a': pool_a, 'b': pool_b}
    metrics['train/lr_g'] = self.schedules['gen_ab'](state.step)
    metrics['train/lr_d'] = self.schedules['dis_a'](state.step)
    state = state.replace(model_state=model_state, step=state.step + 1,
                          iteration=state.iteration + 1)
    return state, metrics

  # ----------------------------------------------------------- inference
  def translate(self, params, images, source, target, rng):
    """Deterministic translation of `images` to `target` domains.

    Args:
      params: the state's params.
      images: (B, S, S, 3) in [-1, 1]; source: (B,) int (unused).
      target: (B,) int in {0, 1}: 1 → G_ab(x), 0 → G_ba(x).
      rng: unused (CycleGAN has no random style).
    Returns:
      (B, S, S, 3) in [-1, 1].
    """
    del source, rng
    to_b = self.generate(params, 'gen_ab', images)
    to_a = self.generate(params, 'gen_ba', images)
    return jnp.where((target == 1)[:, None, None, None], to_b, to_a)

  def translate_reference(self, params, images, references, ref_domain, rng):
    """`translate` to `ref_domain`; the reference images are not used."""
    del references
    return self.translate(params, images, None, ref_domain, rng)

  def sample_grid(self, params, images, source, rng, num_styles: int):
    """(n, 1 + 2·num_styles, S, S, 3): inputs, then each target repeated."""
    columns = [images]
    for target in range(self.num_domains):
      out = self.translate(params, images, source,
                           jnp.full_like(source, target), rng)
      columns += [out] * num_styles
    return jnp.stack(columns, axis=1)
