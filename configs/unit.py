"""UNIT (Liu, Breuel, Kautz, NIPS 2017) on the v1 (NVlabs/MUNIT) networks.

Run:
  python -m i2ijax.main --config=configs/unit.py --workdir=runs/unit
Variants (`--config=configs/unit.py:VARIANT[,paper_weights][,smoke]`):
  shapes (default)  embedded benchmark, domains ('day', 'night') at 32 px,
                    small widths, a 3-scale × 3-layer D (32 px needs it),
                    batch 8 (4 per domain), lr 2e-4, 1500 steps.
  summer2winter     TFDS cycle_gan/summer2winter_yosemite, the
                    unit_summer2winter_yosemite256 config: 256 px, batch 1
                    per domain, full v1 widths, 1M steps.
  maps              TFDS cycle_gan/maps (satellite A → map B), the paper's map
                    experiment at 256 px (spec §4.9/§7.3). TFDS's trainA/B
                    both come from the pix2pix *train* split, whereas the
                    paper took maps from the val split.
  apple2orange      TFDS cycle_gan/apple2orange with the same 256 px settings
                    (not a UNIT paper dataset; kept for parity with the other
                    configs).
  edges2shoes, edges2handbags
                    image folders (no TFDS build): pass
                    --config.data.root=DIR holding trainA/ (edges, left
                    halves) trainB/ (photos) testA/ testB/ (spec §2.1); v1
                    unit_edges2* settings, 256 px.
  paper_weights     the paper's λ0..λ4 = (10, 0.1, 100, 0.1, 100), i.e. the
                    v1 loss weights × 10 (same ratios; spec §4.7, §8.4).
  smoke             tiny widths, a few steps, same code path.
`model.shared_layers` = 1 shares the last encoder and first decoder res block
between the domains (the paper); 0 is the public v1 code (no sharing).
`loss.vgg` > 0 turns on the domain-invariant VGG perceptual loss (spec §1.8;
the v1 gta2city configs use 1); it needs `pip install 'i2ijax[metrics]'`
for the VGG16 weights. There is no gta2city variant: use a folder variant
with --config.loss.vgg=1.
"""

import ml_collections

from i2ijax import config_lib

_TFDS = {'summer2winter': 'cycle_gan/summer2winter_yosemite',
         'maps': 'cycle_gan/maps',
         'apple2orange': 'cycle_gan/apple2orange'}
_FOLDERS = ('edges2shoes', 'edges2handbags')


def unit_config() -> ml_collections.ConfigDict:
  """The v1 UNIT config (unit_edges2shoes_folder.yaml, spec §4.7, §9)."""
  config = config_lib.base_config()
  config.model = config_lib.model_config(
      name='unit',
      width=64,               # gen.dim: encoder stem width (latent 4·width)
      n_downsample=2,
      n_res=4,                # res blocks in each encoder and decoder
      shared_layers=1,        # shared res blocks: 1 = paper, 0 = v1 code
      activation='relu',
      pad_type='reflect',
      init='kaiming',         # generators: kaiming-normal(fan_in), bias 0
      dis_width=64,
      dis_layers=4,
      dis_scales=3,
      dis_norm='none',
      dis_activation='lrelu',
      dis_pad_type='reflect',
      dis_init='gaussian',    # discriminators: N(0, 0.02²), bias 0
      gan_type='lsgan',       # or 'nsgan'
      sample_at_test=False,   # test-time z = mean (v1); True adds N(0, I)
  )
  config.loss = ml_collections.ConfigDict(dict(
      gan=1.0, recon_x=10.0, recon_kl=0.01, recon_x_cyc=10.0,
      recon_kl_cyc=0.01,
      vgg=0.0))    # perceptual loss (§1.8); > 0 needs i2ijax[metrics]
  groups = {}
  for group in ('g', 'd'):
    cfg = config_lib.optim_config(1e-4)   # Adam(0.5, 0.999), coupled wd 1e-4
    cfg.update(dict(schedule='step', decay_every_steps=100_000, gamma=0.5))
    groups[group] = cfg
  config.optim = ml_collections.ConfigDict(groups)
  config.data.update(dict(load_size=256, image_size=256))
  config.train.update(dict(
      num_steps=1_000_000, batch_size=2,    # 1 image per domain
      log_every_steps=10, sample_every_steps=500,
      checkpoint_every_steps=10_000, eval_every_steps=0))
  return config


def _shapes(config):
  config.data.update(dict(name='shapes', domains=('day', 'night'),
                          source_size=32, load_size=32, image_size=32))
  config.model.update(dict(width=16, n_res=3, dis_width=16, dis_layers=3))
  config.train.update(dict(batch_size=8, num_steps=1500, log_every_steps=50,
                           sample_every_steps=500,
                           checkpoint_every_steps=500, eval_every_steps=1500))
  for group in ('g', 'd'):
    config.optim[group].learning_rate = 2e-4


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, variant='shapes', smoke=False,
                             paper_weights=False)
  config = unit_config()
  if arg.variant == 'smoke':
    arg.smoke = True
  elif arg.variant == 'shapes':
    _shapes(config)
  elif arg.variant in _TFDS:
    config.data.name = _TFDS[arg.variant]
  elif arg.variant in _FOLDERS:
    config.data.name = 'folder'   # needs --config.data.root=DIR
  else:
    raise ValueError(f'Unknown config variant {arg.variant!r}; use shapes, '
                     f'{", ".join([*_TFDS, *_FOLDERS])}, paper_weights or '
                     'smoke.')
  if arg.paper_weights:
    for key in config.loss:
      config.loss[key] *= 10.0
  if arg.smoke:
    _shapes(config)
    config.model.update(dict(width=8, n_res=2, dis_width=8))
    config.train.update(dict(batch_size=4, num_steps=6, log_every_steps=2,
                             sample_every_steps=3, checkpoint_every_steps=3,
                             eval_every_steps=0))
    config.eval.update(dict(num_examples=8, num_styles=2, batch_size=8,
                            oracle_steps=60))
  return config
