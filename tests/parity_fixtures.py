"""Golden outputs of the reference networks, for the parity tests.

The fixtures live in `<repo>/../shared/parity` (or `$I2IJAX_PARITY_DIR`):
`<name>.npz` holds the inputs, weights and outputs, `<name>.json` the
reference constructor's arguments. Tests skip when they are absent.
Importable from any test module (`pythonpath = ["tests"]` in pyproject).
"""

import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def find_dir(marker: str) -> Path | None:
  """The fixture folder holding `<marker>.npz`, or None."""
  candidates = [REPO / '..' / 'shared' / 'parity', REPO / 'shared' / 'parity']
  if os.environ.get('I2IJAX_PARITY_DIR'):
    candidates.append(Path(os.environ['I2IJAX_PARITY_DIR']))
  for path in candidates:
    if (path / f'{marker}.npz').exists():
      return path
  return None


def skip_unless_found(directory: Path | None):
  """A skip mark for tests that need the fixtures of `find_dir`."""
  return pytest.mark.skipif(
      directory is None, reason='parity fixtures not found at <repo>/../'
      'shared/parity; set I2IJAX_PARITY_DIR')


def load_arrays(directory: Path, name: str) -> dict[str, np.ndarray]:
  return dict(np.load(directory / f'{name}.npz'))


def load(directory: Path, name: str) -> tuple[dict[str, np.ndarray], dict]:
  """(arrays of `<name>.npz`, metadata of `<name>.json`)."""
  meta = json.loads((directory / f'{name}.json').read_text())
  return load_arrays(directory, name), meta


def nhwc(a: np.ndarray) -> jnp.ndarray:
  """A PyTorch NCHW array as NHWC."""
  return jnp.asarray(a.transpose(0, 2, 3, 1))


def assert_close(ours, ref: np.ndarray, rtol: float = 1e-4,
                 atol: float = 1e-4) -> None:
  """Same shape and allclose (the parity bar: 1e-4)."""
  ours = np.asarray(ours)
  assert ours.shape == ref.shape, (ours.shape, ref.shape)
  np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)
