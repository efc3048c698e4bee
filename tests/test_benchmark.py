"""experiments/benchmark.py runs the real step and reports what it claims."""

import functools
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from i2ijax import config_lib

REPO = pathlib.Path(__file__).parents[1]
KEYS = ('model', 'image_size', 'batch_size', 'dtype', 'remat', 'compile_s',
        'sec_per_iter_median', 'sec_per_iter_min', 'images_per_s',
        'peak_mem_mb', 'xla_temp_mb', 'flops_per_iter', 'n_params')


@functools.cache
def _load_experiment(name):
  """experiments/<name>.py, loaded once per process (the scripts define absl
  flags, which a second load would define twice)."""
  spec = importlib.util.spec_from_file_location(
      name, REPO / 'experiments' / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
def test_benchmark_record_of_mdmm_smoke():
  benchmark = _load_experiment('benchmark')
  config = config_lib.shrink_for_smoke(config_lib.mdmm_config())
  record = benchmark.benchmark(config, steps=2, warmup=1, num_domains=3)
  for key in KEYS:
    assert key in record, key
  assert record['model'] == 'mdmm' and record['image_size'] == 32
  assert record['sec_per_iter_min'] <= record['sec_per_iter_median']
  assert record['flops_per_iter'] > 0 and record['compile_s'] > 0
  # The convs' and products' FLOPs counted on the jaxpr are most of XLA's
  # count (which adds elementwise ops and merges repeated work).
  ratio = record['matmul_flops_per_iter'] / record['flops_per_iter']
  assert 0.7 < ratio < 1.3, ratio
  assert record['xla_temp_mb'] > 0
  # The MDMM content-D-only iteration is timed on its own.
  assert record['content_d_sec_per_iter_median'] > 0
  assert record['n_params'] == sum(record['params_by_group'].values())
  assert set(record['params_by_group']) == {
      'enc_c', 'enc_a', 'gen', 'dis1', 'dis2', 'dis_content'}
  json.dumps(record)


def test_benchmark_does_not_import_tensorflow():
  """The device machines have no TensorFlow: the harness must not need it."""
  code = ('import runpy, sys\n'
          'sys.argv = ["benchmark.py", "--helpfull"]\n'
          'try:\n'
          '  runpy.run_path("experiments/benchmark.py", run_name="__main__")\n'
          'except SystemExit:\n'
          '  pass\n'
          'print("tensorflow" in sys.modules)')
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                       capture_output=True, text=True, check=False,
                       timeout=300)
  assert out.stdout.strip().splitlines()[-1] == 'False', out.stderr[-2000:]


CONVS = (  # lhs shape, rhs shape, strides, padding, lhs / rhs dilation, groups
    ((2, 16, 16, 8), (3, 3, 8, 4), (1, 1), 'SAME', (1, 1), (1, 1), 1),
    ((2, 16, 16, 8), (4, 4, 8, 4), (2, 2), [(1, 2), (0, 1)], (1, 1), (1, 1), 1),
    ((2, 9, 9, 8), (3, 3, 8, 6), (1, 1), [(1, 1), (1, 1)], (2, 2), (1, 1), 1),
    ((2, 16, 16, 8), (3, 3, 8, 4), (1, 1), 'SAME', (1, 1), (2, 2), 1),
    ((2, 16, 16, 8), (3, 3, 2, 8), (2, 2), 'SAME', (1, 1), (1, 1), 4),
)


@pytest.mark.parametrize('lhs, rhs, strides, padding, lhs_dilation, '
                         'rhs_dilation, groups', CONVS)
