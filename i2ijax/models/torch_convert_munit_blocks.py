"""Flax variables for `munit_blocks` modules from NVlabs/MUNIT state dicts.

Same conventions as `torch_convert` (parity-fixture layout `param/<name>`,
every parameter must be consumed). Layouts: Conv2d OIHW → HWIO; the MUNIT
LayerNorm's `gamma` / `beta` (C,) keep their names; MUNIT spectral norm
(`<conv>.module.weight_bar`, `.bias`, `.weight_u`, `.weight_v`, registered as
parameters in PyTorch) → `kernel`, `bias` in 'params' and `u`, `v` in
'batch_stats' (v keeps PyTorch's (Cin, kh, kw) flattening, as the module
uses it).

Module ↔ reference: `ConvBlock` ↔ `Conv2dBlock` (`<name>.conv`,
`<name>.norm`), `ResBlocks` ↔ `ResBlocks` (`<name>.model.<i>.model.{0,1}`),
`MsImageDis` ↔ `MsImageDis` (`cnns.<scale>.<layer>`, head `cnns.<s>.<n>`).
"""

from collections.abc import Mapping
from typing import Any

from i2ijax.models import torch_convert


class MunitSource(torch_convert._Source):  # pylint: disable=protected-access
  """`_Source` with the converters of the MUNIT building blocks."""

  def conv_block(self, name: str) -> tuple[dict, dict]:
    """`Conv2dBlock` → (params, batch_stats) of a `ConvBlock`."""
    params, stats = {}, {}
    if self.has_param(f'{name}.conv.module.weight_bar'):
      sn = f'{name}.conv.module'
      params['conv'] = {
          'kernel': self.param(f'{sn}.weight_bar').transpose(2, 3, 1, 0),
          'bias': self.param(f'{sn}.bias')}
      stats['conv'] = {'u': self.param(f'{sn}.weight_u'),
                       'v': self.param(f'{sn}.weight_v')}
    else:
      params['conv'] = self.conv(f'{name}.conv')
    if self.has_param(f'{name}.norm.gamma'):
      params['norm'] = {'gamma': self.param(f'{name}.norm.gamma'),
                        'beta': self.param(f'{name}.norm.beta')}
    return params, stats

  def conv_block_params(self, name: str) -> dict:
    params, stats = self.conv_block(name)
    if stats:
      raise ValueError(f'{name} has spectral-norm state; use conv_block().')
    return params

  def res_block(self, name: str) -> dict:
    """MUNIT `ResBlock` (`model.0`, `model.1`) → `ResBlock` params."""
    return {'conv1': self.conv_block_params(f'{name}.model.0'),
            'conv2': self.conv_block_params(f'{name}.model.1')}

  def res_blocks(self, name: str, num_blocks: int, start: int = 0) -> dict:
    """Blocks start … start+num_blocks−1 of `ResBlocks` → `ResBlocks`."""
    return {f'block_{i}': self.res_block(f'{name}.model.{start + i}')
            for i in range(num_blocks)}


def _count(source, prefix):
  count = 0
  while any(p.startswith(f'{prefix}{count}.') for p in source.params):
    count += 1
  return count


def msimagedis_variables(arrays: Mapping[str, Any]) -> dict:
  """`MsImageDis` → {'params': …, 'batch_stats': …} of `munit_blocks`.

  The number of scales and layers are read from the names; 'batch_stats' is
  empty without spectral norm.
  """
  source = MunitSource(arrays)
  num_scales = _count(source, 'cnns.')
  params, stats = {}, {}
  for s in range(num_scales):
    n_layer = _count(source, f'cnns.{s}.') - 1
    scale_params, scale_stats = {}, {}
    for i in range(n_layer):
      p, st = source.conv_block(f'cnns.{s}.{i}')
      scale_params[f'layer_{i}'] = p
      if st:
        scale_stats[f'layer_{i}'] = st
    scale_params['head'] = source.conv(f'cnns.{s}.{n_layer}')
    params[f'scale_{s}'] = scale_params
    if scale_stats:
      stats[f'scale_{s}'] = scale_stats
  source.check_all_used()
  variables = {'params': params}
  if stats:
    variables['batch_stats'] = stats
  return variables
