"""Image grids and PNG files for summaries and the CLIs."""

import os

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images to uint8 ((x + 1) / 2 · 255, rounded, clamped)."""
  images = np.asarray(images, np.float32)
  return np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def make_grid(images, padding: int = 2) -> np.ndarray:
  """Tiles (rows, cols, H, W, C) images into one (H', W', C) uint8 image."""
  images = to_uint8(images)
  rows, cols, height, width, channels = images.shape
  grid = np.full((rows * (height + padding) + padding,
                  cols * (width + padding) + padding, channels), 255, np.uint8)
  for r in range(rows):
    for c in range(cols):
      top, left = padding + r * (height + padding), padding + c * (
          width + padding)
      grid[top:top + height, left:left + width] = images[r, c]
  return grid


def save_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 (H, W, 3) image atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp'
  Image.fromarray(image).save(tmp, format='PNG')
  os.replace(tmp, path)


def from_uint8(images) -> np.ndarray:
  """uint8 images to float32 in [-1, 1] (x / 127.5 − 1, the input pipeline's
  normalisation `data.preprocess.to_unit_range`, without TensorFlow)."""
  return np.asarray(images, np.float32) / 127.5 - 1.0


def load_image(path: str) -> np.ndarray:
  """Decodes an image file to uint8 (H, W, 3) with PIL.

  As the input pipeline's decoder: grayscale is replicated to RGB, alpha is
  dropped, a GIF gives its first frame. Raises ValueError naming the file if
  it cannot be read or decoded.
  """
  try:
    with Image.open(path) as image:
      image.seek(0)
      return np.asarray(image.convert('RGB'), np.uint8)
  except (OSError, ValueError, SyntaxError,
          Image.DecompressionBombError) as e:   # PIL's decode errors
    raise ValueError(f'Cannot read image {path!r}: {e}') from None
