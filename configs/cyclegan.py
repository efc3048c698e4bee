"""CycleGAN (Zhu et al. 2017) as the reference code trains it (spec §2).

Run:
  python -m i2ijax.main --config=configs/cyclegan.py --workdir=runs/cyclegan
Variants (`--config=configs/cyclegan.py:VARIANT`):
  shapes (default)  the embedded benchmark at 32 px, domains day ↔ night
                    (filled shapes on a gradient ↔ bright outlines on dark
                    noise: a colour, texture and fill change that keeps
                    every shape in place, CycleGAN's kind of task), ngf =
                    ndf = 16, ResNet-6, batch 4 + 4, lr 5e-4, 400 steps;
  horse2zebra, apple2orange, summer2winter_yosemite
                    TFDS `cycle_gan/<name>` (A ↔ B) as in the paper: resize
                    286 → random crop 256 + flip, batch 1 + 1, ResNet-9,
                    ngf = ndf = 64, 200 epochs of max(|A|, |B|) steps, lr
                    constant for 100 epochs then linear to 0 (needs a
                    prepared TFDS_DATA_DIR);
  smoke             tiny widths, a few steps, same code path.

Fields: `model.width` = ngf, `model.dis_width` = ndf, `model.n_res`
(9 at 256 px, 6 at 128 px, spec B1), `model.dis_layers` (3 = the 70×70
PatchGAN), `model.pool_size` (history pool, 0 = off); `loss.cycle_a` = λ_A,
`loss.cycle_b` = λ_B, `loss.identity` = λ_idt (identity terms weigh
λ_idt·λ). `train.batch_size` counts both domains: B/2 images of each.
"""

import ml_collections

from i2ijax import config_lib

# max(|trainA|, |trainB|) of the TFDS cycle_gan configs: one reference epoch.
EPOCH_STEPS = {'horse2zebra': 1334, 'apple2orange': 1019,
               'summer2winter_yosemite': 1231}


def cyclegan_config() -> ml_collections.ConfigDict:
  """The reference defaults (spec §2.5 options table), at 256 px."""
  config = config_lib.base_config()
  config.model = config_lib.model_config(
      name='cyclegan', width=64, dis_width=64, n_res=9, dis_layers=3,
      pool_size=50)
  config.loss = ml_collections.ConfigDict(dict(
      gan=1.0, cycle_a=10.0, cycle_b=10.0, identity=0.5))
  groups = {}
  for group in ('g', 'd'):
    groups[group] = config_lib.optim_config(2e-4)   # Adam β = (0.5, 0.999)
    groups[group].update(dict(weight_decay=0.0, schedule='linear_decay'))
  config.optim = ml_collections.ConfigDict(groups)
  config.train.update(dict(batch_size=2, ema_decay=0.0))
  config.eval.num_styles = 1    # translations are deterministic
  return config


def _paper_dataset(config, name):
  epoch = EPOCH_STEPS[name]
  config.data.update(dict(name=f'cycle_gan/{name}', load_size=286,
                          image_size=256, flip=True, domains=()))
  config.train.update(dict(
      batch_size=2, num_steps=200 * epoch, steps_per_epoch=epoch,
      log_every_steps=100, sample_every_steps=epoch,
      checkpoint_every_steps=5 * epoch, eval_every_steps=0))
  for group in ('g', 'd'):
    config.optim[group].decay_start_steps = 100 * epoch


def _shapes(config):
  config.data.update(dict(name='shapes', source_size=32, load_size=32,
                          image_size=32, domains=('day', 'night')))
  config.model.update(dict(width=16, dis_width=16, n_res=6))
  config.train.update(dict(batch_size=8, num_steps=400, log_every_steps=50,
                           sample_every_steps=200,
                           checkpoint_every_steps=200, eval_every_steps=400,
                           steps_per_epoch=100))
  # 2.5 × the paper's lr so that a 400-step CPU run learns (at 2e-4 the
  # night → day translations still looked like `sketch` paper at 400 steps).
  for group in ('g', 'd'):
    config.optim[group].learning_rate = 5e-4


def _smoke(config):
  config.data.update(dict(name='shapes', source_size=32, load_size=32,
                          image_size=32, domains=('day', 'night')))
  config.model.update(dict(width=4, dis_width=4, n_res=1,
                           dis_layers=2, pool_size=4))
  config.train.update(dict(batch_size=4, num_steps=6, log_every_steps=2,
                           sample_every_steps=3, checkpoint_every_steps=3,
                           eval_every_steps=0, steps_per_epoch=2))
  for group in ('g', 'd'):
    config.optim[group].decay_start_steps = -1
  config.eval.update(dict(num_examples=8, batch_size=8, oracle_steps=60))


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, variant='shapes', smoke=False)
  config = cyclegan_config()
  if arg.variant == 'smoke':
    arg.smoke = True
  elif arg.variant == 'shapes':
    _shapes(config)
  elif arg.variant in EPOCH_STEPS:
    _paper_dataset(config, arg.variant)
  else:
    raise ValueError(f'Unknown config variant {arg.variant!r}; use shapes, '
                     f'{", ".join(EPOCH_STEPS)} or smoke.')
  if arg.smoke:
    _smoke(config)
  return config
