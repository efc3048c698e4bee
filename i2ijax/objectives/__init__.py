"""Model objectives: networks, pure train steps and inference per model.

`build(config, data_spec)` returns the objective named by `config.model.name`.
"""

from i2ijax.objectives import cyclegan
from i2ijax.objectives import mdmm
from i2ijax.objectives import munit
from i2ijax.objectives import unit

OBJECTIVES = {
    'mdmm': mdmm.MDMM,
    'gmvae_mdmm': mdmm.GMVAEMDMM,
    'munit': munit.MUNIT,
    'unit': unit.UNIT,
    'cyclegan': cyclegan.CycleGAN,
}


def build(config, data_spec):
  """The objective of `config.model.name` for a data source's domains."""
  name = config.model.name
  if name not in OBJECTIVES:
    raise ValueError(f'Unknown model {name!r}; available: '
                     f'{sorted(OBJECTIVES)}')
  return OBJECTIVES[name](config, num_domains=len(data_spec.domain_names),
                          image_size=data_spec.image_size)
