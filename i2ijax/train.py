"""The training loop: data, state, jit, logging, samples, eval, checkpoints.

The loop only orchestrates; the math lives in the objectives' pure steps.
Restarting with the same workdir resumes from the newest complete checkpoint
(one cut short by a kill is ignored and removed), bitwise as if the run had
not stopped: the checkpoint holds every state and the training input's
position (`pipeline.TrainIterator`), and the step RNG is a fixed key folded
with `state.iteration`. A checkpoint without an input position (from an
older version, or written with other data settings) resumes with a warning
and a fresh stream seeded by the seed and the position. SIGINT / SIGTERM save
a checkpoint at the current step and stop cleanly.

A non-finite loss (or update) stops training with the loss's name and step
(`config.train.on_nonfinite='stop'`); no checkpoint is written for a
non-finite state, so the newest checkpoint stays the last good one. In this
mode the metrics stay on the devices until the next log, sample, checkpoint
or eval step (one transfer for all of them, no host round trip per step), so
a bad step is reported there, naming the first non-finite step. With
'skip' the update is dropped on the device (the step returns its input
state), logged and counted (`train/skipped_steps`), and training stops
after `train.max_consecutive_skips` skips in a row; this mode fetches every
step's metrics at once, as the next step depends on them.

Several processes (`training/distributed.py`; `main.py` initializes JAX's
distributed runtime) train as one: `train.batch_size` is the global batch,
each process reads its own data shards and puts its rows on its own devices,
the state is replicated over all devices (the same init on every process,
checked), every process saves its part of each checkpoint (orbax, and its
shards' input positions), and process 0 alone writes summaries, sample
grids and evaluations. A stop signal to any process stops all of them at
the same step.
"""

import collections
import contextlib
import os
import signal
import time

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.layers import compute
from i2ijax.training import checkpoint as checkpoint_lib
from i2ijax.training import distributed
from i2ijax.training import parallel
from i2ijax.utils import images as image_utils


# Steps dispatched ahead of the devices before the loop waits for the oldest
# ('stop' mode): enough to overlap input and dispatch with compute, few
# enough that queued batches do not pile up in device memory.
MAX_STEPS_IN_FLIGHT = 2
# Every device-to-host transfer of the loop's metrics goes through here.
_fetch = jax.device_get


class NonFiniteLossError(FloatingPointError):
  """A training loss became NaN or infinite."""


