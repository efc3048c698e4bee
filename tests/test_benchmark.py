"""experiments/benchmark.py runs the real step and reports what it claims."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

from i2ijax import config_lib

REPO = pathlib.Path(__file__).parents[1]
KEYS = ('model', 'image_size', 'batch_size', 'dtype', 'compile_s',
        'sec_per_iter_median', 'sec_per_iter_min', 'images_per_s',
        'peak_mem_mb', 'flops_per_iter', 'n_params')


def _load_benchmark():
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
