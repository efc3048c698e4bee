"""Training-step benchmark: `python experiments/benchmark.py --config=FILE[:ARG]`.

Measures, for the real model of a config (its networks, optimizers and pure
steps), on synthetic batches of the config's shapes (no dataset, no
TensorFlow import):
  compile_s              lowering + XLA compilation of the main train step;
  sec_per_iter_median/min over `--steps` timed iterations after `--warmup`,
                         each closed with `block_until_ready`;
  images_per_s           batch_size / sec_per_iter_median;
  peak_mem_mb            device peak bytes in use (GPU/TPU), else the
                         process's peak resident host memory;
  xla_temp_mb            the compiled step's temporary buffers (XLA's
                         memory analysis; params and batch not included);
  flops_per_iter         XLA's cost analysis of the compiled step;
  matmul_flops_per_iter  the convolutions' and matrix products' FLOPs in the
                         step's jaxpr (`matmul_flops`): the model FLOPs that
                         a FLOP utilisation is measured with, the same on
                         every backend (XLA's compiled count on GPUs has
                         missed cuBLAS / cuDNN calls in some versions);
  n_params, params_by_group  parameter counts (total, per optimizer group).
One iteration is what the reference loop does per iteration: for MDMM the D
updates then the EG / G-alone updates (`train_step`); MDMM's content-D-only
iterations (`content_d_step`) are timed separately as `content_d_*`.
`--dtype=bfloat16` (mixed precision) and `--remat` set `config.model.dtype`
and `config.model.remat`; the record names both (`dtype`, `remat`).

`--profile_dir=DIR` then runs `--profile_steps` more iterations of the main
step under `jax.profiler.trace(DIR)`, each a `StepTraceAnnotation('train')`,
and writes the compiled step's optimized HLO to DIR/step.hlo.txt.gz (for
reading fusion and kernel choices off the device);
`experiments/summarize_profile.py DIR` tabulates the trace. A profiler
error is recorded as `profile_error` instead of losing the timings.

Prints one JSON line per run. Fields may be overridden as in `main`:
  python experiments/benchmark.py --config=configs/gmvae_mdmm.py:apple2orange \\
      --config.data.image_size=216 --steps=20 --dtype=bfloat16
"""

import gzip
import json
import math
import pathlib
import platform
import resource
import sys
import time
import types

from absl import app
from absl import flags
import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from i2ijax import config_lib
from i2ijax import objectives
from i2ijax.layers import compute

config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
flags.DEFINE_integer('steps', 20, 'Timed iterations.')
flags.DEFINE_integer('warmup', 3, 'Untimed iterations after compilation.')
flags.DEFINE_integer('num_domains', None, 'Domains of the synthetic data '
                     '(default: len(config.data.domains), else 2 for '
                     'cycle_gan/* sources and 3 otherwise).')
flags.DEFINE_enum('dtype', None, ['float32', 'bfloat16'],
                  'Compute dtype: sets config.model.dtype (default: the '
                  "config's, float32).")
flags.DEFINE_bool('remat', None, 'Rematerialise the large blocks: sets '
                  "config.model.remat (default: the config's, off).")
flags.DEFINE_string('profile_dir', None, 'Trace --profile_steps more '
                    'iterations of the main step into this folder.')
flags.DEFINE_integer('profile_steps', 5, 'Iterations traced with '
                     '--profile_dir.')


def _num_domains(config) -> int:
  if flags.FLAGS.num_domains:
    return flags.FLAGS.num_domains
  if config.data.domains:
    return len(config.data.domains)
  return 2 if config.data.name.startswith('cycle_gan') else 3


def _synthetic_batch(batch_size, image_size, num_domains, seed=0):
  rng = np.random.default_rng(seed)
  image = rng.uniform(-1, 1, (batch_size, image_size, image_size, 3))
  domain = np.arange(batch_size) * num_domains // batch_size
  return {'image': jnp.asarray(image, jnp.float32),
          'domain': jnp.asarray(domain, jnp.int32)}


def _valid_taps(in_size, kernel, out_size, stride, pad_low, lhs_dilation,
                rhs_dilation) -> int:
  """(output position, kernel tap) pairs of one spatial dim that read an
  input pixel: not padding, not a zero of the input's dilation."""
  position = (np.arange(out_size)[:, None] * stride
              + np.arange(kernel)[None, :] * rhs_dilation - pad_low)
  return int(np.sum((position >= 0)
                    & (position <= (in_size - 1) * lhs_dilation)
                    & (position % lhs_dilation == 0)))


