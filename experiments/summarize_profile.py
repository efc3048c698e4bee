"""Markdown tables from a trace of `experiments/benchmark.py --profile_dir`.

  python experiments/summarize_profile.py DIR [--top=15] [--timelines=3]

Reads the newest `*.trace.json.gz` under DIR (the trace-viewer events that
`jax.profiler` writes beside its `.xplane.pb`) and prints:
  - the traced steps (the events with a `step_num`, one per
    `StepTraceAnnotation`): their number and median wall time;
  - one row per timeline (a thread of a process: on a GPU a stream of
    kernels or a line the profiler derives from them, such as the XLA ops;
    the host's threads): its events and busy time (the union of its events'
    intervals) per step, and busy time over the steps' span. On a GPU, the
    stream's events per step are the kernel launches per iteration, and its
    idle share is what launch latency and host work cost;
  - for the `--timelines` busiest device timelines (host timelines where
    the trace has no device, as on a CPU), the `--top` event names by
    total time, with the HLO op the profiler names for a kernel (`hlo_op`).
Only what falls inside the steps' span counts (intervals are clipped to it).
Pure Python: runs where the benchmark ran.
"""

import collections
import gzip
import json
import pathlib
import statistics

from absl import app
from absl import flags

flags.DEFINE_integer('top', 15, 'Event names listed per timeline.')
flags.DEFINE_integer('timelines', 3, 'Busiest timelines whose top event '
                     'names are listed.')


def find_trace(directory) -> pathlib.Path:
  """The newest `*.trace.json.gz` under `directory`."""
  traces = sorted(pathlib.Path(directory).rglob('*.trace.json.gz'),
                  key=lambda path: path.stat().st_mtime)
  if not traces:
    raise FileNotFoundError(
        f'no *.trace.json.gz under {directory}: is it the --profile_dir of '
        'a benchmark.py run that finished?')
  return traces[-1]


def load_trace(path) -> dict:
  with gzip.open(path, 'rt') as file:
    return json.load(file)


def _busy(intervals) -> float:
  """Length of the union of (start, end) intervals."""
  total, reach = 0.0, float('-inf')
  for start, end in sorted(intervals):
    if end > reach:
      total += end - max(start, reach)
      reach = end
  return total


def profile_stats(trace) -> dict:
  """Steps and per-timeline statistics of a trace (times in µs).

  Returns {'steps', 'step_us_median', 'span_us', 'timelines'}; each
  timeline is {'process', 'thread', 'device', 'events', 'busy_us',
  'by_name'}, with by_name {name: [count, total_us, hlo_op]}, busiest
  timeline first; `device` is whether its process is a device's.
  """
  events = trace['traceEvents']
  process_names, thread_names = {}, {}
  for event in events:
    if event.get('ph') == 'M' and event.get('name') == 'process_name':
      process_names[event['pid']] = event['args']['name']
    elif event.get('ph') == 'M' and event.get('name') == 'thread_name':
      thread_names[event['pid'], event['tid']] = event['args']['name']
  complete = [e for e in events if e.get('ph') == 'X' and 'dur' in e]
  steps = [e for e in complete if 'step_num' in e.get('args', {})]
  if not steps:
    raise ValueError('the trace has no StepTraceAnnotation events (with a '
                     'step_num): was it written by benchmark.py '
                     '--profile_dir?')
  begin = min(e['ts'] for e in steps)
  end = max(e['ts'] + e['dur'] for e in steps)
  devices = {pid for pid, name in process_names.items()
             if name.startswith('/device:')}
  step_ids = {id(event) for event in steps}
  timelines = collections.defaultdict(list)
  for event in complete:
    if (id(event) in step_ids or event['ts'] > end
        or event['ts'] + event['dur'] < begin):
      continue
    start, stop = max(event['ts'], begin), min(event['ts'] + event['dur'],
                                                end)
    timelines[event['pid'], event.get('tid')].append((start, stop, event))
  rows = []
  for (pid, tid), spans in timelines.items():
    by_name = {}
    for start, stop, event in spans:
      entry = by_name.setdefault(
          event['name'], [0, 0.0, event.get('args', {}).get('hlo_op', '')])
      entry[0] += 1
      entry[1] += stop - start
    rows.append(dict(process=process_names.get(pid, str(pid)),
                     thread=thread_names.get((pid, tid), str(tid)),
                     device=pid in devices,
                     events=len(spans),
                     busy_us=_busy((s, e) for s, e, _ in spans),
                     by_name=by_name))
  rows.sort(key=lambda row: -row['busy_us'])
  return dict(steps=len(steps),
              step_us_median=statistics.median(e['dur'] for e in steps),
              span_us=end - begin, timelines=rows)


def _cell(text) -> str:
  return str(text).replace('|', '\\|')


def summary(stats, top=15, timelines=3) -> str:
  """Markdown tables of `profile_stats`' result."""
  steps = stats['steps']
  lines = [f"{steps} traced steps, median {stats['step_us_median'] / 1e3:.2f}"
           f" ms each (span {stats['span_us'] / 1e3:.2f} ms).", '',
           '| process | timeline | events/step | busy ms/step | busy / span |',
           '|---|---|---:|---:|---:|']
  for row in stats['timelines']:
    lines.append(
        f"| {_cell(row['process'])} | {_cell(row['thread'])} | "
        f"{row['events'] / steps:.1f} | {row['busy_us'] / steps / 1e3:.3f} | "
        f"{100 * row['busy_us'] / stats['span_us']:.1f}% |")
  listed = ([row for row in stats['timelines'] if row['device']]
            or stats['timelines'])
  for row in listed[:timelines]:
    lines += ['', f"Top {top} on {_cell(row['process'])} / "
              f"{_cell(row['thread'])}:", '',
              '| name | hlo_op | calls/step | ms/step | share of busy |',
              '|---|---|---:|---:|---:|']
    ranked = sorted(row['by_name'].items(), key=lambda item: -item[1][1])
    for name, (count, total_us, hlo_op) in ranked[:top]:
      share = total_us / row['busy_us'] if row['busy_us'] else 0.0
      lines.append(f'| {_cell(name[:80])} | {_cell(hlo_op)} | '
                   f'{count / steps:.1f} | {total_us / steps / 1e3:.3f} | '
                   f'{100 * share:.1f}% |')
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('Usage: summarize_profile.py DIR')
  path = find_trace(argv[1])
  print(f'Trace: {path}\n')
  print(summary(profile_stats(load_trace(path)), flags.FLAGS.top,
                flags.FLAGS.timelines), end='')


if __name__ == '__main__':
  app.run(main)
