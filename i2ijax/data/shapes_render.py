"""Procedural renderer of the embedded `shapes` benchmark (pure numpy, no I/O).

A *scene* (the content) is 1-3 shapes (circle, square, triangle) with a random
position, size and rotation, in normalised [0, 1]² coordinates, so the same
scene can be rendered at any resolution. A *domain* renders a scene in its own
way, and each domain has `NUM_MODES` style modes (palettes / stroke widths):

  day:    light gradient background, filled shapes (mode = palette).
  night:  dark noisy background, dark shapes with bright outlines
          (mode = outline colour).
  sketch: paper background, black outlines only (mode = paper tint and
          stroke width).

Rendering is anti-aliased with signed distance fields. Everything is seeded:
`render(scene, domain, mode, size, seed)` is a pure function of its inputs.
The per-pixel shape mask (union of the filled shapes) is the same in every
domain and mode, which gives ground truth for `content_iou`.
"""

from typing import NamedTuple

import numpy as np

DOMAINS = ('day', 'night', 'sketch')
SHAPE_TYPES = ('circle', 'square', 'triangle')
NUM_MODES = 3

# Day palettes: (background top, background bottom, shape colours).
_DAY_PALETTES = (
    ((0.80, 0.90, 1.00), (0.55, 0.75, 0.95),
     ((0.90, 0.20, 0.10), (0.95, 0.55, 0.05), (0.85, 0.10, 0.35))),
    ((1.00, 0.97, 0.75), (0.95, 0.85, 0.50),
     ((0.10, 0.55, 0.15), (0.20, 0.45, 0.05), (0.05, 0.40, 0.30))),
    ((1.00, 0.85, 0.90), (0.95, 0.70, 0.80),
     ((0.40, 0.10, 0.60), (0.20, 0.15, 0.70), (0.55, 0.05, 0.50))),
)
# Night outline colours.
_NIGHT_OUTLINES = ((0.2, 1.0, 1.0), (1.0, 0.25, 1.0), (1.0, 0.95, 0.2))
# Sketch: (paper colour, stroke width as a fraction of the image size).
_SKETCH_STYLES = (((0.98, 0.98, 0.96), 0.016),
                  ((0.93, 0.87, 0.72), 0.035),
                  ((0.80, 0.86, 0.93), 0.06))


class Shape(NamedTuple):
  kind: int        # index into SHAPE_TYPES
  cx: float        # centre, in [0, 1]
  cy: float
  radius: float    # circumradius, fraction of the image size
  angle: float     # rotation in radians


def sample_scene(rng: np.random.Generator) -> tuple[Shape, ...]:
  """Draws a scene of 1-3 shapes that stay inside the image."""
  num_shapes = int(rng.integers(1, 4))
  shapes = []
  for _ in range(num_shapes):
    radius = float(rng.uniform(0.12, 0.24))
    shapes.append(Shape(
        kind=int(rng.integers(0, len(SHAPE_TYPES))),
        cx=float(rng.uniform(radius, 1 - radius)),
        cy=float(rng.uniform(radius, 1 - radius)),
        radius=radius,
        angle=float(rng.uniform(0, 2 * np.pi))))
  return tuple(shapes)


def _signed_distance(shape: Shape, px: np.ndarray, py: np.ndarray):
  """Signed distance (negative inside) from pixel centres to a shape."""
  dx, dy = px - shape.cx, py - shape.cy
  cos, sin = np.cos(shape.angle), np.sin(shape.angle)
  u, v = cos * dx + sin * dy, -sin * dx + cos * dy
  kind = SHAPE_TYPES[shape.kind]
  if kind == 'circle':
    return np.hypot(u, v) - shape.radius * 0.8
  if kind == 'square':
    half = shape.radius / np.sqrt(2.0)
    qx, qy = np.abs(u) - half, np.abs(v) - half
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)
  # Equilateral triangle: max over the three edge half-planes.
  apothem = shape.radius * 0.5
  dists = [np.cos(a) * u + np.sin(a) * v - apothem
           for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3,
                     np.pi / 2 + 4 * np.pi / 3)]
  return np.max(np.stack(dists), axis=0)


def render(scene, domain: int, mode: int, size: int,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Renders `scene` in `domain` and style `mode`.

  Args:
    scene: a tuple of `Shape`s (see `sample_scene`).
    domain: index into `DOMAINS`.
    mode: style mode in [0, NUM_MODES).
    size: output height and width in pixels.
    seed: seeds the background noise (night and sketch).

  Returns:
    image: (size, size, 3) uint8.
    mask: (size, size) uint8 in {0, 1}, the union of the filled shapes.
  """
  if not 0 <= domain < len(DOMAINS):
    raise ValueError(f'domain must be in [0, {len(DOMAINS)}), got {domain}')
  if not 0 <= mode < NUM_MODES:
    raise ValueError(f'mode must be in [0, {NUM_MODES}), got {mode}')
  rng = np.random.default_rng([seed, domain, mode, size])
  coords = (np.arange(size) + 0.5) / size
  px, py = np.meshgrid(coords, coords)
  sdfs = [_signed_distance(s, px, py) * size for s in scene]   # in pixels
  fills = [np.clip(0.5 - d, 0, 1)[..., None] for d in sdfs]
  mask = (np.min(np.stack(sdfs), axis=0) < 0).astype(np.uint8)
  grad = py[..., None]

  if DOMAINS[domain] == 'day':
    top, bottom, colours = (np.array(c) if i < 2 else c
                            for i, c in enumerate(_DAY_PALETTES[mode]))
    image = top * (1 - grad) + bottom * grad
    for i, fill in enumerate(fills):
      image = image * (1 - fill) + np.array(colours[i % 3]) * fill
  elif DOMAINS[domain] == 'night':
    image = 0.08 + 0.06 * rng.standard_normal((size, size, 1))
    image = np.broadcast_to(image, (size, size, 3)) * np.array([0.8, 0.8, 1.2])
    outline = np.array(_NIGHT_OUTLINES[mode])
    width = max(1.0, 0.03 * size)
    for sdf, fill in zip(sdfs, fills):
      image = image * (1 - fill) + np.array([0.12, 0.12, 0.18]) * fill
      stroke = np.clip(width / 2 + 0.5 - np.abs(sdf), 0, 1)[..., None]
      image = image * (1 - stroke) + outline * stroke
  else:
    paper, width_fraction = _SKETCH_STYLES[mode]
    image = np.array(paper) + 0.02 * rng.standard_normal((size, size, 1))
    width = max(0.6, width_fraction * size)
    for sdf in sdfs:
      stroke = np.clip(width / 2 + 0.5 - np.abs(sdf), 0, 1)[..., None]
      image = image * (1 - stroke) + 0.05 * stroke
  image = np.clip(image, 0, 1)
  return (image * 255 + 0.5).astype(np.uint8), mask
