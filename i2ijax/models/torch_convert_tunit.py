"""Flax variables for `models.tunit` from clovaai/tunit state dicts.

Same conventions as `torch_convert` (parity-fixture layout `param/<name>` /
`buffer/<name>`, every parameter must be consumed). Layouts: Conv2d OIHW →
HWIO, Linear (out, in) → (in, out), FRN (1, C, 1, 1) → (C,), BatchNorm
`weight` / `bias` → `scale` / `bias` and `running_mean` / `running_var` →
'batch_stats' `mean` / `var`. The AdaIN layers' running buffers are dummies
in the reference and are not read.

Module ↔ reference: `GuidingNetwork` ↔ `GuidingNet` (`features.<i>` conv
and BN, heads `disc` → `class_head`, `cont` → `style_head`);
`Generator` ↔ `Generator` (`cnt_encoder.model.*`, `decoder.model.*`,
`mlp.model.<i>.fc`); `Discriminator` ↔ `Discriminator` (`main.<i>`).
"""

from collections.abc import Mapping
from typing import Any

from i2ijax.models import torch_convert


class _TunitSource(torch_convert._Source):  # pylint: disable=protected-access
  """`_Source` with the layer converters TUNIT needs."""

  def conv_nobias(self, name: str) -> dict:
    return self.conv(name, bias=False)

  def frn(self, name: str) -> dict:
    return {k: self.param(f'{name}.{k}').reshape(-1)
            for k in ('gamma', 'beta', 'tau')}

  def batch_norm(self, name: str) -> tuple[dict, dict]:
    params = {'scale': self.param(f'{name}.weight'),
              'bias': self.param(f'{name}.bias')}
    stats = {'mean': self.buffer(f'{name}.running_mean'),
             'var': self.buffer(f'{name}.running_var')}
    return params, stats

  def indices(self, prefix: str) -> list[int]:
    """Sorted i of every parameter named `<prefix>.<i>.…`."""
    found = set()
    for name in self.params:
      if name.startswith(prefix + '.'):
        head = name[len(prefix) + 1:].split('.')[0]
        if head.isdigit():
          found.add(int(head))
    return sorted(found)


def guiding_net_variables(arrays: Mapping[str, Any]) -> dict:
  """`GuidingNet` → `tunit.GuidingNetwork` ({'params', 'batch_stats'})."""
  src = _TunitSource(arrays)
  params, stats = {}, {}
  # Every conv is followed by its BN; conv weights are the 4-d ones.
  convs = [i for i in src.indices('features')
           if src.arrays[f'param/features.{i}.weight'].ndim == 4]
  for j, i in enumerate(convs):
    params[f'conv{j}'] = src.conv(f'features.{i}')
    params[f'bn{j}'], stats[f'bn{j}'] = src.batch_norm(f'features.{i + 1}')
  params['class_head'] = src.linear('disc')
  params['style_head'] = src.linear('cont')
  src.check_all_used()
  return {'params': params, 'batch_stats': stats}


def _res_block(src, name):
  return {'conv1': src.conv(f'{name}.model.0.conv'),
          'conv2': src.conv(f'{name}.model.1.conv')}


def generator_variables(arrays: Mapping[str, Any]) -> dict:
  """TUNIT `Generator` → `tunit.Generator` ({'params'})."""
  src = _TunitSource(arrays)
  enc_layers = src.indices('cnt_encoder.model')
  n_downs = len(enc_layers) - 2            # conv_in, downs, ResBlocks
  encoder = {'conv_in': src.conv('cnt_encoder.model.0.conv')}
  for i in range(n_downs):
    encoder[f'down{i}'] = src.conv(f'cnt_encoder.model.{i + 1}.conv')
  res = f'cnt_encoder.model.{n_downs + 1}'
  for j in src.indices(f'{res}.model'):
    encoder[f'res{j}'] = _res_block(src, f'{res}.model.{j}')
  decoder = {}
  for j in src.indices('decoder.model.0.model'):
    decoder[f'res{j}'] = _res_block(src, f'decoder.model.0.model.{j}')
  # decoder.model: 0 ResBlocks, then (Upsample, conv) pairs, then conv_out.
  for i in range(n_downs):
    decoder[f'up{i}'] = src.conv(f'decoder.model.{2 * i + 2}.conv')
  decoder['conv_out'] = src.conv(f'decoder.model.{2 * n_downs + 1}.conv')
  mlp = {f'fc{i}': src.linear(f'mlp.model.{i}.fc')
         for i in src.indices('mlp.model')}
  src.check_all_used()
  return {'params': {'encoder': encoder, 'decoder': decoder, 'mlp': mlp}}


def discriminator_variables(arrays: Mapping[str, Any]) -> dict:
  """TUNIT `Discriminator` → `tunit.Discriminator` ({'params'})."""
  src = _TunitSource(arrays)
  layers = src.indices('main')
  # main: 0 stem, 1..2R blocks, 2R+1 LReLU, 2R+2 head conv, 2R+3 LReLU,
  # 2R+4 output conv.
  num_blocks = layers[-1] - 4
  params = {'conv_in': src.conv('main.0')}
  for b in range(num_blocks):
    name = f'main.{b + 1}'
    block = {'norm1': src.frn(f'{name}.norm1'),
             'norm2': src.frn(f'{name}.norm2'),
             'conv1': src.conv(f'{name}.conv1'),
             'conv2': src.conv(f'{name}.conv2')}
    if src.has_param(f'{name}.conv1x1.weight'):
      block['shortcut'] = src.conv_nobias(f'{name}.conv1x1')
    params[f'block{b}'] = block
  params['conv_head'] = src.conv(f'main.{num_blocks + 2}')
  params['conv_out'] = src.conv(f'main.{num_blocks + 4}')
  src.check_all_used()
  return {'params': params}
