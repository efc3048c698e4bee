"""Trains a model: `python -m i2ijax.main --config=configs/gmvae_mdmm.py --workdir=W`.

Intentionally short: the loop is `i2ijax.train.train_and_evaluate`.
`--config=FILE.py:ARG` passes ARG to the file's `get_config` (e.g. `:smoke`);
fields are overridden with `--config.train.num_steps=100`. Running again with
the same workdir resumes from its newest checkpoint.

Multi-process (multi-host): run it on every host (or several times on one
machine) with `--coordinator_address=HOST0:PORT --num_processes=N
--process_id=I`, or `--distributed` where JAX finds these itself (Cloud TPU,
Slurm, Open MPI); see `i2ijax.training.distributed.maybe_initialize` for
the environments that start it without a flag.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from i2ijax import train
from i2ijax.training import distributed

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, summaries '
                    'and samples.')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('coordinator_address', None, 'Multi-process: HOST:PORT '
                    'of process 0, where JAX\'s coordinator listens.')
flags.DEFINE_integer('num_processes', None, 'Multi-process: number of '
                     'processes.', lower_bound=1)
flags.DEFINE_integer('process_id', None, 'Multi-process: this process, in '
                     '[0, num_processes).', lower_bound=0)
flags.DEFINE_bool('distributed', False, 'Multi-process with the settings '
                  'that JAX detects (Cloud TPU, Slurm, Open MPI).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  # Before anything else asks JAX for its devices.
  distributed.maybe_initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id, auto=FLAGS.distributed)
  # TensorFlow is only the input pipeline: keep it off the accelerators.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for kind in ('GPU', 'TPU'):
    try:
      tf.config.set_visible_devices([], kind)
    except (ValueError, RuntimeError):   # no such device type here
      pass
  logging.info('JAX process %d / %d, devices: %s', jax.process_index(),
               jax.process_count(), jax.devices())
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
