"""One optax optimizer per parameter group, built from `config.optim.<group>`.

Adam with PyTorch-style *coupled* weight decay (wd·θ added to the gradient
before the moments, not AdamW) and optional global-norm clipping of the raw
gradient, as the MDMM reference does:
  chain(clip_by_global_norm, add_decayed_weights(wd), scale_by_adam(b1, b2, eps),
        scale(−lr)).
`name='rmsprop'` (TUNIT's G and D) is PyTorch's RMSprop instead, with the
same coupled decay and clipping: ν ← α·ν + (1 − α)·g², g / (√ν + eps) with
eps *outside* the square root, ν₀ = 0, no momentum, not centred
(α = `rms_decay`, PyTorch's default 0.99).
The learning rate is an injected hyperparameter set from the *main* training
step before every update (`set_learning_rate`), so networks that take two
updates per main step (MDMM's E_c and G) follow the same schedule as the rest.
"""

from collections.abc import Mapping

import jax.numpy as jnp
import ml_collections
import optax


def make_schedule(cfg: ml_collections.ConfigDict,
                  num_steps: int) -> optax.Schedule:
  """Learning rate as a function of the main training step.

  'constant'; 'linear_decay' = MDMM's 'lambda' policy counted in steps:
  lr0 · (1 − max(0, t − t0) / (T − t0 + 1)) with t0 = decay_start_steps
  (default T/2); 'step' = lr0 · gamma^(t // decay_every_steps).
  """
  lr0 = cfg.learning_rate
  if cfg.schedule == 'constant':
    return optax.constant_schedule(lr0)
  if cfg.schedule == 'linear_decay':
    start = cfg.decay_start_steps if cfg.decay_start_steps >= 0 else (
        num_steps // 2)
    def schedule(step):
      return lr0 * (1.0 - jnp.maximum(step - start, 0) / (num_steps - start + 1))
    return schedule
  if cfg.schedule == 'step':
    every = cfg.decay_every_steps if cfg.decay_every_steps > 0 else max(
        1, num_steps // 2)
    return optax.exponential_decay(lr0, every, cfg.gamma, staircase=True)
  raise ValueError(f"Unknown optim schedule {cfg.schedule!r}; use 'constant', "
                   "'linear_decay' or 'step'.")


def _coupled(scaling, learning_rate, weight_decay, grad_clip_norm):
  """clip → + wd·θ (coupled L2) → `scaling` (Adam / RMSprop) → −lr."""
  parts = []
  if grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(grad_clip_norm))
  if weight_decay > 0:
    parts.append(optax.add_decayed_weights(weight_decay))
  return optax.chain(*parts, scaling,
                     optax.scale_by_learning_rate(learning_rate))


def _adam_l2(learning_rate, b1, b2, eps, weight_decay, grad_clip_norm):
  return _coupled(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), learning_rate,
                  weight_decay, grad_clip_norm)


def _rmsprop_l2(learning_rate, decay, eps, weight_decay, grad_clip_norm):
  return _coupled(optax.scale_by_rms(decay=decay, eps=eps, eps_in_sqrt=False),
                  learning_rate, weight_decay, grad_clip_norm)


OPTIMIZERS = ('adam', 'rmsprop')


def make_optimizer(cfg: ml_collections.ConfigDict
                   ) -> optax.GradientTransformation:
  """Adam (or RMSprop) + coupled L2 + clipping of one group; lr injected."""
  name = cfg.get('name', 'adam')
  if name == 'rmsprop':
    return optax.inject_hyperparams(
        _rmsprop_l2, static_args=('decay', 'eps', 'weight_decay',
                                  'grad_clip_norm'))(
            learning_rate=cfg.learning_rate,
            decay=cfg.get('rms_decay', 0.99), eps=cfg.eps,
            weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm)
  if name != 'adam':
    raise ValueError(f'Unknown optimizer name {name!r}; use one of '
                     f'{OPTIMIZERS}.')
  return optax.inject_hyperparams(
      _adam_l2, static_args=('b1', 'b2', 'eps', 'weight_decay',
                             'grad_clip_norm'))(
          learning_rate=cfg.learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
          weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm)


def set_learning_rate(opt_state, learning_rate):
  """Returns `opt_state` (of `make_optimizer`) with a new learning rate."""
  hyperparams = dict(opt_state.hyperparams)
  hyperparams['learning_rate'] = learning_rate
  return opt_state._replace(hyperparams=hyperparams)


def make_network_optimizers(config: ml_collections.ConfigDict,
                            groups: Mapping[str, str]):
  """Optimizer and schedule of every network from its group's config.

  Args:
    config: the experiment config (`config.optim.<group>`,
      `config.train.num_steps`).
    groups: network name → optimizer group, e.g. {'gen_a': 'g', 'dis_a': 'd'}.
  Returns:
    (txs, schedules): dicts keyed by network name.
  """
  txs, schedules = {}, {}
  for name, group in groups.items():
    txs[name] = make_optimizer(config.optim[group])
    schedules[name] = make_schedule(config.optim[group],
                                    config.train.num_steps)
  return txs, schedules
