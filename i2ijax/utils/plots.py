"""Dependency-free plots for the evaluator: a 2-D PCA scatter as a PNG.

TUNIT's paper shows t-SNE maps of style codes coloured by domain (seed
Fig. 4/6); a PCA projection needs no extra package and shows the same
separation when the clusters are linear. Points are drawn as small squares
in a fixed palette on a white canvas (no axes or text; the colour of label
k is PALETTE[k % len(PALETTE)]).
"""

import numpy as np

from i2ijax.utils import images as image_utils

PALETTE = np.array([
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
    [188, 189, 34], [23, 190, 207]], np.uint8)


def pca_2d(features: np.ndarray) -> np.ndarray:
  """(N, D) → (N, 2): projections on the two leading principal axes."""
  features = np.asarray(features, np.float64)
  centred = features - features.mean(axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  components = vt[:2]
  if components.shape[0] < 2:     # D == 1: a zero second axis
    components = np.vstack([components, np.zeros_like(components)])
  return centred @ components.T


def scatter_image(points: np.ndarray, labels: np.ndarray, size: int = 256,
                  marker: int = 2) -> np.ndarray:
  """(N, 2) points with (N,) int labels → (size, size, 3) uint8 image."""
  points = np.asarray(points, np.float64)
  labels = np.asarray(labels).astype(int)
  canvas = np.full((size, size, 3), 255, np.uint8)
  low, high = points.min(axis=0), points.max(axis=0)
  span = np.where(high > low, high - low, 1.0)
  margin = marker + 2
  pixels = margin + (points - low) / span * (size - 1 - 2 * margin)
  cols, rows = pixels[:, 0].round().astype(int), (
      size - 1 - pixels[:, 1]).round().astype(int)
  for r, c, k in zip(rows, cols, labels):
    canvas[r - marker:r + marker + 1, c - marker:c + marker + 1] = (
        PALETTE[k % len(PALETTE)])
  return canvas


def save_pca_scatter(path: str, features: np.ndarray,
                     labels: np.ndarray) -> np.ndarray:
  """Writes the PCA scatter of `features` coloured by `labels`; returns the
  (N, 2) projected points."""
  points = pca_2d(features)
  image_utils.save_png(path, scatter_image(points, labels))
  return points
