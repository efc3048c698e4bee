"""orbax checkpoints: state + config (JSON) + data position, automatic resume.

Layout: `<workdir>/checkpoints/<step>/{state, config, data}` (step folders named
by the main step). Saves are async; `close()` waits for them. The last N are
kept, and nothing is deleted on an error path: a failing run never saves a
non-finite state (the loop checks first), so the newest checkpoint on disk is
always the last good one.
"""

import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
  """A workdir's checkpoint does not fit the model being restored."""


class Checkpointer:
  """A thin wrapper around `ocp.CheckpointManager` for a `TrainState`."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_names=('state', 'config', 'data'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, config: ml_collections.ConfigDict,
           data_position: dict[str, Any]) -> None:
    """Saves asynchronously; a step that is already saved is skipped."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(config.to_dict()),
        data=ocp.args.JsonSave(data_position)))

  def restore(self, abstract_state, step: int | None = None):
    """Restores (state, config dict, data position) at `step` (default latest).

    `abstract_state` gives the target structure (e.g. `jax.eval_shape` of the
    init, or a real state); arrays come back with its shardings.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}')
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state),
          config=ocp.args.JsonRestore(),
          data=ocp.args.JsonRestore()))
    except ValueError as error:   # structure, shape or dtype mismatch
      raise CheckpointMismatchError(
          f'The checkpoint at step {step} in {self.directory} '
          f'({self._describe(step)}) does not match the model being '
          'trained (different model, widths or image size?); it was left '
          'untouched. Use a new --workdir or the config the run was started '
          f'with. Details: {str(error).splitlines()[0]}') from error
    return restored.state, restored.config, restored.data

  def _describe(self, step: int) -> str:
    """The saved config's model name and image size, as far as readable."""
    try:
      config = self._manager.restore(step, args=ocp.args.Composite(
          config=ocp.args.JsonRestore())).config
      return (f"saved by model {config['model']['name']!r} at "
              f"{config['data']['image_size']}px")
    except Exception:  # pylint: disable=broad-except  (best effort)
      return 'saved config unreadable'

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def restore_config(workdir: str, step: int | None = None) -> tuple[
    ml_collections.ConfigDict, int]:
  """Reads the config saved with a run's checkpoint (latest by default)."""
  checkpointer = Checkpointer(workdir)
  try:
    step = checkpointer.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(
          f'No checkpoint found in {checkpointer.directory}: train first with '
          f'`python -m i2ijax.main --config=... --workdir={workdir}`.')
    restored = checkpointer._manager.restore(  # pylint: disable=protected-access
        step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  finally:
    checkpointer.close()
  return ml_collections.ConfigDict(restored.config), step


def abstract(tree):
  """Shape/dtype/sharding skeleton of a pytree of arrays (for restore)."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
