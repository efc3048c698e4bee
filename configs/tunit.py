"""TUNIT (Baek et al., ICCV 2021) as in clovaai/tunit (spec tunit_cyclegan.md).

Run:
  python -m i2ijax.main --config=configs/tunit.py --workdir=runs/tunit
Variants (`--config=configs/tunit.py:VARIANT`):
  shapes (default)   the embedded benchmark at 32 px, all 3 domains mixed,
                     K = 3 pseudo-domains, small widths, batch 16, a short
                     schedule (warm-up, joint training, G_EMA start scaled
                     from the reference's 65k / 200k / 66k).
  animal_faces       `folder` source (--config.data.root=DIR with one folder
                     per class, e.g. the 10 AnimalFaces-10 classes), the
                     reference settings: 128 px, K = 10, batch 32, 200k steps.
  afhq               `folder` source of AFHQ (one species' folder or several),
                     128 px, K = 10.
  summer2winter_yosemite   TFDS cycle_gan/summer2winter_yosemite (the
                     reference's two-domain example), K = 2, no colour
                     jitter (colour is the domain), 128 px.
  apple2orange, horse2zebra   other TFDS cycle_gan/* sets, as above.
  smoke              tiny widths, a few steps, same code path.
Any variant can be followed by `,smoke`.

The reference (spec §1.3-§1.7, PART VI): E = VGG11-BN with K-way class and
128-d style heads; G = IN content encoder to 16×16, AdaIN decoder, MLP 256;
D = FRN pre-activation ResNet (64 → 1024 channels) with K heads; losses
E = InfoNCE + 5·IIC (×0.1 after the warm-up), D = hinge + 10·R1,
G = adv + 0.1·rec + 0.01·style-InfoNCE; τ 0.07, queue 1024, momentum 0.999;
E Adam(0.9, 0.999) 1e-4, L2 1e-3; G, D RMSprop 1e-4, L2 1e-4; no schedule.
"""

import ml_collections

from i2ijax import config_lib

# Two-domain TFDS sets: K = 2, no colour jitter (colour is the domain).
_TFDS = ('summer2winter_yosemite', 'apple2orange', 'horse2zebra')


def tunit_config() -> ml_collections.ConfigDict:
  """The reference TUNIT (unsupervised, AnimalFaces-10 settings)."""
  config = config_lib.base_config()
  config.model = config_lib.model_config(
      name='tunit',
      num_clusters=10,       # K pseudo-domains (output_k)
      style_dim=128,
      guide_width=64,        # VGG11 base width (64 = torchvision's)
      gen_width=0,           # 0 = the reference rule (64 below 256 px, else 32)
      mlp_dim=256,
      n_res=2,
      dis_width=0,           # 0 = the reference rule (64 below 256 px, else 32)
      dis_max_width=1024,
      temperature=0.07,
      queue_size=1024,
      normalize_style=False,  # raw dot products in InfoNCE (spec A5)
      moco_momentum=0.999,   # E_EMA
      bn_copy_every=1000,    # copy E's BN statistics into E_EMA (one epoch)
      color_jitter=True,     # in x+ (off for two-domain sets)
      joint_training=True,   # False: E gets no gradient from L_G (§1.7.4)
  )
  config.loss = ml_collections.ConfigDict(dict(
      adv=1.0, rec=0.1, style=0.01, gp=10.0, iic=5.0, e_after_warmup=0.1))
  e = config_lib.optim_config(1e-4)
  e.update(dict(b1=0.9, b2=0.999, weight_decay=1e-3))
  g, d = config_lib.optim_config(1e-4), config_lib.optim_config(1e-4)
  for group in (g, d):
    group.update(dict(name='rmsprop', rms_decay=0.99, weight_decay=1e-4))
  config.optim = ml_collections.ConfigDict(dict(e=e, g=g, d=d))
  config.data.update(dict(name='folder', root='', load_size=128,
                          image_size=128))
  config.train.update(dict(
      batch_size=32, num_steps=200_000, warmup_steps=65_000,
      ema_start_steps=66_000, ema_decay=0.999, log_every_steps=100,
      sample_every_steps=5000, checkpoint_every_steps=10_000,
      eval_every_steps=10_000))
  config.eval.style_table_examples = 64   # real images per domain (§1.8.3)
  return config


def _apply_variant(config, variant):
  if variant == 'shapes':
    config.data.update(dict(name='shapes', source_size=32, load_size=32,
                            image_size=32))
    config.model.update(dict(num_clusters=3, style_dim=32, guide_width=16,
                             gen_width=16, mlp_dim=64, dis_width=16,
                             dis_max_width=128, queue_size=256,
                             bn_copy_every=100))
    config.train.update(dict(batch_size=16, num_steps=1500, warmup_steps=500,
                             ema_start_steps=600, log_every_steps=50,
                             sample_every_steps=500,
                             checkpoint_every_steps=500,
                             eval_every_steps=1500))
    config.optim.e.learning_rate = 1e-3
    for group in ('g', 'd'):
      config.optim[group].learning_rate = 4e-4
  elif variant in ('animal_faces', 'afhq'):
    pass     # --config.data.root=DIR
  elif variant in _TFDS:
    config.data.update(dict(name=f'cycle_gan/{variant}'))
    config.model.update(dict(num_clusters=2, color_jitter=False))
  else:
    raise ValueError(f'Unknown config variant {variant!r}; use shapes, '
                     f'animal_faces, afhq, {", ".join(_TFDS)} or smoke.')
  return config


def _shrink_for_smoke(config):
  config_lib.shrink_run_for_smoke(config)
  config.model.update(dict(num_clusters=3, style_dim=8, guide_width=4,
                           gen_width=4, mlp_dim=16, dis_width=4,
                           dis_max_width=16, queue_size=16, bn_copy_every=2))
  config.train.update(dict(warmup_steps=2, ema_start_steps=3))
  return config


def get_config(arg=None):
  return config_lib.with_variant(tunit_config(), arg, _apply_variant,
                                 _shrink_for_smoke)