def test_matmul_flops_of_convs_and_their_gradients_equal_xla_count(
    lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, groups):
  """Padding taps and dilation zeros are not counted, as by XLA; the
  gradients' convs (batch-grouped for grouped convs) are counted too."""
  import jax
  import jax.numpy as jnp
  benchmark = _load_experiment('benchmark')
  conv = lambda x, w: jax.lax.conv_general_dilated(
      x, w, strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, feature_group_count=groups,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  x, w = jnp.ones(lhs), jnp.ones(rhs)
  y, conv_vjp = jax.vjp(conv, x, w)
  for fn, args in ((conv, (x, w)), (conv_vjp, (y,))):
    xla_flops = jax.jit(fn).lower(*args).cost_analysis()['flops']
    assert benchmark.matmul_flops(jax.make_jaxpr(fn)(*args)) == xla_flops


def test_matmul_flops_skips_unused_work_and_counts_loops():
  import jax
  import jax.numpy as jnp
  benchmark = _load_experiment('benchmark')
  count = lambda fn, *args: benchmark.matmul_flops(jax.make_jaxpr(fn)(*args))
  a, b = jnp.ones((5, 7)), jnp.ones((7, 3))
  product = 2 * 5 * 7 * 3
  assert count(lambda a, b: a @ b, a, b) == product
  # The gradient of a linear function does not need the forward product;
  # inside a jit, only the used output of the inner computation counts.
  assert count(jax.grad(lambda b: (a @ b).sum()), b) == product
  inner = jax.jit(lambda a, b: (a @ b, (a @ b) @ b.T))
  assert count(lambda a, b: inner(a, b)[0], a, b) == product
  assert count(lambda a, b: inner(a, b)[1], a, b) == product + 2 * 5 * 3 * 7
  # A scan body counts once per iteration, a cond its costliest branch.
  scan = lambda a: jax.lax.scan(lambda c, _: (c @ a.T @ a, None), a, None,
                                length=4)[0]
  assert count(scan, a) == 4 * 2 * (2 * 5 * 7 * 5)
  cond = lambda p, a, b: jax.lax.cond(p, lambda: (a @ b).sum(),
                                      lambda: a.sum())
  assert count(cond, True, a, b) == product


def test_dtype_and_remat_flags_set_the_model_config():
  benchmark = _load_experiment('benchmark')
  config = config_lib.shrink_for_smoke(config_lib.mdmm_config())
  benchmark.set_compute_options(config, 'bfloat16', True)
  assert (config.model.dtype, config.model.remat) == ('bfloat16', True)
  benchmark.set_compute_options(config)        # flags not given: unchanged
  assert (config.model.dtype, config.model.remat) == ('bfloat16', True)
  del config.model['remat']
  with pytest.raises(SystemExit, match='config.model.remat'):
    benchmark.set_compute_options(config, remat=True)


@pytest.mark.slow
def test_benchmark_cli_runs_the_step_in_bfloat16():
  """`--dtype=bfloat16 --remat` end to end: the JSON line names both."""
  # One device, one thread, quick compilation: flags and record only.
  env = dict(os.environ, XLA_FLAGS='--xla_cpu_multi_thread_eigen=false',
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  env.pop('NPROC', None)
  out = subprocess.run(
      [sys.executable, 'experiments/benchmark.py',
       '--config=configs/cyclegan.py:smoke', '--steps=1', '--warmup=0',
       '--dtype=bfloat16', '--remat'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False,
      timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  record = json.loads(out.stdout.strip().splitlines()[-1])
  assert (record['model'], record['dtype'], record['remat']) == (
      'cyclegan', 'bfloat16', True)
  assert record['sec_per_iter_median'] > 0


def _record(**fields):
  """A benchmark JSON record (the keys `benchmark` writes) with `fields`."""
  record = {'model': 'gmvae_mdmm', 'image_size': 108, 'batch_size': 2,
            'dtype': 'float32', 'remat': False, 'compile_s': 41.0,
            'sec_per_iter_median': 0.010, 'sec_per_iter_min': 0.009,
            'images_per_s': 200.0, 'peak_mem_mb': 900.0,
            'flops_per_iter': 2.0e11, 'matmul_flops_per_iter': 1.8e11,
            'n_params': 10, 'device_count': 1,
            'device': 'gpu:NVIDIA H100 80GB HBM3', 'jax': '0.11.2',
            'python': '3.12.3'}
  record.update(fields)
  return record


def _row(table, *first_cells):
  """The cells of the Markdown row that starts with `first_cells`."""
  for line in table.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if tuple(cells[:len(first_cells)]) == first_cells:
      return cells
  raise AssertionError(f'no row {first_cells} in\n{table}')


def test_summary_tables_give_flop_utilisation_and_bf16_speedup(tmp_path):
  summarize = _load_experiment('summarize_benchmarks')
  f32 = _record()
  bf16 = _record(dtype='bfloat16', sec_per_iter_median=0.008,
                 sec_per_iter_min=0.007)
  cpu_mdmm = _record(model='mdmm', device='cpu:cpu', sec_per_iter_median=0.5,
                     sec_per_iter_min=0.45, content_d_compile_s=3.0,
                     content_d_sec_per_iter_median=0.2,
                     content_d_sec_per_iter_min=0.19,
                     content_d_flops_per_iter=1e10)
  del cpu_mdmm['matmul_flops_per_iter']   # a record from before that key
  path = tmp_path / 'results.jsonl'
  path.write_text('\n'.join(json.dumps(r) for r in (f32, bf16, cpu_mdmm))
                  + '\n\n')
  records = summarize.read_records(path)
  assert records == [f32, bf16, cpu_mdmm]
  text = summarize.summary(records)
  columns = _row(text, 'model')
  utilisation = columns.index('FLOP utilisation')
  # The convs' and products' FLOPs over the median time, float32 steps
  # against the TF32 peak (JAX's default precision on these GPUs), bfloat16
  # steps against the BF16 peak.
  peaks = dict(summarize.PEAK_TFLOPS)['H100']
  for record in (f32, bf16):
    cells = _row(text, 'gmvae_mdmm', '108', '2', record['dtype'])
    share = (record['matmul_flops_per_iter'] / record['sec_per_iter_median']
             / (peaks[record['dtype']] * 1e12))
    assert cells[utilisation] == f'{100 * share:.2f}%'
    assert cells[columns.index('XLA GFLOP/iter')] == '200.00'
    assert cells[columns.index('conv + matmul GFLOP/iter')] == '180.00'
  assert _row(text, 'gmvae_mdmm', '108', '2', 'bfloat16')[
      columns.index('ms/iter median (min)')] == '8.00 (7.00)'
  # No known peak for a CPU, unless one is given; the content-D-only
  # iteration gets its own row.
  assert _row(text, 'mdmm', '108', '2')[utilisation] == '–'
  content_d = _row(text, 'mdmm content-D-only')
  assert content_d[columns.index('XLA GFLOP/iter')] == '10.00'
  assert content_d[columns.index('conv + matmul GFLOP/iter')] == '–'
  # Without the conv + matmul count, XLA's count gives the utilisation.
  given = summarize.summary(records, peak_tflops=0.1)
  assert _row(given, 'mdmm content-D-only')[utilisation] == '50.00%'
  # The speed-up table: f32 median over bf16 median, only where both ran.
  assert _row(text, 'gmvae_mdmm', '108', '2', '10.00')[-1] == '1.25×'
  speedups = summarize.speedup_table(records).splitlines()
  assert len(speedups) == 3       # header, rule, the one setting in both
  first_line = text.splitlines()[0]
  assert first_line.startswith('Measured on: ')
  assert 'gpu:NVIDIA H100 80GB HBM3 ×1, jax 0.11.2' in first_line
  assert 'cpu:cpu ×1' in first_line


def test_peaks_match_the_device_names_jax_reports():
  summarize = _load_experiment('summarize_benchmarks')
  peak = summarize.peak_flops
  assert peak('gpu:NVIDIA H200', 'bfloat16') == 989.5e12
  assert peak('gpu:NVIDIA H100 PCIe', 'float32') == 378.0e12
  assert peak('gpu:NVIDIA H200 NVL', 'float32') == 417.5e12
  assert peak('cpu:cpu', 'float32') is None
  assert peak('gpu:NVIDIA H100 80GB HBM3', 'float16') is None
  assert peak('cpu:cpu', 'float32', peak_tflops=2.0) == 2.0e12


def test_profile_dir_traces_the_step_and_summary_reads_it(tmp_path):
  """`--profile_dir`: the step's HLO and a trace of `profile_steps` more
  iterations, which summarize_profile finds, with the XLA ops in it."""
  import gzip
  import jax
  import jax.numpy as jnp
  benchmark = _load_experiment('benchmark')
  summarize = _load_experiment('summarize_profile')

  def step(state, batch, rng):
    del rng
    loss = lambda w: jnp.tanh(batch @ w).sum()
    grad = jax.grad(loss)(state)
    return state - 1e-3 * grad, {'loss': loss(state)}

  state, batch = jnp.ones((16, 8)), jnp.ones((4, 16))
  _, stats = benchmark._time_step(step, state, batch, None, steps=2,
                                  warmup=1, compiler_options=None,
                                  profile_dir=str(tmp_path),
                                  profile_steps=3)
  assert 'profile_error' not in stats
  with gzip.open(tmp_path / 'step.hlo.txt.gz', 'rt') as hlo:
    assert hlo.read().startswith('HloModule')
  profile = summarize.profile_stats(
      summarize.load_trace(summarize.find_trace(tmp_path)))
  assert profile['steps'] == 3
  assert 0 < profile['step_us_median'] <= profile['span_us']
  rows = profile['timelines']
  assert rows and all(row['busy_us'] <= profile['span_us'] for row in rows)
  hlo_ops = {entry[2] for row in rows for entry in row['by_name'].values()}
  assert any(op.startswith('dot') for op in hlo_ops), hlo_ops
  assert summarize.summary(profile).startswith('3 traced steps')


def _trace(events, processes, threads):
  """A trace-viewer dict: `events` as (pid, tid, name, ts, dur, args)."""
  meta = [{'ph': 'M', 'pid': pid, 'name': 'process_name',
           'args': {'name': name}} for pid, name in processes.items()]
  meta += [{'ph': 'M', 'pid': pid, 'tid': tid, 'name': 'thread_name',
            'args': {'name': name}} for (pid, tid), name in threads.items()]
  return {'traceEvents': meta + [
      {'ph': 'X', 'pid': pid, 'tid': tid, 'name': name, 'ts': ts,
       'dur': dur, 'args': args}
      for pid, tid, name, ts, dur, args in events]}


def test_profile_summary_counts_device_kernels_inside_the_steps():
  """Busy time is the union of a timeline's intervals, clipped to the
  steps' span; with a device process, its timelines get the top lists."""
  summarize = _load_experiment('summarize_profile')
  host, gpu = 1, 2
  trace = _trace(
      [(host, 1, 'train', 0, 1000, {'step_num': '0'}),
       (host, 1, 'train', 1100, 1000, {'step_num': '1'}),
       (host, 1, 'PjitFunction', 10, 950, {}),
       (host, 1, 'ExecuteHelper', 20, 100, {}),   # nested in the one above
       (gpu, 7, 'loop_fusion', 100, 200, {'hlo_op': 'fusion.1'}),
       (gpu, 7, 'loop_fusion', 1200, 100, {'hlo_op': 'fusion.1'}),
       (gpu, 7, 'sm90_xmma_fprop', 400, 300, {'hlo_op': 'conv.3'}),
       (gpu, 7, 'sm90_xmma_fprop', 2000, 400, {'hlo_op': 'conv.3'}),
       (gpu, 7, 'after_the_steps', 3000, 100, {}),
       (gpu, 8, 'fusion.1', 100, 400, {}),       # a derived line: nested
       (gpu, 8, 'conv.3', 200, 100, {})],
      {host: '/host:CPU', gpu: '/device:GPU:0'},
      {(gpu, 7): 'Stream #7', (gpu, 8): 'XLA Ops'})
  stats = summarize.profile_stats(trace)
  assert (stats['steps'], stats['step_us_median'], stats['span_us']) == (
      2, 1000, 2100)
  python, stream, ops = stats['timelines']            # busiest first
  assert (python['device'], python['events'], python['busy_us']) == (
      False, 2, 950)
  assert (stream['thread'], stream['events']) == ('Stream #7', 4)
  # 200 + 100 + 300 + the last kernel's 100 µs inside the span.
  assert stream['busy_us'] == 700
  assert stream['by_name']['sm90_xmma_fprop'] == [2, 400, 'conv.3']
  assert (ops['thread'], ops['busy_us']) == ('XLA Ops', 400)
  text = summarize.summary(stats, top=1, timelines=1)
  assert _row(text, '/device:GPU:0', 'Stream #7') == [
      '/device:GPU:0', 'Stream #7', '2.0', '0.350', '33.3%']
  assert _row(text, 'sm90_xmma_fprop') == [
      'sm90_xmma_fprop', 'conv.3', '1.0', '0.200', '57.1%']
  assert 'loop_fusion' not in text              # only the top 1 is listed
  assert 'PjitFunction' not in text     # top lists for device lines only


def test_profile_summary_names_what_is_missing(tmp_path):
  summarize = _load_experiment('summarize_profile')
  with pytest.raises(FileNotFoundError, match='trace.json.gz'):
    summarize.find_trace(tmp_path)
  with pytest.raises(ValueError, match='StepTraceAnnotation'):
    summarize.profile_stats(_trace([(1, 1, 'op', 0, 5, {})],
                                   {1: '/host:CPU'}, {}))
