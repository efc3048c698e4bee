"""Test setup: 8 fake CPU devices, set before jax is imported anywhere.

NPROC must be at least twice the device count, or cross-device reductions on
XLA:CPU can hang (see shared/environment.md).
"""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
if '--xla_force_host_platform_device_count' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=8'
os.environ.setdefault('NPROC', '16')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

import jax  # noqa: E402  (after the environment is set)

jax.config.update('jax_compilation_cache_dir',
                  os.environ.get('I2IJAX_JAX_CACHE',
                                 os.path.expanduser('~/.cache/i2ijax/jax')))
jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
