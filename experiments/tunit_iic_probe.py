"""Probes TUNIT's guiding-network clustering on `shapes`: IIC alone.

Trains only E's trunk and class head (TUNIT's `GuidingNetwork` at the
`configs/tunit.py:shapes` widths) with IIC between x and its x⁺ view (the
project's `data.augment`), no InfoNCE, no generator, and prints every
`--every` steps the Hungarian cluster accuracy on the test images (online
E, running BN statistics) and the number of clusters used; at the end the
contingency table of cluster × (domain, mode). Which parts of x⁺ are on
(`--aug`, a JSON dict of `augment.augment_image` keywords), Adam's coupled
L2 (`--weight_decay`), the IIC marginal weight λ (`--marginal_weight`, the
reference's `lamb`), an over-clustering head (`--over_clusters`) and K
(`--clusters`) are flags. Results and commands: experiments/README.md,
"TUNIT on shapes".

  python experiments/tunit_iic_probe.py --steps=1000 --aug='{"color_jitter": false}'
"""

import json
import time

from absl import app
from absl import flags
from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from i2ijax import config_lib
from i2ijax.data import augment
from i2ijax.data import pipeline
from i2ijax.losses import contrastive
from i2ijax.metrics import clustering
from i2ijax.models import tunit as tunit_nets

flags.DEFINE_integer('steps', 1000, 'Training steps.')
flags.DEFINE_integer('every', 200, 'Report interval.')
flags.DEFINE_integer('batch_size', 16, 'Batch of x (the :shapes preset).')
flags.DEFINE_integer('clusters', 3, 'K of the class head.')
flags.DEFINE_integer('over_clusters', 0, 'K of an extra over-clustering '
                     'IIC head on the same trunk (0: none).')
flags.DEFINE_integer('width', 16, 'VGG11 base width (:shapes: 16).')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam (:shapes: 1e-3).')
flags.DEFINE_float('weight_decay', 1e-3, 'Coupled L2 (reference: 1e-3).')
flags.DEFINE_float('marginal_weight', 1.0, 'IIC λ (1: the reference).')
flags.DEFINE_string('aug', '{}', 'augment_image keywords, JSON.')
flags.DEFINE_integer('seed', 0, 'Init and batch seed.')
FLAGS = flags.FLAGS


class ProbeGuide(tunit_nets.GuidingNetwork):
  """E's trunk with its class head and an optional over-clustering head:
  (B, S, S, 3) → (logits (B, K), over-clustering logits (B, K') or None)."""
  over_clusters: int = 0

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = self._features(x, train)
    logits = nn.Dense(self.num_clusters, kernel_init=tunit_nets.HEAD_INIT,
                      name='class_head')(h)
    over = (nn.Dense(self.over_clusters, kernel_init=tunit_nets.HEAD_INIT,
                     name='over_head')(h) if self.over_clusters else None)
    return logits, over


def shapes_arrays(split: str):
  """All images (n, 32, 32, 3), domains (n,) and modes (n,) of a split."""
  data_cfg = config_lib.base_config().data
  data_cfg.update(dict(name='shapes', source_size=32, load_size=32,
                       image_size=32))
  arrays = [pipeline.load_eval_arrays(data_cfg, d, split=split)
            for d in range(3)]
  return tuple(np.concatenate([a[k] for a in arrays])
               for k in ('image', 'domain', 'mode'))


def main(argv):
  del argv
  train_x, _, _ = shapes_arrays('train')
  test_x, test_domain, test_mode = shapes_arrays('test')
  net = ProbeGuide(num_clusters=FLAGS.clusters, style_dim=1,
                   widths=tunit_nets.vgg11_widths(FLAGS.width),
                   over_clusters=FLAGS.over_clusters)
  variables = net.init(jax.random.key(FLAGS.seed), train_x[:2])
  params, stats = variables['params'], variables['batch_stats']
  tx = optax.chain(optax.add_decayed_weights(FLAGS.weight_decay),
                   optax.adam(FLAGS.learning_rate))
  opt_state = tx.init(params)
  aug_kwargs = json.loads(FLAGS.aug)

  def iic(logits, logits_aug):
    return contrastive.iic_loss(jax.nn.softmax(logits),
                                jax.nn.softmax(logits_aug),
                                FLAGS.marginal_weight)

  def loss_fn(params, stats, x, x_aug):
    # Two calls in train mode, each with its own batch statistics (spec A8).
    (logits, over), updates = net.apply(
        {'params': params, 'batch_stats': stats}, x, True,
        mutable=['batch_stats'])
    (logits_aug, over_aug), updates = net.apply(
        {'params': params, 'batch_stats': updates['batch_stats']}, x_aug,
        True, mutable=['batch_stats'])
    main_iic = iic(logits, logits_aug)
    over_iic = iic(over, over_aug) if over is not None else 0.0
    return 5.0 * (main_iic + over_iic), (main_iic, updates['batch_stats'])

  @jax.jit
  def step(params, stats, opt_state, x, key):
    x_aug = augment.augment(key, x, **aug_kwargs)
    (_, (main_iic, stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(params, stats, x, x_aug)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, main_iic

  @jax.jit
  def predict(params, stats, x):
    logits, _ = net.apply({'params': params, 'batch_stats': stats}, x)
    return jnp.argmax(logits, -1)

  rng = np.random.default_rng(FLAGS.seed)
  key = jax.random.key(FLAGS.seed + 1)
  start = time.time()
  for i in range(1, FLAGS.steps + 1):
    x = train_x[rng.integers(0, len(train_x), FLAGS.batch_size)]
    flip = rng.random((FLAGS.batch_size, 1, 1, 1)) < 0.5   # view 1's flip
    x = np.where(flip, x[:, :, ::-1], x)
    params, stats, opt_state, main_iic = step(
        params, stats, opt_state, x, jax.random.fold_in(key, i))
    if i % FLAGS.every == 0 or i == FLAGS.steps:
      pred = np.asarray(predict(params, stats, test_x))
      print(json.dumps({
          'step': i, 'seconds': round(time.time() - start),
          'iic': round(float(main_iic), 3),
          'cluster_acc': round(clustering.hungarian_accuracy(
              pred, test_domain), 3),
          'clusters_used': int(len(np.unique(pred)))}), flush=True)
  table = np.zeros((FLAGS.clusters, 9), int)   # unused clusters too
  np.add.at(table, (pred, test_domain * 3 + test_mode), 1)
  print('clusters (rows) x day0 day1 day2 night0 night1 night2 sketch0 '
        'sketch1 sketch2:')
  print(table)


if __name__ == '__main__':
  app.run(main)
