"""What a data source is, without TensorFlow: its spec, domain selection
and the error the input pipeline raises (`pipeline` re-exports all three;
the translate CLI reads domains through them without importing tf.data)."""

import dataclasses
import re

import numpy as np


class DataError(ValueError):
  """Bad data configuration or unusable data; the message says the fix."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
  name: str                        # config.data.name
  domain_names: tuple[str, ...]    # the selected domains, in label order
  image_size: int                  # training crop = eval size
  num_modes: int                   # shapes: 3 (ground-truth style modes)
  has_masks: bool                  # shapes: True


def select_domains(available: tuple[str, ...], requested) -> tuple[int, ...]:
  """Indices into `available` of `requested` names / indices (() = all).

  `requested` may also be one comma-separated string ('day,sketch').
  """
  if isinstance(requested, str):
    requested = [r for r in requested.split(',') if r.strip()]
  listing = ', '.join(f'{i}={n!r}' for i, n in enumerate(available))
  if not requested:
    return tuple(range(len(available)))
  chosen = []
  for r in requested:
    if isinstance(r, str) and r.strip() in available:
      index = available.index(r.strip())
    elif isinstance(r, (int, np.integer)) and not isinstance(r, bool):
      index = int(r)
    elif isinstance(r, str) and re.fullmatch(r'\s*\d+\s*', r):
      index = int(r)
    else:
      raise DataError(f'data.domains: unknown domain {r!r}; available: '
                      f'{listing}')
    if not 0 <= index < len(available):
      raise DataError(f'data.domains: index {index} out of range; '
                      f'available: {listing}')
    if index in chosen:
      raise DataError(f'data.domains: domain {available[index]!r} is '
                      'selected twice')
    chosen.append(index)
  return tuple(chosen)
