"""A cheap check that a train step is a pure function of its arguments."""

import jax


def assert_traces_to_the_same_program(step, *args):
  """Two fresh traces of `step(*args)` lower to identical StableHLO.

  A step that keeps Python-side state (a counter, a cache) or draws host
  randomness (`np.random`, `random`) bakes different constants or ops into
  each trace, so the texts differ; a pure step gives the same program every
  time. Lowering only (no XLA compilation; `args` may be abstract
  `jax.ShapeDtypeStruct`s): seconds. It replaces comparing the jitted step
  with an op-by-op eager run (1-3 minutes per model on 2 cores); what only
  that comparison would see, code that branches on being traced, no step
  here has.
  """
  texts = [jax.jit(lambda *a: step(*a)).lower(*args).as_text()
           for _ in range(2)]
  assert texts[0] == texts[1], 'the step traced to two different programs'
