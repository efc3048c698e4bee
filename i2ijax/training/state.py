"""The train state: per-network params, model state and optimizer states.

A model is a dict of named networks ('enc_c', 'gen', 'dis1', ...). Each network
has its own optax state; networks are grouped by role for configuration
(`config.optim.g`, `config.optim.d`, ...), so TTUR is a config change. The
optax transforms themselves are static and live in the model's objective, so
the state is a plain pytree that orbax saves and jit shards.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from i2ijax.training import optim
from i2ijax.training import parallel


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training.

  Attributes:
    step: main training steps done (the step of checkpoints and summaries).
    iteration: batches consumed, including auxiliary-only updates (MDMM's
      content-D iterations); selects which update the loop calls.
    params: {network name: params}.
    model_state: {network name: non-param collections} (e.g. spectral-norm
      vectors in 'batch_stats'); empty dicts where a network has none.
    opt_state: {network name: optax state}.
    ema_params: optional EMA of the generator-side params ({} when off).
  """
  step: jnp.ndarray
  iteration: jnp.ndarray
  params: dict[str, Any]
  model_state: dict[str, Any]
  opt_state: dict[str, Any]
  ema_params: dict[str, Any]


def create(params: dict[str, Any], model_state: dict[str, Any],
           txs: dict[str, optax.GradientTransformation],
           ema_names: tuple[str, ...] = ()) -> TrainState:
  """A fresh state at step 0 with one optimizer state per network."""
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      iteration=jnp.zeros((), jnp.int32),
      params=params,
      model_state=model_state,
      opt_state={name: txs[name].init(params[name]) for name in txs},
      ema_params={name: params[name] for name in ema_names})


def apply_gradients(state: TrainState, grads: dict[str, Any],
                    txs: dict[str, optax.GradientTransformation],
                    schedules: dict[str, optax.Schedule]) -> TrainState:
  """Updates the networks named in `grads`, each with its own optimizer.

  The learning rate of each network comes from its group's schedule at the
  current main step. Under `parallel.pmap_step` the gradients are first
  averaged over the devices (`lax.pmean`).
  """
  axis = parallel.data_axis_name()
  if axis is not None:
    grads = jax.lax.pmean(grads, axis)
  params, opt_state = dict(state.params), dict(state.opt_state)
  for name, grad in grads.items():
    inner = optim.set_learning_rate(opt_state[name], schedules[name](state.step))
    updates, opt_state[name] = txs[name].update(grad, inner, params[name])
    params[name] = optax.apply_updates(params[name], updates)
  return state.replace(params=params, opt_state=opt_state)


def update_ema(state: TrainState, decay: float) -> TrainState:
  """EMA of the networks kept in `state.ema_params` (no-op when empty)."""
  if not state.ema_params:
    return state
  ema = {name: jax.tree.map(lambda e, p: decay * e + (1 - decay) * p,
                            state.ema_params[name], state.params[name])
         for name in state.ema_params}
  return state.replace(ema_params=ema)
