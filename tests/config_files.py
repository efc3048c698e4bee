"""The config files of `configs/`, loaded as `--config=` loads them."""

import importlib.util
import pathlib
import types

import ml_collections

CONFIG_DIR = pathlib.Path(__file__).parents[1] / 'configs'


def load_module(name: str) -> types.ModuleType:
  """`configs/<name>.py` as a fresh module (its constants, `get_config`)."""
  spec = importlib.util.spec_from_file_location(f'{name}_config',
                                                CONFIG_DIR / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """What `--config=configs/<name>.py:<arg>` gives (`arg=None`: no `:ARG`)."""
  return load_module(name).get_config(arg)
