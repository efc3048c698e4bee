"""Model objectives: networks, pure train steps and inference per model.

`build(config, data_spec)` returns the objective named by `config.model.name`.
"""

from i2ijax.objectives import cyclegan
from i2ijax.objectives import mdmm
from i2ijax.objectives import munit
from i2ijax.objectives import tunit
from i2ijax.objectives import unit

OBJECTIVES = {
    'mdmm': mdmm.MDMM,
    'gmvae_mdmm': mdmm.GMVAEMDMM,
    'munit': munit.MUNIT,
    'unit': unit.UNIT,
    'cyclegan': cyclegan.CycleGAN,
    'tunit': tunit.TUNIT,
}


def build(config, data_spec):
  """The objective of `config.model.name` for a data source's domains."""
  name = config.model.name
  if name not in OBJECTIVES:
    raise ValueError(f'Unknown model {name!r}; available: '
                     f'{sorted(OBJECTIVES)}')
  return OBJECTIVES[name](config, num_domains=len(data_spec.domain_names),
                          image_size=data_spec.image_size)


def inference_params(objective, state) -> dict:
  """The params that inference (samples, evaluation, translation) reads.

  By default the state's params with the EMA copies (where kept) in place
  of the trained ones; an objective can define its own `inference_params`
  (TUNIT adds BatchNorm statistics and two guiding networks).
  """
  if hasattr(objective, 'inference_params'):
    return dict(objective.inference_params(state))
  return {**state.params, **state.ema_params}
