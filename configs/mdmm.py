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
  return config_lib.with_variant(config_lib.mdmm_config(), arg)
