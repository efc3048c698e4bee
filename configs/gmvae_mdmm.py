"""GMVAE-MDMM, the main model: the spec's recommended `gmvae_fixed` profile.

MDMM whose attribute encoder carries q(y|x) (Gumbel-softmax) and q(z|x,y) and
whose generator carries p(z|y) and is conditioned on the inferred y; TTUR
(D 5e-5, E/G 1e-4). Seed options: `--config.model.use_adain=True`,
`--config.model.double_convt=True`, `--config.data.image_size=216`.

Run:
  python -m i2ijax.main --config=configs/gmvae_mdmm.py --workdir=runs/gmvae_mdmm
Variants (`--config=configs/gmvae_mdmm.py:VARIANT`): `shapes` (default: the
embedded benchmark at 32 px, small widths), `apple2orange` (TFDS
cycle_gan/apple2orange, resize 128 → crop 108, batch 2, 10k steps), `smoke`
(tiny, a few steps, same code path).
"""

from i2ijax import config_lib


def get_config(arg=None):
  return config_lib.with_variant(config_lib.gmvae_mdmm_config(), arg)
