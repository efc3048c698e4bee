"""Markdown tables from `experiments/benchmark.py`'s JSON lines.

  python experiments/summarize_benchmarks.py gpu_benchmarks.jsonl [--peak_tflops=X]

One table row per JSON line (an MDMM line gives a second row for its
content-D-only iteration), then, for every setting measured in both float32
and bfloat16, the bf16 speed-up (f32 median / bf16 median).

FLOP utilisation = matmul_flops_per_iter / sec_per_iter_median / peak: the
step's conv and matrix-product FLOPs (counted on its jaxpr, the work tensor
cores do; records from before that key use XLA's `flops_per_iter`) over the
device's dense (no sparsity) tensor-core rate for the dtype the step computes
in: bfloat16 for `--dtype=bfloat16`, TF32 for float32, since JAX's default
matmul / conv precision on NVIDIA GPUs from Ampere on computes float32 inputs
as TF32. XLA's own count of the compiled step is shown beside it: it adds the
elementwise ops and drops merged repeats, and on GPUs it has missed cuBLAS /
cuDNN calls in some versions (jax-ml/jax#22249). Peaks come from NVIDIA's
datasheets (`PEAK_TFLOPS`, matched by the record's `device` name);
`--peak_tflops` replaces them (one figure for every row, e.g. for a device
not listed), and rows of devices with no known peak (CPUs) get no
utilisation. Pure Python: runs where the benchmark ran.
"""

import collections
import json

from absl import app
from absl import flags

flags.DEFINE_float('peak_tflops', None, 'Peak TFLOP/s for the utilisation '
                   'column, for every row (default: PEAK_TFLOPS by device).')

# Dense peaks in TFLOP/s: half of the sparse figures NVIDIA's datasheets
# print for the TF32 and BF16 tensor cores. Keys are matched, in order, as
# substrings of the benchmark's `device` ("gpu:" + jax's device_kind, e.g.
# "gpu:NVIDIA H100 80GB HBM3" for the SXM5 card).
PEAK_TFLOPS = (
    ('H200 NVL', {'float32': 417.5, 'bfloat16': 835.5}),
    ('H100 NVL', {'float32': 417.5, 'bfloat16': 835.5}),
    ('H100 PCIe', {'float32': 378.0, 'bfloat16': 756.5}),
    ('H200', {'float32': 494.5, 'bfloat16': 989.5}),
    ('H100', {'float32': 494.5, 'bfloat16': 989.5}),
    ('A100', {'float32': 156.0, 'bfloat16': 312.0}),
)

_COLUMNS = ('model', 'size', 'batch', 'dtype', 'remat', 'compile s',
            'ms/iter median (min)', 'images/s', 'peak MiB',
            'XLA GFLOP/iter', 'conv + matmul GFLOP/iter', 'TFLOP/s',
            'FLOP utilisation')


def peak_flops(device, dtype, peak_tflops=None):
  """FLOP/s the utilisation is measured against, or None if not known."""
  if peak_tflops is not None:
    return peak_tflops * 1e12
  for name, peaks in PEAK_TFLOPS:
    if device.startswith('gpu:') and name in device:
      return peaks[dtype] * 1e12 if dtype in peaks else None
  return None


def read_records(path):
  """The JSON objects of a JSON-lines file (blank lines skipped)."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _rows(record):
  """(name, median s, min s, XLA flops, conv + matmul flops or None,
  compile s) of each timed step."""
  rows = []
  for name, prefix in ((record['model'], ''),
                       (record['model'] + ' content-D-only', 'content_d_')):
    if prefix + 'sec_per_iter_median' in record:
      rows.append((name, record[prefix + 'sec_per_iter_median'],
                   record[prefix + 'sec_per_iter_min'],
                   record[prefix + 'flops_per_iter'],
                   record.get(prefix + 'matmul_flops_per_iter'),
                   record[prefix + 'compile_s']))
  return rows


def utilisation(flops, seconds, peak):
  """Achieved FLOP/s over the peak (None without a peak)."""
  return None if not peak else flops / seconds / peak


def results_table(records, peak_tflops=None):
  """Markdown table, one row per timed step of each record."""
  lines = ['| ' + ' | '.join(_COLUMNS) + ' |',
           '|' + '---|' * len(_COLUMNS)]
  for record in records:
    peak = peak_flops(record.get('device', ''), record['dtype'], peak_tflops)
    for (name, median, minimum, xla_flops, matmul_flops,
         compile_s) in _rows(record):
      flops = xla_flops if matmul_flops is None else matmul_flops
      share = utilisation(flops, median, peak)
      cells = (name, record['image_size'], record['batch_size'],
               record['dtype'], 'on' if record.get('remat') else 'off',
               f'{compile_s:.1f}',
               f'{1e3 * median:.2f} ({1e3 * minimum:.2f})',
               f'{record["batch_size"] / median:.1f}',
               f'{record["peak_mem_mb"]:.0f}', f'{xla_flops / 1e9:.2f}',
               '–' if matmul_flops is None else f'{matmul_flops / 1e9:.2f}',
               f'{flops / median / 1e12:.3g}',
               '–' if share is None else f'{100 * share:.2f}%')
      lines.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
  return '\n'.join(lines)


def speedup_table(records):
  """Markdown table of f32 median / bf16 median per setting run in both."""
  by_setting = collections.defaultdict(dict)
  for record in records:
    for name, median, *_ in _rows(record):
      setting = (name, record['image_size'], record['batch_size'],
                 bool(record.get('remat')))
      by_setting[setting][record['dtype']] = median
  lines = ['| model | size | batch | f32 ms/iter | bf16 ms/iter | '
           'bf16 speed-up |', '|---|---|---|---|---|---|']
  for (name, size, batch, _), medians in by_setting.items():
    if {'float32', 'bfloat16'} <= medians.keys():
      f32, bf16 = medians['float32'], medians['bfloat16']
      lines.append(f'| {name} | {size} | {batch} | {1e3 * f32:.2f} | '
                   f'{1e3 * bf16:.2f} | {f32 / bf16:.2f}× |')
  return '\n'.join(lines)


def summary(records, peak_tflops=None):
  """Both tables under a line naming the devices and versions measured."""
  machines = sorted({f'{r.get("device", "?")} ×{r.get("device_count", 1)}, '
                     f'jax {r.get("jax", "?")}, Python {r.get("python", "?")}'
                     for r in records})
  return '\n\n'.join(['Measured on: ' + '; '.join(machines),
                      results_table(records, peak_tflops),
                      speedup_table(records)]) + '\n'


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('Usage: summarize_benchmarks.py RESULTS.jsonl')
  print(summary(read_records(argv[1]), flags.FLAGS.peak_tflops), end='')


if __name__ == '__main__':
  app.run(main)
