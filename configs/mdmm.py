"""MDMM (multi-domain DRIT++), faithful to the reference code (spec §2).

Run:
  python -m i2ijax.main --config=configs/mdmm.py --workdir=runs/mdmm
Variants (`--config=configs/mdmm.py:VARIANT`): `shapes` (default: the
embedded benchmark at 32 px, small widths), `apple2orange` (TFDS
cycle_gan/apple2orange, resize 128 → crop 108, batch 2, 10k steps), `smoke`
(tiny, a few steps, same code path).
"""

from i2ijax import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, variant='shapes', smoke=False)
  config = config_lib.mdmm_config()
  if arg.variant == 'smoke':
    arg.smoke = True
  else:
    config_lib.apply_variant(config, arg.variant)
  if arg.smoke:
    config_lib.shrink_for_smoke(config)
  return config
