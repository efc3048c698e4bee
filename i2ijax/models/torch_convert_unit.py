"""Flax variables for the UNIT networks from NVlabs/MUNIT `VAEGen` weights.

Same conventions as `torch_convert` (parity-fixture layout `param/<name>`,
every parameter consumed, OIHW → HWIO). Reference names:
  enc.model.0 … enc.model.{n}          stem + stride-2 `Conv2dBlock`s
  enc.model.{n+1}.model.<i>            the encoder `ResBlocks`
  dec.model.0.model.<i>                the decoder `ResBlocks`
  dec.model.{2j+2}                     upsampling `Conv2dBlock` j (LN)
  dec.model.{2n+1}                     output `Conv2dBlock` (tanh)
(`dec.model.{2j+1}` are the parameter-free `Upsample`s.)

`vaegen_variables` gives the variables of `unit.VAEGen`;
`unit_generator_variables` puts the two v1 generators `gen_a`, `gen_b` into
one `unit.UNITGenerator`. With `shared_layers=0` this is exact; with k > 0
the last k encoder and first k decoder res blocks become the shared modules,
which needs equal weights in both generators (a v1 checkpoint has none
shared), otherwise it raises.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from i2ijax.models import torch_convert_munit_blocks as munit_convert


def _count(source, fmt):
  count = 0
  while any(p.startswith(fmt.format(count)) for p in source.params):
    count += 1
  return count


def vaegen_variables(arrays: Mapping[str, Any]) -> dict:
  """`VAEGen` state dict → {'params': {'enc': …, 'dec': …}} of `VAEGen`.

  n_downsample and n_res are read from the names.
  """
  source = munit_convert.MunitSource(arrays)
  n_down = sum(source.has_param(f'enc.model.{i}.conv.weight')
               for i in range(_count(source, 'enc.model.{}.'))) - 1
  n_res = _count(source, f'enc.model.{n_down + 1}.model.{{}}.')
  enc = {f'conv_{i}': source.conv_block_params(f'enc.model.{i}')
         for i in range(n_down + 1)}
  if n_res:
    enc['res'] = source.res_blocks(f'enc.model.{n_down + 1}', n_res)
  dec = {}
  if n_res:
    dec['res'] = source.res_blocks('dec.model.0', n_res)
  for j in range(n_down):
    dec[f'up_{j}'] = source.conv_block_params(f'dec.model.{2 * j + 2}')
  dec['out'] = source.conv_block_params(f'dec.model.{2 * n_down + 1}')
  source.check_all_used()
  return {'params': {'enc': enc, 'dec': dec}}


def _split_res(res: dict, first: int) -> tuple[dict, dict]:
  """ResBlocks params → (blocks < first, blocks ≥ first renumbered from 0)."""
  head, tail = {}, {}
  for i in range(len(res)):
    if i < first:
      head[f'block_{i}'] = res[f'block_{i}']
    else:
      tail[f'block_{i - first}'] = res[f'block_{i}']
  return head, tail


def _same(tree_a, tree_b):
  return all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)))


def unit_generator_variables(arrays_a: Mapping[str, Any],
                             arrays_b: Mapping[str, Any],
                             shared_layers: int = 0) -> dict:
  """`gen_a`, `gen_b` (`VAEGen`s) → variables of `unit.UNITGenerator`."""
  params, shared = {}, {}
  for name, arrays in (('a', arrays_a), ('b', arrays_b)):
    vae = vaegen_variables(arrays)['params']
    enc, dec = dict(vae['enc']), dict(vae['dec'])
    n_res = len(enc.get('res', {}))
    if shared_layers > n_res:
      raise ValueError(f'shared_layers={shared_layers} > n_res={n_res}.')
    if n_res:
      own_enc, enc_shared = _split_res(enc.pop('res'), n_res - shared_layers)
      dec_shared, own_dec = _split_res(dec.pop('res'), shared_layers)
      if own_enc:
        enc['res'] = own_enc
      if own_dec:
        dec['res'] = own_dec
      shared[name] = (enc_shared, dec_shared)
    params[f'enc_{name}'], params[f'dec_{name}'] = enc, dec
  if shared_layers:
    if not _same(shared['a'], shared['b']):
      raise ValueError(
          f'shared_layers={shared_layers} needs identical weights in the '
          'shared res blocks of gen_a and gen_b (the v1 code shares none).')
    params['enc_shared'], params['dec_shared'] = shared['a']
  return {'params': params}
