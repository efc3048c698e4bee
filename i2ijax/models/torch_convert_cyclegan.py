"""Flax variables of the CycleGAN networks from PyTorch state dicts.

Same conventions as `torch_convert` (fixture layout `param/<torch name>`,
every parameter must be consumed): `cyclegan.ResnetGenerator` ↔
`ResnetGenerator` (reflect padding, no dropout; any `n_blocks`) and
`cyclegan.PatchDiscriminator` ↔ `NLayerDiscriminator` with instance norm
(any `n_layers`). The norms have no parameters (affine=False).

Sequential indices of the reference: generator `model.1` (c7s1), `model.4`,
`model.7` (downsampling), `model.10 … model.{9+n}` (blocks, convs at
`conv_block.1` and `conv_block.5`), then `model.{10+n}`, `model.{13+n}`
(transposed convs) and `model.{17+n}` (c7s1-3); discriminator convs at
`model.0, 2, 5, 8, …, 3·n_layers + 2`.
"""

import re

from i2ijax.models import torch_convert


def _num_blocks(src) -> int:
  n = 0
  while src.has_param(f'model.{10 + n}.conv_block.1.weight'):
    n += 1
  return n


def resnet_generator_variables(arrays) -> dict:
  """`ResnetGenerator` → `cyclegan.ResnetGenerator(num_blocks=n)`."""
  src = torch_convert._Source(arrays)  # pylint: disable=protected-access
  n = _num_blocks(src)
  params = {'conv_in': src.conv('model.1'), 'down1': src.conv('model.4'),
            'down2': src.conv('model.7')}
  for i in range(n):
    block = f'model.{10 + i}.conv_block'
    params[f'res{i + 1}'] = {'conv1': src.conv(f'{block}.1'),
                             'conv2': src.conv(f'{block}.5')}
  params['up1'] = src.conv_transpose(f'model.{10 + n}')
  params['up2'] = src.conv_transpose(f'model.{13 + n}')
  params['conv_out'] = src.conv(f'model.{17 + n}')
  src.check_all_used()
  return {'params': params}


def patch_discriminator_variables(arrays) -> dict:
  """`NLayerDiscriminator` (instance norm) → `cyclegan.PatchDiscriminator`."""
  src = torch_convert._Source(arrays)  # pylint: disable=protected-access
  indices = sorted(int(m.group(1)) for name in src.params
                   if (m := re.fullmatch(r'model\.(\d+)\.weight', name)))
  params = {f'conv{n}': src.conv(f'model.{i}')
            for n, i in enumerate(indices[:-1])}
  params['conv_out'] = src.conv(f'model.{indices[-1]}')
  src.check_all_used()
  return {'params': params}
