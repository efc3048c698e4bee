"""Flax variables from PyTorch state dicts of the reference networks.

Each `*_variables(arrays)` takes a mapping in the parity-fixture layout
(`param/<torch name>` and `buffer/<torch name>` numpy arrays, e.g. an opened
`.npz`; a plain `state_dict` can be wrapped with `from_state_dict`) and
returns the Flax variables (`{'params': ..., 'batch_stats': ...}`) of the
matching i2ijax module. Every `param/` entry must be consumed, otherwise a
`ValueError` lists the leftovers (so a silently ignored weight cannot pass a
parity test).

Layouts: Conv2d OIHW → HWIO (transpose 2,3,1,0); ConvTranspose2d IOHW →
(k, k, Cin, Cout) unflipped (transpose 2,3,0,1, see `layers.conv`); Linear
(out, in) → (in, out); the MDMM LayerNorm's (C,1,1) affine → (C,).

Module ↔ reference class: `mdmm.ContentEncoder` ↔ `MD_E_content`,
`mdmm.AttributeEncoder` ↔ `MD_E_attr_concat`, `mdmm.Generator` ↔
`MD_G_multi_concat`, `mdmm.ImageDiscriminator` ↔ `MD_Dis` (with or without
spectral norm), `mdmm.ContentDiscriminator(adaptive=False)` ↔
`MD_Dis_content`, and `gmvae.*` ↔ jariasf/GMVAE's `GumbelSoftmax`,
`Gaussian`, `InferenceNet`, `GenerativeNet`.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np


class _Source:
  """Reads `param/` / `buffer/` arrays and tracks which params were used."""

  def __init__(self, arrays: Mapping[str, Any]):
    self.arrays = arrays
    self.params = {k[len('param/'):] for k in arrays if k.startswith('param/')}
    self.used = set()

  def param(self, name: str) -> np.ndarray:
    if name not in self.params:
      raise ValueError(f'The state dict has no parameter {name!r}; '
                       'is this the right converter for it?')
    self.used.add(name)
    return np.asarray(self.arrays['param/' + name], np.float32)

  def buffer(self, name: str) -> np.ndarray:
    return np.asarray(self.arrays['buffer/' + name], np.float32)

  def has_param(self, name: str) -> bool:
    return name in self.params

  def check_all_used(self):
    unused = sorted(self.params - self.used)
    if unused:
      raise ValueError(f'Parameters not consumed by the converter: {unused}')

  # Layer converters.
  def conv(self, name: str, bias: bool = True) -> dict:
    out = {'kernel': self.param(f'{name}.weight').transpose(2, 3, 1, 0)}
    if bias:
      out['bias'] = self.param(f'{name}.bias')
    return out

  def conv_transpose(self, name: str) -> dict:
    return {'kernel': self.param(f'{name}.weight').transpose(2, 3, 0, 1),
            'bias': self.param(f'{name}.bias')}

  def linear(self, name: str) -> dict:
    return {'kernel': self.param(f'{name}.weight').T,
            'bias': self.param(f'{name}.bias')}

  def layer_norm(self, name: str) -> dict:
    return {'scale': self.param(f'{name}.weight').reshape(-1),
            'bias': self.param(f'{name}.bias').reshape(-1)}

  def res_block(self, name: str) -> dict:
    """INSResBlock: convs at `model.1` and `model.5`."""
    return {'conv1': self.conv(f'{name}.model.1'),
            'conv2': self.conv(f'{name}.model.5')}


def from_state_dict(state_dict: Mapping[str, Any],
                    buffer_names: tuple[str, ...] = ()) -> dict:
  """Wraps a plain name → array state dict in the fixture layout."""
  return {('buffer/' if k in buffer_names else 'param/') + k: np.asarray(v)
          for k, v in state_dict.items()}


def _done(src: _Source, params: dict, **collections) -> dict:
  src.check_all_used()
  return {'params': params, **collections}


def content_encoder_variables(arrays) -> dict:
  """`MD_E_content` → `mdmm.ContentEncoder`."""
  src = _Source(arrays)
  params = {'conv1': {'conv': src.conv('conv.0.model.1')},
            'down1': {'conv': src.conv('conv.1.model.1')},
            'down2': {'conv': src.conv('conv.2.model.1')}}
  for i in range(4):
    params[f'res{i + 1}'] = src.res_block(f'conv.{i + 3}')
  return _done(src, params)


def _attribute_trunk(src: _Source) -> dict:
  trunk = {'conv_in': src.conv('conv.1')}
  for i in range(3):
    name = f'conv.{i + 2}'
    trunk[f'block{i + 1}'] = {'conv1': src.conv(f'{name}.conv.2'),
                              'conv2': src.conv(f'{name}.conv.4.1'),
                              'shortcut': src.conv(f'{name}.shortcut.1')}
  return trunk


def attribute_encoder_variables(arrays) -> dict:
  """`MD_E_attr_concat` → `mdmm.AttributeEncoder`."""
  src = _Source(arrays)
  params = {'trunk': _attribute_trunk(src), 'fc': src.linear('fc.0'),
            'fc_var': src.linear('fcVar.0')}
  return _done(src, params)


def generator_variables(arrays) -> dict:
  """`MD_G_multi_concat` → `mdmm.Generator`."""
  src = _Source(arrays)
  params = {'dec_share': src.res_block('dec_share.0')}
  for i in range(3):
    params[f'dec1_{i}'] = src.res_block(f'dec1.{i}')
  for stage in ('dec2', 'dec3'):
    params[stage] = {'convt': src.conv_transpose(f'{stage}.0.model.0'),
                     'norm': src.layer_norm(f'{stage}.0.model.1')}
  params['dec4'] = src.conv_transpose('dec4.0')
  return _done(src, params)


def image_discriminator_variables(arrays) -> dict:
  """`MD_Dis` (with or without spectral norm) → `mdmm.ImageDiscriminator`.

  With spectral norm, `weight_u` becomes `batch_stats/.../u`, and the stored
  `weight` buffer (weight_orig / σ) becomes σ.
  """
  src = _Source(arrays)
  params, stats = {}, {}
  i = 0
  while src.has_param(f'model.{i}.model.1.bias'):
    name = f'model.{i}.model.1'
    if src.has_param(f'{name}.weight_orig'):
      orig = src.param(f'{name}.weight_orig')
      weight = src.buffer(f'{name}.weight')
      sigma = float(np.sum(orig * weight) / np.sum(weight * weight))
      if not np.allclose(orig, sigma * weight, rtol=1e-4, atol=1e-6):
        raise ValueError(f'{name}: the weight buffer is not a multiple of '
                         'weight_orig.')
      conv = {'kernel': orig.transpose(2, 3, 1, 0),
              'bias': src.param(f'{name}.bias')}
      stats[f'conv{i}'] = {'conv': {'u': src.buffer(f'{name}.weight_u'),
                                    'sigma': np.float32(sigma)}}
    else:
      conv = src.conv(name)
    params[f'conv{i}'] = {'conv': conv}
    i += 1
  params['adv_head'] = src.conv('conv1', bias=False)
  params['cls_head'] = src.conv('conv2', bias=False)
  return _done(src, params, **({'batch_stats': stats} if stats else {}))


def content_discriminator_variables(arrays) -> dict:
  """`MD_Dis_content` → `mdmm.ContentDiscriminator(adaptive=False)`."""
  src = _Source(arrays)
  params = {f'conv{i}': {'conv': src.conv(f'model.{i}.model.1')}
            for i in range(4)}
  params['classifier'] = src.conv('model.4')
  return _done(src, params)


def _gumbel(src: _Source, prefix: str) -> dict:
  return {'logits': src.linear(f'{prefix}logits')}


def _gaussian(src: _Source, prefix: str) -> dict:
  return {'mu': src.linear(f'{prefix}mu'), 'var': src.linear(f'{prefix}var')}


def gumbel_softmax_variables(arrays) -> dict:
  """[GMVAE] `GumbelSoftmax` → `gmvae.GumbelSoftmax`."""
  src = _Source(arrays)
  return _done(src, _gumbel(src, ''))


def gaussian_head_variables(arrays) -> dict:
  """[GMVAE] `Gaussian` → `gmvae.GaussianHead`."""
  src = _Source(arrays)
  return _done(src, _gaussian(src, ''))


def inference_net_variables(arrays) -> dict:
  """[GMVAE] `InferenceNet` → `gmvae.InferenceNet`."""
  src = _Source(arrays)
  params = {'qyx_0': src.linear('inference_qyx.0'),
            'qyx_1': src.linear('inference_qyx.2'),
            'qyx_gumbel': _gumbel(src, 'inference_qyx.4.'),
            'qzyx_0': src.linear('inference_qzyx.0'),
            'qzyx_1': src.linear('inference_qzyx.2'),
            'qzyx_gaussian': _gaussian(src, 'inference_qzyx.4.')}
  return _done(src, params)


def generative_net_variables(arrays) -> dict:
  """[GMVAE] `GenerativeNet` → `gmvae.GenerativeNet`."""
  src = _Source(arrays)
  params = {'y_mu': src.linear('y_mu'), 'y_var': src.linear('y_var'),
            'pxz_0': src.linear('generative_pxz.0'),
            'pxz_1': src.linear('generative_pxz.2'),
            'pxz_out': src.linear('generative_pxz.4')}
  return _done(src, params)
