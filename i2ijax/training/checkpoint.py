"""orbax checkpoints: state + config (JSON) + data position, automatic resume.

Layout: `<workdir>/checkpoints/<step>/{state, config, data, data_iterator}`
(step folders named by the main step). `data_iterator` holds the training
input's position (`pipeline.TrainIterator.save`, one file set per data
shard, written by the process that reads it), written synchronously by an
orbax handler while the rest is written in the background, so it is
committed, kept and pruned with the step it belongs to. orbax writes every
step into a temporary folder and renames it when complete: a save cut short
(SIGKILL, crash) leaves only that temporary folder, which `latest_step` /
`restore` never see, so a restart resumes from the previous complete step;
`remove_incomplete=True` (the training loop) deletes such leftovers. With
several processes every process calls `save` / `restore`: orbax writes the
state collectively (each process its own shards), the JSON items and the
commit from process 0. Saves are async; `close()` waits for them. The last
N are kept, and nothing is deleted on an error path: a failing run never
saves a non-finite state (the loop checks first), and a failed write (disk
full: `DiskFullError`) leaves the previous checkpoints as they were.
"""

import contextlib
import dataclasses
import errno
import os
from typing import Any

from etils import epath
import jax
import ml_collections
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
  """A workdir's checkpoint does not fit the model being restored."""


class DiskFullError(OSError):
  """A checkpoint could not be written: no space left on the device."""


class DataIteratorHandler(ocp.CheckpointHandler):
  """An input iterator's position as a checkpoint item.

  Every process calls the iterator's `save(directory)` / `restore(directory)`
  (e.g. `pipeline.TrainIterator`) on the item's folder, synchronously: the
  position is on disk before the loop draws the next batch.
  """

  def save(self, directory: epath.Path, args: 'DataIteratorSave'):
    args.iterator.save(os.fspath(directory))

  def restore(self, directory: epath.Path, args: 'DataIteratorRestore'):
    args.iterator.restore(os.fspath(directory))
    return args.iterator


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataIteratorSave(ocp.args.CheckpointArgs):
  iterator: Any


@ocp.args.register_with_handler(DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataIteratorRestore(ocp.args.CheckpointArgs):
  iterator: Any


class Checkpointer:
  """A thin wrapper around `ocp.CheckpointManager` for a `TrainState`.

  `remove_incomplete` deletes the temporary folders of saves that never
  finished (only for the run that writes the workdir: an evaluator opening
  it meanwhile must not touch a save in flight).
  """

  def __init__(self, workdir: str, *, max_to_keep: int = 3,
               remove_incomplete: bool = False):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, 'checkpoints')
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_names=('state', 'config', 'data', 'data_iterator'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            cleanup_tmp_directories=remove_incomplete))
    self._saving = None   # the step of the save in flight
    self._failed = False  # a write failed (its error was raised)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, config: ml_collections.ConfigDict,
           data_position: dict[str, Any], data_iterator=None) -> None:
    """Saves asynchronously; a step that is already saved is skipped.

    `data_iterator` (an object with `save(directory)`, e.g. a
    `pipeline.TrainIterator`) is saved before this returns.

    Raises:
      DiskFullError: this or the previous save ran out of disk space.
    """
    if step in self._manager.all_steps():
      return
    items = dict(state=ocp.args.StandardSave(state),
                 config=ocp.args.JsonSave(config.to_dict()),
                 data=ocp.args.JsonSave(data_position))
    if data_iterator is not None:
      items['data_iterator'] = DataIteratorSave(data_iterator)
    self._wait()
    with self._write_errors(step):
      self._manager.save(step, args=ocp.args.Composite(**items))
    self._saving = step

  def _wait(self):
    """Waits for the save in flight (raising its error)."""
    step, self._saving = self._saving, None
    with self._write_errors(step):
      self._manager.wait_until_finished()

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

  def restore_data_iterator(self, step: int, iterator) -> None:
    """Restores `iterator` (with `restore(directory)`) to its position saved
    at `step`.

    Raises:
      FileNotFoundError: the step holds no data position (a checkpoint of an
        older version) or none of this process.
      ValueError: the iterator refuses the saved position (other settings).
    """
    step_dir = epath.Path(self.directory) / str(step)
    if not (step_dir / 'data_iterator').exists():
      raise FileNotFoundError(f'No data position saved in {step_dir}')
    self._manager.restore(step, args=ocp.args.Composite(
        data_iterator=DataIteratorRestore(iterator)))

  def close(self) -> None:
    """Waits for the save in flight and releases orbax's threads.

    Raises:
      DiskFullError: that save ran out of disk space.
    """
    step = self._saving
    try:
      self._wait()
    finally:
      try:
        with self._write_errors(step):
          self._manager.close()
      except Exception:  # pylint: disable=broad-except
        if not self._failed:   # else it is the reported error once more
          raise

  @contextlib.contextmanager
  def _write_errors(self, step):
    """Notes a failed write of `step`; running out of space becomes a
    DiskFullError naming the workdir and the newest complete checkpoint."""
    try:
      yield
    except Exception as error:
      self._failed = True
      if not _is_disk_full(error):
        raise
      self._manager.reload()   # forget the failed step
      kept = self.latest_step()
      raise DiskFullError(
          errno.ENOSPC,
          f'Disk full: no space left to write the checkpoint of step {step} '
          f'in {self.workdir}. '
          + (f'The previous checkpoint (step {kept}) is intact; free some '
             'space and run again to resume from it.' if kept is not None
             else 'No earlier checkpoint exists.')
          + f' ({error})') from error


def _is_disk_full(error) -> bool:
  while error is not None:
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or (
        'No space left on device' in str(error)):
      return True
    error = error.__cause__ or error.__context__
  return False


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
