"""Flax variables of `models.munit` from NVlabs/MUNIT `AdaINGen` state dicts.

Same conventions as `models.torch_convert` (parity-fixture layout
`param/<torch name>`, Conv2d OIHW → HWIO, Linear (out, in) → (in, out), every
`param/` entry must be consumed). AdaIN's `running_mean` / `running_var`
buffers are dummies that never affect an output and are ignored.

Name map (n = n_downsample, m = number of style downsamplings):
  enc_content.model.0 / .1…n / .{n+1}.model.i.model.{0,1}
      → enc_content/conv_0, down_{0…n−1}, res/block_i/conv{1,2}
  enc_style.model.0 / .1…m / .{m+2} (1×1 conv after the pool at .{m+1})
      → enc_style/conv_0, down_{0…m−1}, head
  dec.model.0.model.i.model.{0,1} / .{2+2j} (.{1+2j} is the upsample) /
      .{1+2n}  → dec/res/block_i/conv{1,2}, up_j (conv + norm), out
  mlp.model.i.fc → mlp/dense_i
"""

import re

from i2ijax.models import torch_convert


def _count(src, pattern: str) -> int:
  """How many distinct integers fill the single group of `pattern`."""
  regex = re.compile(pattern)
  found = {int(m.group(1)) for m in map(regex.match, src.params) if m}
  return len(found)


def _block(src, name: str) -> dict:
  """A `Conv2dBlock` with an optional MUNIT LayerNorm."""
  out = {'conv': src.conv(f'{name}.conv')}
  if src.has_param(f'{name}.norm.gamma'):
    out['norm'] = {'gamma': src.param(f'{name}.norm.gamma'),
                   'beta': src.param(f'{name}.norm.beta')}
  return out


def _res_blocks(src, name: str) -> dict:
  num = _count(src, re.escape(name) + r'\.model\.(\d+)\.model\.0\.')
  return {f'block_{i}': {
      'conv1': _block(src, f'{name}.model.{i}.model.0'),
      'conv2': _block(src, f'{name}.model.{i}.model.1')} for i in range(num)}


def generator_variables(arrays) -> dict:
  """`AdaINGen` → `munit.Generator` variables ({'params': ...})."""
  src = torch_convert._Source(arrays)  # pylint: disable=protected-access
  n_down = _count(src, r'enc_content\.model\.(\d+)\.conv\.weight') - 1
  m_down = _count(src, r'enc_style\.model\.(\d+)\.conv\.weight') - 1
  n_mlp = _count(src, r'mlp\.model\.(\d+)\.fc\.weight')
  enc_content = {'conv_0': _block(src, 'enc_content.model.0'),
                 'res': _res_blocks(src, f'enc_content.model.{n_down + 1}')}
  enc_content.update({f'down_{i}': _block(src, f'enc_content.model.{i + 1}')
                      for i in range(n_down)})
  enc_style = {'conv_0': _block(src, 'enc_style.model.0'),
               'head': src.conv(f'enc_style.model.{m_down + 2}')}
  enc_style.update({f'down_{i}': _block(src, f'enc_style.model.{i + 1}')
                    for i in range(m_down)})
  dec = {'res': _res_blocks(src, 'dec.model.0'),
         'out': _block(src, f'dec.model.{1 + 2 * n_down}')}
  dec.update({f'up_{j}': _block(src, f'dec.model.{2 + 2 * j}')
              for j in range(n_down)})
  mlp = {f'dense_{i}': src.linear(f'mlp.model.{i}.fc') for i in range(n_mlp)}
  params = {'enc_content': enc_content, 'enc_style': enc_style, 'dec': dec,
            'mlp': mlp}
  src.check_all_used()
  return {'params': params}
