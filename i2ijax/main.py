"""Trains a model: `python -m i2ijax.main --config=configs/gmvae_mdmm.py --workdir=W`.

Intentionally short: the loop is `i2ijax.train.train_and_evaluate`.
`--config=FILE.py:ARG` passes ARG to the file's `get_config` (e.g. `:smoke`);
fields are overridden with `--config.train.num_steps=100`. Running again with
the same workdir resumes from its newest checkpoint.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from i2ijax import train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, summaries '
                    'and samples.')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
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