def _eqn_matmul_flops(eqn) -> int:
  """2 × multiply-adds of one conv / dot_general equation, else 0.

  A conv's output element sums rhs_in_features × its valid taps (the taps
  on padding or on zeros of an lhs dilation, as in the input gradient of a
  strided conv, are not counted, as in XLA's cost analysis); the count is
  separable over the spatial dims. Grouped convs included.
  """
  name = eqn.primitive.name
  if name == 'conv_general_dilated':
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    out = eqn.outvars[0].aval.shape
    lhs_spec, rhs_spec, out_spec = eqn.params['dimension_numbers']
    params = eqn.params
    taps = math.prod(
        _valid_taps(lhs[lhs_spec[2 + i]], rhs[rhs_spec[2 + i]],
                    out[out_spec[2 + i]], params['window_strides'][i],
                    params['padding'][i][0], params['lhs_dilation'][i],
                    params['rhs_dilation'][i])
        for i in range(len(lhs_spec) - 2))
    return (2 * out[out_spec[0]] * out[out_spec[1]] * rhs[rhs_spec[1]]
            * taps)
  if name == 'dot_general':
    (contracting, _), _ = eqn.params['dimension_numbers']
    lhs = eqn.invars[0].aval.shape
    return (2 * math.prod(eqn.outvars[0].aval.shape)
            * math.prod(lhs[d] for d in contracting))
  return 0


def matmul_flops(jaxpr, used_outputs=None) -> int:
  """FLOPs of the convs and matrix products a (closed) jaxpr needs.

  Counts only equations whose outputs are used (or that have effects), as
  XLA drops the rest: e.g. a forward pass that only its gradient reads.
  Recurses into sub-jaxprs (jit, custom_jvp / custom_vjp, remat, ...),
  passing down which outputs are used; a `scan` body counts `length` times,
  a `cond` its costliest branch, a `while` body once (its trip count is not
  static). XLA may still merge repeated computations, which this does not.
  """
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)       # ClosedJaxpr -> Jaxpr
  if used_outputs is None:
    used_outputs = [True] * len(jaxpr.outvars)
  live = {var for var, used in zip(jaxpr.outvars, used_outputs)
          if used and isinstance(var, jax_core.Var)}
  total = 0
  for eqn in reversed(jaxpr.eqns):
    used = [var in live for var in eqn.outvars]
    if not any(used) and not eqn.effects:
      continue
    live.update(var for var in eqn.invars if isinstance(var, jax_core.Var))
    total += _eqn_matmul_flops(eqn)
    name = eqn.primitive.name
    inner = []
    for sub in _subjaxprs(eqn.params):
      sub_outputs = getattr(sub, 'jaxpr', sub).outvars
      passes_used = (name not in ('scan', 'while')
                     and len(sub_outputs) == len(eqn.outvars))
      inner.append(matmul_flops(sub, used if passes_used else None))
    if name == 'cond':
      total += max(inner, default=0)
    elif name == 'scan':
      total += eqn.params['length'] * sum(inner)
    else:
      total += sum(inner)
  return total


def _subjaxprs(params):
  """The jaxprs among an equation's params (also inside tuples / lists)."""
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(item, (jax_core.ClosedJaxpr, jax_core.Jaxpr)):
        yield item


def _profile(compiled, state, batch, rng, profile_dir, steps):
  """Traces `steps` iterations of `compiled` into `profile_dir` (one
  `StepTraceAnnotation` each) and writes its optimized HLO beside them;
  returns the state."""
  path = pathlib.Path(profile_dir)
  path.mkdir(parents=True, exist_ok=True)
  with gzip.open(path / 'step.hlo.txt.gz', 'wt') as hlo:
    hlo.write(compiled.as_text())
  with jax.profiler.trace(profile_dir):
    for step in range(steps):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        state, metrics = compiled(state, batch, rng)
        jax.block_until_ready((state, metrics))
  return state


