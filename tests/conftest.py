"""Test setup: 8 fake CPU devices, set before jax is imported anywhere.

NPROC must be at least twice the device count, or cross-device reductions on
XLA:CPU can hang (see shared/environment.md).
"""

import os
import subprocess
import sys

import pytest

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
# XLA compilation dominates the in-process tests (tiny models, a step or a
# few): skipping most XLA optimisation passes halves their CPU time (as
# flax's own tests do). The learning and CLI tests run `python -m ...`
# subprocesses with the default, optimised compilation
# (`_user_environment`). Not always the same numerics: at this level
# XLA:CPU (jax 0.10.2) gets CycleGAN's full cycle-loss gradient ~4% wrong
# (tests/training/test_multihost.py), so a test that compares training
# trajectories across device layouts runs optimised.
jax.config.update('jax_disable_most_optimizations', True)


def _user_environment(fast_compile=False, extra=None):
  """The environment of a user's run: one CPU device.

  This process runs with 8 fake devices and NPROC=16 (above), which makes
  single-device training on 2 cores about 1.6x slower (16 threads compete
  for 2 cores). Subprocess runs of the CLIs drop both, as a user's shell
  would not have them (XLA_FLAGS becomes the one-thread flag below); the
  compilation cache stays shared. `extra` adds or replaces variables (e.g.
  a fake device count for a multi-device run).
  """
  env = dict(os.environ)
  env.pop('NPROC', None)
  # One compute thread per process: the suite runs two workers on two cores,
  # and for these tiny models XLA:CPU's multi-threaded Eigen kernels cost
  # more in synchronisation than they gain (GMVAE-MDMM `:shapes`, one
  # process alone: 3.4 steps/s on one thread, 2.3 on two).
  env['XLA_FLAGS'] = '--xla_cpu_multi_thread_eigen=false'
  env['JAX_COMPILATION_CACHE_DIR'] = jax.config.jax_compilation_cache_dir
  env['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '1'
  if fast_compile:   # as this process (above): for runs that test I/O only
    env['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '1'
  env.update(extra or {})
  return env


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ModuleRunner:
  """Runs `python -m MODULE ARGS...` from the repo root as a user would.

  `fast_compile=True` compiles with most XLA optimisations off, for runs
  that check files and messages rather than learning or speed. `env`
  adds environment variables to the user's (`_user_environment`).
  """

  def __call__(self, module, *args, timeout=900, fast_compile=False,
               env=None):
    """Runs to completion; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, '-m', module, *args],
                          cwd=REPO_ROOT,
                          env=_user_environment(fast_compile, env),
                          capture_output=True, text=True, timeout=timeout,
                          check=False)

  def popen(self, module, *args, fast_compile=False, env=None, **kwargs):
    """Starts it in the background (`subprocess.Popen` keyword args)."""
    return subprocess.Popen([sys.executable, '-m', module, *args],
                            cwd=REPO_ROOT,
                            env=_user_environment(fast_compile, env),
                            text=True, **kwargs)


def pytest_collection_modifyitems(items):
  """Runs the learning tests first, then the other slow ones (stable).

  With pytest-xdist handing out one test at a time (`make test`), the long
  tests then start on both workers at once and the short ones fill the
  gaps, instead of one worker finishing a long learning test alone at the
  end.
  """
  def rank(item):
    if item.get_closest_marker('slow') is None:
      return 2
    return 0 if '/learning/' in str(item.path) else 1
  items.sort(key=rank)


@pytest.fixture
def run_module():
  return ModuleRunner()


@pytest.fixture
def optimized_compilation():
  """XLA's default optimisations, for a test that runs many steps in this
  process (there, unoptimised programs cost more than compiling saves)."""
  jax.config.update('jax_disable_most_optimizations', False)
  yield
  jax.config.update('jax_disable_most_optimizations', True)
