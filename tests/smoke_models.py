"""Every model's `:smoke` objective, batches and loop order, for tests."""

import re

import jax
import jax.numpy as jnp
import numpy as np

from i2ijax import objectives
from i2ijax.data import pipeline
import config_files

MODELS = ('mdmm', 'gmvae_mdmm', 'munit', 'unit', 'cyclegan', 'tunit')
IMAGE_SIZE = 32


def smoke_config(name: str, **model_overrides):
  """`configs/<name>.py:smoke` with `config.model` fields overridden."""
  config = config_files.get_config(name, 'smoke')
  for key, value in model_overrides.items():
    config.model[key] = value
  return config


def data_spec(config) -> pipeline.DataSpec:
  """The smoke data's spec without building the dataset."""
  names = tuple(config.data.domains) or ('day', 'night', 'sketch')
  return pipeline.DataSpec(name='shapes', domain_names=names,
                           image_size=IMAGE_SIZE, num_modes=3, has_masks=True)


def build(name: str, **model_overrides):
  """(objective, config) of `name`'s smoke config with the overrides."""
  config = smoke_config(name, **model_overrides)
  return objectives.build(config, data_spec(config)), config


def batch(config, seed: int = 0) -> dict:
  """A fresh host batch of the config's shapes, rows grouped by domain."""
  rng = np.random.default_rng(seed)
  size, count = config.train.batch_size, len(data_spec(config).domain_names)
  image = rng.uniform(-1, 1, (size, IMAGE_SIZE, IMAGE_SIZE, 3))
  return {'image': image.astype(np.float32),
          'domain': (np.arange(size) * count // size).astype(np.int32)}


def loop_steps(model, iterations: int) -> list[str]:
  """The step methods `train.py` calls in its first `iterations`, in order."""
  names, step = [], 0
  for iteration in range(iterations):
    if model.uses_content_dis and model.is_content_d_iteration(iteration):
      names.append('content_d_step')
      continue
    warmup = hasattr(model, 'warmup_step') and model.is_warmup_step(step)
    names.append('warmup_step' if warmup else 'train_step')
    step += 1
  return names


def conv_dtypes(hlo_text: str) -> set[str]:
  """Element types of every operand and result of the StableHLO convs."""
  types = set()
  for line in hlo_text.splitlines():
    if 'stablehlo.convolution' in line:
      types.update(re.findall(r'tensor<[0-9x]*x([a-z0-9]+)>', line))
  return types


def float_dtypes(tree) -> set:
  """The dtypes of the floating leaves of `tree`."""
  return {leaf.dtype for leaf in jax.tree.leaves(tree)
          if jnp.issubdtype(leaf.dtype, jnp.floating)}