def _time_step(step, state, batch, rng, steps, warmup, compiler_options,
               profile_dir=None, profile_steps=0):
  """Compiles, warms up and times `step`; returns (state, stats).

  With `profile_dir`, then traces `profile_steps` more iterations
  (`_profile`); a profiler error goes into stats['profile_error'].
  """
  start = time.perf_counter()
  traced = jax.jit(step, donate_argnums=0,
                   compiler_options=compiler_options).trace(state, batch, rng)
  compiled = traced.lower().compile()
  compile_s = time.perf_counter() - start
  model_flops = matmul_flops(traced.jaxpr)
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):    # older jax: one dict per module
    cost = cost[0] if cost else {}
  flops = float((cost or {}).get('flops', float('nan')))
  memory = compiled.memory_analysis()
  temp_mb = memory.temp_size_in_bytes / 2**20 if memory else float('nan')
  for _ in range(warmup):
    state, metrics = compiled(state, batch, rng)
  jax.block_until_ready((state, metrics) if warmup else state)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  stats = dict(compile_s=compile_s, median=float(np.median(times)),
               min=float(np.min(times)), flops=flops,
               matmul_flops=model_flops, temp_mb=temp_mb)
  if profile_dir:
    try:
      state = _profile(compiled, state, batch, rng, profile_dir,
                       profile_steps)
    except Exception as error:  # pylint: disable=broad-except
      stats['profile_error'] = repr(error)
  return state, stats


def _peak_mem_mb() -> float:
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2**20
  # ru_maxrss is in KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def benchmark(config, steps: int, warmup: int, num_domains: int,
              profile_dir=None, profile_steps: int = 5) -> dict:
  """Runs the measurements for one config; returns the JSON record.

  With `profile_dir`, the main step is also traced (`_time_step`).
  """
  config_lib.validate(config)
  size, batch_size = config.data.image_size, config.train.batch_size
  spec = types.SimpleNamespace(
      name=config.data.name, image_size=size, num_modes=1, has_masks=False,
      domain_names=tuple(f'domain{i}' for i in range(num_domains)))
  model = objectives.build(config, spec)
  state = model.init(jax.random.key(0))
  params_by_group = {name: int(sum(x.size for x in jax.tree.leaves(p)))
                     for name, p in state.params.items()}
  batch = _synthetic_batch(batch_size, size, num_domains)
  rng = jax.random.key(1)
  options = compute.compiler_options(config.model)
  state, main = _time_step(model.train_step, state, batch, rng, steps, warmup,
                           options, profile_dir, profile_steps)
  record = {
      'model': config.model.name, 'image_size': size,
      'batch_size': batch_size, 'dtype': config.model.get('dtype', 'float32'),
      'remat': bool(config.model.get('remat', False)),
      'compile_s': round(main['compile_s'], 2),
      'sec_per_iter_median': main['median'], 'sec_per_iter_min': main['min'],
      'images_per_s': batch_size / main['median'],
      'flops_per_iter': main['flops'],
      'matmul_flops_per_iter': main['matmul_flops'],
      'xla_temp_mb': round(main['temp_mb'], 1),
      'n_params': sum(params_by_group.values()),
      'params_by_group': params_by_group,
  }
  if profile_dir:
    record.update(profile_dir=str(profile_dir), profile_steps=profile_steps)
    if 'profile_error' in main:
      record['profile_error'] = main['profile_error']
  if getattr(model, 'uses_content_dis', False):
    _, extra = _time_step(model.content_d_step, state, batch, rng, steps,
                          warmup, options)
    record.update(content_d_compile_s=round(extra['compile_s'], 2),
                  content_d_sec_per_iter_median=extra['median'],
                  content_d_sec_per_iter_min=extra['min'],
                  content_d_flops_per_iter=extra['flops'],
                  content_d_matmul_flops_per_iter=extra['matmul_flops'])
  record['peak_mem_mb'] = round(_peak_mem_mb(), 1)
  device = jax.devices()[0]
  record.update(device=f'{device.platform}:{device.device_kind}',
                device_count=jax.device_count(), jax=jax.__version__,
                python=platform.python_version(), steps=steps)
  return record


def set_compute_options(config, dtype=None, remat=None):
  """Sets `config.model.dtype` / `.remat` to the flags' values if given.

  Exits naming the field if the model's config has no such field.
  """
  for field, value in (('dtype', dtype), ('remat', remat)):
    if value is None:
      continue
    if field not in config.model:
      sys.exit(f'{config.model.name} has no config.model.{field}: '
               f'--{field}={value} is not supported for it yet.')
    config.model[field] = value
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  config = set_compute_options(flags.FLAGS.config, flags.FLAGS.dtype,
                               flags.FLAGS.remat)
  record = benchmark(config, flags.FLAGS.steps, flags.FLAGS.warmup,
                     _num_domains(config), flags.FLAGS.profile_dir,
                     flags.FLAGS.profile_steps)
  print(json.dumps(record), flush=True)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)
