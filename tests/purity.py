"""A cheap check that a train step is a pure function of its arguments."""

import jax


def assert_traces_to_the_same_program(step, *args):
  """Two fresh traces of `step(*args)` lower to identical StableHLO.

  A step that keeps Python-side state (a counter, a cache) or draws host
  randomness (`np.random`, `random`) bakes different constants or ops into
  each trace, so the texts differ; a pure step gives the same program every
  time. Lowering only (no XLA compilation): a few seconds. The op-by-op
  eager comparison in tests/objectives/test_mdmm_steps.py checks the rest
  of jit == no-jit for the main model (it costs minutes on 2 cores).
  """
  texts = [jax.jit(lambda *a: step(*a)).lower(*args).as_text()
           for _ in range(2)]
  assert texts[0] == texts[1], 'the step traced to two different programs'
