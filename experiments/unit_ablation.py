"""UNIT ablation on `shapes` in the spirit of the UNIT paper's Fig. 2(d).

Trains `configs/unit.py:shapes` three ways, for several seeds at the same
step budget, with `python -m i2ijax.main` (one subprocess per run, as a user
runs it), and prints a markdown table of mean ± std (over seeds, ddof = 1)
of the final evaluation in `WORKDIR/eval/metrics.json`:

  full        the paper: shared last encoder / first decoder res block
              (model.shared_layers = 1) and the cycle stream;
  no_sharing  model.shared_layers = 0 (the public v1 code);
  no_cycle    shared_layers = 1, loss.recon_x_cyc = loss.recon_kl_cyc = 0.

Usage:
  python experiments/unit_ablation.py --workdir=runs/unit_ablation \
      [--steps=400] [--seeds=0,1,2] [--variants=full,no_sharing,no_cycle]

Runs whose `eval/metrics.json` already holds the requested step are not
retrained, so an interrupted ablation continues where it stopped.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np

VARIANTS = {
    'full': [],
    'no_sharing': ['--config.model.shared_layers=0'],
    'no_cycle': ['--config.loss.recon_x_cyc=0', '--config.loss.recon_kl_cyc=0'],
}
METRICS = ('domain_acc', 'content_iou', 'mode_coverage')


def run(workdir: pathlib.Path, variant: str, seed: int, steps: int,
        num_examples: int) -> dict:
  """Trains one (variant, seed) run unless it is already done; its metrics."""
  metrics_file = workdir / 'eval' / 'metrics.json'
  if metrics_file.exists():
    metrics = json.loads(metrics_file.read_text())
    if metrics.get('step') == steps:
      return metrics
  start = time.time()
  process = subprocess.run(
      [sys.executable, '-m', 'i2ijax.main', '--config=configs/unit.py:shapes',
       f'--workdir={workdir}', f'--config.train.seed={seed}',
       f'--config.train.num_steps={steps}',
       f'--config.train.eval_every_steps={steps}',
       f'--config.train.checkpoint_every_steps={steps}',
       f'--config.train.sample_every_steps={steps}',
       f'--config.eval.num_examples={num_examples}', *VARIANTS[variant]],
      check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True)
  if process.returncode:
    raise RuntimeError(f'{variant} seed {seed} failed '
                       f'(exit {process.returncode}):\n{process.stderr[-3000:]}')
  metrics = json.loads(metrics_file.read_text())
  print(f'{variant} seed {seed}: ' + ', '.join(
      f'{k} {metrics[k]:.3f}' for k in METRICS if k in metrics) +
        f' ({time.time() - start:.0f} s)', flush=True)
  return metrics


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--variants', default=','.join(VARIANTS))
  parser.add_argument('--num_examples', type=int, default=96)
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(',')]
  variants = args.variants.split(',')
  for variant in variants:
    if variant not in VARIANTS:
      parser.error(f'unknown variant {variant!r}; use {", ".join(VARIANTS)}')

  root = pathlib.Path(args.workdir)
  results = {v: [run(root / f'{v}_seed{s}', v, s, args.steps,
                     args.num_examples) for s in seeds] for v in variants}
  print(f'\n{args.steps} steps, seeds {args.seeds}, mean ± std over seeds\n')
  present = [k for k in METRICS if all(k in m for r in results.values()
                                       for m in r)]
  print('| variant | ' + ' | '.join(present) + ' |')
  print('|---|' + '---|' * len(present))
  for variant, runs in results.items():
    cells = []
    for key in present:
      values = np.array([m[key] for m in runs])
      std = values.std(ddof=1) if len(values) > 1 else 0.0
      cells.append(f'{values.mean():.2f} ± {std:.2f}')
    print(f'| {variant} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  main()
