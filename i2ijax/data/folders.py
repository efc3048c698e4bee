"""Image-folder source: one sub-folder of images per domain.

Two layouts of `root` are understood:

  split layout (MUNIT / MDMM repos): `trainA/, trainB/, …` and optional
      `testA/, testB/, …`. Folders `train<X>` (or `train_<X>`) define the
      domains, named X ('A', 'B', …) in sorted order; `test<X>` is the eval
      split of X. Other sub-folders are ignored.
  named layout: any other set of sub-folders, e.g. `cat/, dog/`; each is a
      domain named after its folder, in sorted order. There is no test split:
      evaluation falls back to the training images.

Images are found recursively (sorted paths; hidden files and folders are
skipped) by extension: .png .jpg .jpeg .bmp .gif. Each file's header is
checked with PIL when a domain is listed (`verify()`, which reads no pixels);
a file that fails is skipped with a warning naming it. Decoding itself happens
in tf.data (`preprocess.decode_image`), which turns grayscale and RGBA into
RGB. We read with our own small tf.data reader rather than
`tfds.folder_dataset.ImageFolder`, which wants `root/split/label/` (an extra
level that these layouts do not have) and decodes on its own terms.
"""

import dataclasses
import os
import re
import warnings

import PIL.Image

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif')
_TRAIN_RE = re.compile(r'^train_?(.+)$')


class FolderError(ValueError):
  """A missing, empty or malformed image folder."""


@dataclasses.dataclass(frozen=True)
class FolderLayout:
  """Domain folders found under a root."""
  root: str
  domain_names: tuple[str, ...]
  train_dirs: tuple[str, ...]
  test_dirs: tuple[str | None, ...]    # None: no test folder for the domain


def _subdirs(path: str) -> list[str]:
  return sorted(e.name for e in os.scandir(path)
                if e.is_dir() and not e.name.startswith('.'))


def scan(root: str) -> FolderLayout:
  """Finds the domain folders of `root` (see the module docstring)."""
  if not root:
    raise FolderError("data.root is empty: set it to a directory with one "
                      "sub-folder per domain (trainA/, trainB/ or cat/, dog/)")
  root = os.path.expanduser(root)
  if not os.path.isdir(root):
    raise FolderError(f'data.root {root!r} does not exist or is not a '
                      'directory')
  subdirs = _subdirs(root)
  train = {m.group(1): name for name in subdirs
           if (m := _TRAIN_RE.match(name))}
  if train:
    names = tuple(sorted(train))
    test_dirs = []
    for x in names:
      test = [t for t in (f'test{x}', f'test_{x}') if t in subdirs]
      test_dirs.append(os.path.join(root, test[0]) if test else None)
    return FolderLayout(root, names,
                        tuple(os.path.join(root, train[x]) for x in names),
                        tuple(test_dirs))
  if not subdirs:
    raise FolderError(f'data.root {root!r} has no sub-folders: put each '
                      'domain in its own folder (trainA/, trainB/ or cat/, '
                      'dog/)')
  return FolderLayout(root, tuple(subdirs),
                      tuple(os.path.join(root, d) for d in subdirs),
                      (None,) * len(subdirs))


def _readable(path: str) -> bool:
  try:
    with PIL.Image.open(path) as image:
      image.verify()
    return True
  except Exception:  # pylint: disable=broad-except  (PIL raises many kinds)
    return False


def list_images(directory: str) -> list[str]:
  """Sorted readable image files under `directory` (recursive).

  Unreadable files are skipped with a warning naming them. Raises FolderError
  if the folder is missing or holds no readable image.
  """
  if not os.path.isdir(directory):
    raise FolderError(f'image folder {directory!r} does not exist')
  files = []
  for dirpath, dirnames, filenames in os.walk(directory):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    files.extend(os.path.join(dirpath, f) for f in filenames
                 if not f.startswith('.')
                 and f.lower().endswith(IMAGE_EXTENSIONS))
  files.sort()
  good = []
  for path in files:
    if _readable(path):
      good.append(path)
    else:
      warnings.warn(f'Skipping unreadable image file {path}', stacklevel=2)
  if not good:
    raise FolderError(
        f'image folder {directory!r} holds no readable image '
        f'(looked for {", ".join(IMAGE_EXTENSIONS)} files)')
  return good
