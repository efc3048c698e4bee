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
def _load_benchmark():
  """experiments/benchmark.py, loaded once per process (it defines absl
  flags, which a second load would define twice)."""
  spec = importlib.util.spec_from_file_location(
      'benchmark', REPO / 'experiments' / 'benchmark.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
def test_benchmark_record_of_mdmm_smoke():
  benchmark = _load_benchmark()
  config = config_lib.shrink_for_smoke(config_lib.mdmm_config())
  record = benchmark.benchmark(config, steps=2, warmup=1, num_domains=3)
  for key in KEYS:
    assert key in record, key
  assert record['model'] == 'mdmm' and record['image_size'] == 32
  assert record['sec_per_iter_min'] <= record['sec_per_iter_median']
  assert record['flops_per_iter'] > 0 and record['compile_s'] > 0
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


def test_dtype_and_remat_flags_set_the_model_config():
  benchmark = _load_benchmark()
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