class _StopRequest:
  """Turns SIGINT / SIGTERM into a flag the loop checks after each step."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:   # not in the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.requested:   # a second signal stops at once
      raise KeyboardInterrupt
    logging.warning('Signal %d: saving a checkpoint and stopping.', signum)
    self.requested = True

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def guard_nonfinite(step_fn, skip: bool):
  """Wraps a pure step to also report non-finite updates.

  Returns a pure (state, batch, rng) -> (state, metrics, params_finite) step,
  `params_finite` being {network: bool} for the updated params. With `skip`,
  a step whose metrics or params are not all finite returns its input state
  (selected on the device, so the input may be donated); under `pmap` every
  device skips if any one does.
  """
  def guarded(state, batch, rng):
    new_state, metrics = step_fn(state, batch, rng)
    params_finite = {
        name: jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in
                                 jax.tree.leaves(tree)] or [True]))
        for name, tree in new_state.params.items()}
    if skip:
      ok = jnp.all(jnp.array(
          [jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics)] +
          list(params_finite.values())))
      ok = parallel.all_devices(ok)
      new_state = jax.tree.map(lambda new, old: _select(ok, new, old),
                               new_state, state)
    return new_state, metrics, params_finite
  return guarded


def _select(flag, new, old):
  if jax.dtypes.issubdtype(new.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(
        jnp.where(flag, jax.random.key_data(new), jax.random.key_data(old)),
        impl=jax.random.key_impl(new))
  return jnp.where(flag, new, old)


def nonfinite_terms(metrics: dict[str, float],
                    params_finite: dict[str, bool]) -> dict[str, float]:
  """{name: value} of the non-finite losses and `params/<network>` updates."""
  bad = {k: float(v) for k, v in sorted(metrics.items())
         if not np.all(np.isfinite(v))}
  bad.update({f'params/{name}': float('nan')
              for name, ok in sorted(params_finite.items()) if not ok})
  return bad


def check_finite(metrics: dict[str, float], step: int,
                 params_finite: dict[str, bool] | None = None,
                 last_checkpoint: int | None = None) -> None:
  """Raises NonFiniteLossError naming the non-finite terms and the step."""
  bad = nonfinite_terms(metrics, params_finite or {})
  if bad:
    raise NonFiniteLossError(
        f'Non-finite loss at step {step}: {_describe(bad)}. Training '
        f'stopped; {_kept(last_checkpoint)}')


def _describe(bad):
  return ', '.join(f'{k} = {v}' for k, v in bad.items())


def _kept(last_checkpoint):
  if last_checkpoint is None:
    return 'no checkpoint was written.'
  return (f'the last good checkpoint (step {last_checkpoint}) is kept in '
          'the workdir.')


def _fixed_sample_inputs(config, data_spec, per_domain: int = 2):
  """A few fixed test images of every domain for the sample grids."""
  images, domains = [], []
  for d in range(len(data_spec.domain_names)):
    arrays = pipeline.load_eval_arrays(config.data, d, max_examples=per_domain)
    images.append(arrays['image'])
    domains.append(arrays['domain'])
  return np.concatenate(images), np.concatenate(domains).astype(np.int32)


def write_samples(objective, state, inputs, workdir, step, writer,
                  num_styles=2, sample_grid=None):
  """Writes the fixed-input, fixed-style sample grid as PNG and summary
  (drawn with the inference params: EMA copies where the model keeps them).
  `sample_grid` replaces `objective.sample_grid` (e.g. a jitted copy)."""
  params = objectives.inference_params(objective, state)
  images, domains = inputs
  grid = (sample_grid or objective.sample_grid)(
      params, images, domains, jax.random.key(1234), num_styles=num_styles)
  grid = image_utils.make_grid(np.asarray(grid))
  image_utils.save_png(os.path.join(workdir, 'samples',
                                    f'samples_{step:07d}.png'), grid)
  writer.write_images(step, {'samples': grid[None]})


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config.model.name` in `workdir`, resuming if it holds a run.

  Returns:
    the final `TrainState`.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  data_spec = pipeline.get_data_spec(config.data)
  objective = objectives.build(config, data_spec)
  train_cfg = config.train
  rng = jax.random.key(train_cfg.seed)
  init_rng, step_rng = jax.random.split(rng)
  is_chief = jax.process_index() == 0   # writes summaries, samples, eval

  balanced = getattr(objective, 'balanced_batches', False)
  parts = _batch_parts(objective, data_spec)
  split = distributed.split_batch_size(
      train_cfg.batch_size, data_shards=train_cfg.get('data_shards', 0),
      parts=parts, process_index=jax.process_index(),
      process_count=jax.process_count(), device_count=jax.device_count())
  shards_in_order = lambda batch: jax.tree.map(
      lambda x: parallel.interleave_shards(x, split.shards, parts), batch)
  if train_cfg.get('parallel', 'jit') == 'pmap':
    if jax.process_count() > 1:
      raise ValueError("Bad config value train.parallel='pmap': it runs on "
                       f'one process, not {jax.process_count()}; use '
                       "'jit' for multi-process training.")
    options = compute.compiler_options(config.model) or {}
    disabled = options.get('xla_disable_hlo_passes')
    if disabled and disabled not in os.environ.get('XLA_FLAGS', ''):
      logging.warning(
          'config.model.remat saves no memory under pmap on the CPU unless '
          'XLA_FLAGS has --xla_disable_hlo_passes=%s (layers/compute.py); '
          "train.parallel='jit' sets it itself.", disabled)
    devices = parallel.pmap_devices(train_cfg.batch_size)
    mesh = parallel.make_mesh(len(devices), devices)
    make_step = lambda fn: parallel.pmap_step(fn, devices)
    put_batch = shards_in_order   # pmap_step splits it over devices
  else:
    mesh = parallel.make_mesh(train_cfg.batch_size)
    make_step = lambda fn: parallel.jit_step(
        fn, mesh, num_shards=split.shards, num_parts=parts,
        compiler_options=compute.compiler_options(config.model))
    put_batch = lambda batch: parallel.global_batch(batch, mesh)
  logging.info('Data parallel with %s over %d devices of %d processes; '
               'global batch %d from %d data shards (%d rows read here).',
               train_cfg.get('parallel', 'jit'), mesh.size,
               jax.process_count(), split.size, split.shards,
               split.process_size)
  skip_nonfinite = train_cfg.get('on_nonfinite', 'stop') == 'skip'
  wrap = lambda fn: make_step(guard_nonfinite(fn, skip_nonfinite))
  state = objective.init(init_rng)
  distributed.assert_same_on_all_processes(state, 'The initial state')
  state = parallel.replicate(state, mesh)
  checkpointer = checkpoint_lib.Checkpointer(
      workdir, max_to_keep=train_cfg.keep_checkpoints, remove_incomplete=True)
  resumed = checkpointer.latest_step()
  if resumed is not None:
    state, _, data_position = checkpointer.restore(state, resumed)
    logging.info('Resumed from step %d (iteration %d) in %s.',
                 int(state.step), data_position['iteration'], workdir)
  start_step, iteration = int(state.step), int(state.iteration)

  def train_batches(seed_offset):
    """This process's rows of every global batch: its data shards."""
    iterators = [pipeline.create_train_iterator(
        config.data, split.shard_size,
        seed=train_cfg.seed * 1_000_003 + seed_offset,
        process_index=shard, process_count=split.shards, balanced=balanced)
                 for shard in split.process_shards]
    if len(iterators) == 1:
      return iterators[0]
    return pipeline.ConcatIterator(iterators)

  # A resumed run continues the saved stream (restored with the seed it was
  # built with); without a saved position, a fresh stream seeded by the
  # position.
  train_iter = train_batches(0)
  if resumed is not None:
    try:
      checkpointer.restore_data_iterator(resumed, train_iter)
    except (FileNotFoundError, ValueError) as error:
      logging.warning('Cannot restore the input position of step %d (%s): '
                      'resuming with a fresh stream, not bitwise as an '
                      'uninterrupted run.', resumed, error)
      train_iter = train_batches(iteration)
  train_step = wrap(objective.train_step)
  content_d_step = (wrap(objective.content_d_step)
                    if objective.uses_content_dis else None)
  # Models with a warm-up phase of other updates (TUNIT's E-only steps).
  warmup_step = (wrap(objective.warmup_step)
                 if hasattr(objective, 'warmup_step') else None)
  step_rng = parallel.replicate(step_rng, mesh)

  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()
                          if isinstance(v, (int, float, str, bool))})
  report = periodic_actions.ReportProgress(num_train_steps=train_cfg.num_steps,
                                           writer=writer)
  sample_inputs = (_fixed_sample_inputs(config, data_spec) if is_chief
                   else None)
  # One compiled program instead of op-by-op dispatch of every layer.
  sample_grid = jax.jit(objective.sample_grid, static_argnames='num_styles')

  def save(step):
    checkpointer.save(step, state, config,
                      {'iteration': int(state.iteration), 'step': step},
                      data_iterator=train_iter)

  step = start_step
  last_metrics, log_start = [], time.time()
  skipped, consecutive_skips = 0, 0
  # 'stop' mode fetches metrics lazily: each step's metrics stay on the
  # devices until the next log / sample / checkpoint / eval step, where one
  # transfer brings them all (no host round trip per step, so the host
  # prepares the next batches while the devices compute). At most
  # MAX_STEPS_IN_FLIGHT steps are queued ahead of the devices.
  pending = []     # (step, metrics, params_finite, main_step), on device
  in_flight = collections.deque()

  def fetch_pending():
    """Fetches the pending metrics; raises at the first non-finite step."""
    if not pending:
      return
    fetched = _fetch([(m, f) for _, m, f, _ in pending])
    for (at_step, _, _, main), (metrics, params_finite) in zip(pending,
                                                               fetched):
      check_finite(metrics, at_step, params_finite,
                   checkpointer.latest_step())
      if main:
        last_metrics.append(metrics)
    pending.clear()

  # `finally` waits for in-flight async saves, also when a step raises.
  with _StopRequest() as stop, metric_writers.ensure_flushes(
      writer), _closing(checkpointer):
    # With several processes every one stops if any is asked to.
    while step < train_cfg.num_steps and not distributed.any_process(
        stop.requested):
      batch = put_batch(next(train_iter))
      main_step = not (content_d_step is not None and
                       objective.is_content_d_iteration(iteration))
      if main_step:
        step_fn = train_step
        if warmup_step is not None and objective.is_warmup_step(step):
          step_fn = warmup_step
      else:
        step_fn = content_d_step
      new_state, metrics, params_finite = step_fn(state, batch, step_rng)
      state = new_state   # with 'skip', a bad step returned its input state
      if skip_nonfinite:
        # The next step depends on whether this one was skipped: fetch now.
        metrics, params_finite = _fetch((metrics, params_finite))
        bad = nonfinite_terms(metrics, params_finite)
        if bad:
          skipped, consecutive_skips = skipped + 1, consecutive_skips + 1
          logging.warning('Non-finite loss at step %d: %s. Update skipped '
                          '(%d in a row, %d in total).', step + 1,
                          _describe(bad), consecutive_skips, skipped)
          if consecutive_skips >= train_cfg.max_consecutive_skips:
            raise NonFiniteLossError(
                f'Non-finite loss at step {step + 1}: {_describe(bad)}; '
                f'{consecutive_skips} updates in a row skipped '
                '(train.max_consecutive_skips). Training stopped; '
                f'{_kept(checkpointer.latest_step())}')
          continue
        consecutive_skips = 0
        if main_step:
          last_metrics.append(metrics)
      else:
        pending.append((step + 1, metrics, params_finite, main_step))
        in_flight.append(metrics)
        if len(in_flight) > MAX_STEPS_IN_FLIGHT:
          jax.block_until_ready(in_flight.popleft())
      iteration += 1
      if not main_step:
        continue   # content-D-only iteration
      step += 1
      report(step)

      log_now = (step % train_cfg.log_every_steps == 0 or
                 step == train_cfg.num_steps)
      sample_now = is_chief and step % train_cfg.sample_every_steps == 0
      save_now = step % train_cfg.checkpoint_every_steps == 0
      eval_now = is_chief and train_cfg.eval_every_steps > 0 and (
          step % train_cfg.eval_every_steps == 0)
      if log_now or sample_now or save_now or eval_now:
        fetch_pending()
      if log_now:
        summary = {k: float(np.mean([m[k] for m in last_metrics]))
                   for k in last_metrics[0]}
        summary['train/steps_per_sec'] = len(last_metrics) / (
            time.time() - log_start)
        if skip_nonfinite:
          summary['train/skipped_steps'] = skipped
        writer.write_scalars(step, summary)
        last_metrics, log_start = [], time.time()
      if sample_now:
        with report.timed('samples'):
          write_samples(objective, parallel.host_local(state), sample_inputs,
                        workdir, step, writer, sample_grid=sample_grid)
      if save_now:
        save(step)
      if eval_now:
        # The other processes wait for it in their next step.
        with report.timed('eval'):
          run_eval(config, objective, parallel.host_local(state), workdir,
                   step, writer)
    fetch_pending()   # never save a state whose last steps are unchecked
    save(step)
    if is_chief and step >= train_cfg.num_steps:
      write_samples(objective, parallel.host_local(state), sample_inputs,
                    workdir, step, writer, sample_grid=sample_grid)
  if step < train_cfg.num_steps:
    logging.warning('Stopped at step %d; run again to resume.', step)
  return state


def _batch_parts(objective, data_spec) -> int:
  """The equal row blocks of a batch that a step relies on: one per domain
  for balanced batches, the two halves for MDMM's pairs, else 1."""
  if getattr(objective, 'balanced_batches', False):
    return len(data_spec.domain_names)
  return 2 if getattr(objective, 'paired_halves', False) else 1


def run_eval(config, objective, state, workdir, step, writer):
  """Runs the evaluator, logs its metrics and writes eval/metrics.json."""
  from i2ijax import evaluate  # pylint: disable=g-import-not-at-top
  metrics = evaluate.compute_metrics(config, objective, state,
                                     plot_dir=os.path.join(workdir, 'eval'))
  writer.write_scalars(step, {f'eval/{k}': v for k, v in metrics.items()})
  evaluate.write_metrics(workdir, step, metrics)
  return metrics


@contextlib.contextmanager
def _closing(checkpointer):
  try:
    yield checkpointer
  finally:
    checkpointer.close()


def _flatten(tree, prefix=''):
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat
