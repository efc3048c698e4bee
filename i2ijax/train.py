"""The training loop: data, state, jit, logging, samples, eval, checkpoints.

The loop only orchestrates; the math lives in the objectives' pure steps.
Restarting with the same workdir resumes from the newest checkpoint. SIGINT /
SIGTERM save a checkpoint at the current step and stop cleanly. A non-finite
loss stops training with the loss's name and step; no checkpoint is written
for a non-finite state, so the newest checkpoint stays the last good one.
"""

import contextlib
import os
import signal
import time

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import jax
import ml_collections
import numpy as np

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.data import pipeline
from i2ijax.training import checkpoint as checkpoint_lib
from i2ijax.training import parallel
from i2ijax.utils import images as image_utils


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


def check_finite(metrics: dict[str, float], step: int) -> None:
  bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
  if bad:
    raise NonFiniteLossError(
        f'Non-finite loss at step {step}: {", ".join(bad)} = '
        f'{[metrics[k] for k in bad]}. Training stopped; the last good '
        'checkpoint is kept in the workdir.')


def _fixed_sample_inputs(config, data_spec, per_domain: int = 2):
  """A few fixed test images of every domain for the sample grids."""
  images, domains = [], []
  for d in range(len(data_spec.domain_names)):
    arrays = pipeline.load_eval_arrays(config.data, d, max_examples=per_domain)
    images.append(arrays['image'])
    domains.append(arrays['domain'])
  return np.concatenate(images), np.concatenate(domains).astype(np.int32)


def write_samples(objective, state, inputs, workdir, step, writer,
                  num_styles=2):
  """Writes the fixed-input, fixed-style sample grid as PNG and summary
  (drawn with the inference params: EMA copies where the model keeps them)."""
  params = objectives.inference_params(objective, state)
  images, domains = inputs
  grid = objective.sample_grid(params, images, domains, jax.random.key(1234),
                               num_styles=num_styles)
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

  mesh = parallel.make_mesh(train_cfg.batch_size)
  state = parallel.replicate(objective.init(init_rng), mesh)
  checkpointer = checkpoint_lib.Checkpointer(
      workdir, max_to_keep=train_cfg.keep_checkpoints)
  if checkpointer.latest_step() is not None:
    state, _, data_position = checkpointer.restore(state)
    logging.info('Resumed from step %d (iteration %d) in %s.',
                 int(state.step), data_position['iteration'], workdir)
  start_step, iteration = int(state.step), int(state.iteration)

  # A resumed run continues with a fresh, seed-and-position-dependent stream.
  train_iter = pipeline.create_train_iterator(
      config.data, train_cfg.batch_size,
      seed=train_cfg.seed * 1_000_003 + iteration,
      process_index=jax.process_index(), process_count=jax.process_count(),
      balanced=getattr(objective, 'balanced_batches', False))
  train_step = parallel.jit_step(objective.train_step, mesh)
  content_d_step = (parallel.jit_step(objective.content_d_step, mesh)
                    if objective.uses_content_dis else None)
  # Models with a warm-up phase of other updates (TUNIT's E-only steps).
  warmup_step = (parallel.jit_step(objective.warmup_step, mesh)
                 if hasattr(objective, 'warmup_step') else None)
  step_rng = parallel.replicate(step_rng, mesh)

  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()
                          if isinstance(v, (int, float, str, bool))})
  report = periodic_actions.ReportProgress(num_train_steps=train_cfg.num_steps,
                                           writer=writer)
  sample_inputs = _fixed_sample_inputs(config, data_spec)

  def save(step):
    checkpointer.save(step, state, config,
                      {'iteration': int(state.iteration), 'step': step})

  step = start_step
  last_metrics, log_start = [], time.time()
  # `finally` waits for in-flight async saves, also when a step raises.
  with _StopRequest() as stop, metric_writers.ensure_flushes(
      writer), _closing(checkpointer):
    while step < train_cfg.num_steps and not stop.requested:
      batch = parallel.shard_batch(next(train_iter), mesh)
      main_step = not (content_d_step is not None and
                       objective.is_content_d_iteration(iteration))
      if main_step:
        step_fn = train_step
        if warmup_step is not None and objective.is_warmup_step(step):
          step_fn = warmup_step
        new_state, metrics = step_fn(state, batch, step_rng)
        step += 1
      else:
        new_state, metrics = content_d_step(state, batch, step_rng)
      metrics = jax.device_get(metrics)
      check_finite(metrics, step)
      state, iteration = new_state, iteration + 1
      if not main_step:
        continue   # content-D-only iteration
      last_metrics.append(metrics)
      report(step)

      if step % train_cfg.log_every_steps == 0 or step == train_cfg.num_steps:
        summary = {k: float(np.mean([m[k] for m in last_metrics]))
                   for k in last_metrics[0]}
        summary['train/steps_per_sec'] = len(last_metrics) / (
            time.time() - log_start)
        writer.write_scalars(step, summary)
        last_metrics, log_start = [], time.time()
      if step % train_cfg.sample_every_steps == 0:
        with report.timed('samples'):
          write_samples(objective, state, sample_inputs, workdir, step,
                        writer)
      if step % train_cfg.checkpoint_every_steps == 0:
        save(step)
      if train_cfg.eval_every_steps > 0 and (
          step % train_cfg.eval_every_steps == 0):
        with report.timed('eval'):
          run_eval(config, objective, state, workdir, step, writer)
    save(step)
    if step >= train_cfg.num_steps:
      write_samples(objective, state, sample_inputs, workdir, step,
                    writer)
  if stop.requested:
    logging.warning('Stopped at step %d; run again to resume.', step)
  return state


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
