"""The evaluator's PCA scatter: projection maths and the drawn image."""

import numpy as np
from PIL import Image

from i2ijax.utils import plots


def test_pca_finds_the_axis_of_largest_variance():
  rng = np.random.default_rng(0)
  direction = np.array([3.0, 4.0, 0.0]) / 5.0
  t = rng.normal(size=200)
  features = 10 * t[:, None] * direction + 0.01 * rng.normal(size=(200, 3))
  points = plots.pca_2d(features)
  assert points.shape == (200, 2)
  # First coordinate = ±10·t (the signal), second ≈ noise.
  assert abs(np.corrcoef(points[:, 0], t)[0, 1]) > 0.999
  assert points[:, 1].std() < 0.05
  np.testing.assert_allclose(points.mean(axis=0), 0.0, atol=1e-9)


def test_scatter_draws_each_label_in_its_colour(tmp_path):
  features = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 1.0]])
  labels = np.array([0, 0, 1, 1])
  path = tmp_path / 'pca.png'
  plots.save_pca_scatter(str(path), features, labels)
  image = np.asarray(Image.open(path))
  assert image.shape == (256, 256, 3)
  colours = {tuple(c) for c in image.reshape(-1, 3)}
  assert colours == {(255, 255, 255), tuple(plots.PALETTE[0]),
                     tuple(plots.PALETTE[1])}
