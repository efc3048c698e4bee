"""TUNIT's x⁺ view (spec tunit_cyclegan.md §1.2.3) in JAX, jit-able.

`augment(rng, images, ...)` maps a batch (B, S, S, 3) in [−1, 1] to its x⁺
views of the same size, one independent draw per image (vmapped, explicit
PRNG key). Per image, in [0, 1] colour space (black = 0, i.e. −1 outside):
  1. random affine about the image centre: rotation ~ U(−20°, 20°),
     translation round(U(−10 %, 10 %)·S) pixels per axis, x-shear
     ~ U(−10°, 10°), no scaling; nearest-neighbour sampling, black fill;
  2. random resized crop: area fraction ~ U(0.9, 1.1), aspect ratio
     log-uniform in [0.9, 1.1], w = round(√(area·ratio)), h = round(√(area /
     ratio)); the first of 10 candidate boxes that fits (w, h ≤ S) is placed
     uniformly at random, otherwise the fallback (a centred crop clipped to
     the ratio range; the whole image for square inputs); the crop is
     resized back to S×S bilinearly (half-pixel centres, edges clamped
     inside the box);
  3. colour jitter (`color_jitter=True`; off for two-domain datasets, where
     colour is the domain): brightness, contrast, saturation factors
     ~ U(0.6, 1.4) and hue shift ~ U(−0.125, 0.125) of the circle, applied
     in a random order; each op clips to [0, 1] as PIL's uint8 images do;
  4. horizontal flip with p = 0.5.
Every range is an argument, so a zero range switches that part off.

Deviation (spec Part III note 15): the reference warps and crops the
image at its original resolution before resizing to S; here the input is
already at the training resolution S, so the affine and the crop work on S×S
pixels (translations are whole pixels of S, and the nearest-neighbour warp
is coarser at small S). Colour ops work in float rather than uint8.
View 1's own random flip belongs to the input pipeline, not to this module.
"""

import functools
import math

import jax
import jax.numpy as jnp

GRAY_WEIGHTS = (0.299, 0.587, 0.114)     # ITU-R 601-2 luma (PIL 'L')


def _between(u, low, high):
  """Maps U(0, 1) samples to U(low, high)."""
  return low + (high - low) * u


# ------------------------------------------------------------ geometry
def _gather(image, rows, cols):
  """image[rows, cols] for integer index maps, 0 outside the image."""
  h, w = image.shape[:2]
  inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
  values = image[jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)]
  return jnp.where(inside[..., None], values, 0.0)


def affine_warp(image, angle, translate_x, translate_y, shear):
  """Rotates (counter-clockwise, degrees), shears along x, translates.

  image (H, W, C) in [0, 1] → same shape; output pixel p samples the input
  at the nearest pixel of A⁻¹(p − c − t) + c, A = R(angle)·Shear_x(shear),
  c the image centre, t = (translate_x, translate_y) pixels (x right, y
  down); pixels from outside the input are black (0).
  """
  h, w = image.shape[:2]
  cy, cx = (h - 1) / 2, (w - 1) / 2
  theta, phi = jnp.deg2rad(angle), jnp.deg2rad(shear)
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                            jnp.arange(w, dtype=jnp.float32), indexing='ij')
  x = cols - cx - translate_x
  y = rows - cy - translate_y
  # R⁻¹ for a visually counter-clockwise rotation with y pointing down.
  xr = jnp.cos(theta) * x - jnp.sin(theta) * y
  yr = jnp.sin(theta) * x + jnp.cos(theta) * y
  xs = xr - jnp.tan(phi) * yr                   # Shear_x⁻¹
  src_cols = jnp.round(xs + cx).astype(jnp.int32)
  src_rows = jnp.round(yr + cy).astype(jnp.int32)
  return _gather(image, src_rows, src_cols)


def _bilinear_axis(start, length, size, out_size):
  """Source index pairs and weights along one axis of a crop resize."""
  o = jnp.arange(out_size, dtype=jnp.float32)
  src = start + (o + 0.5) * length / out_size - 0.5
  src = jnp.clip(src, start, start + length - 1)
  lo = jnp.floor(src)
  frac = src - lo
  lo = lo.astype(jnp.int32)
  hi = jnp.minimum(lo + 1, size - 1)
  return lo, hi, frac


def resized_crop(image, top, left, height, width, out_shape):
  """Bilinear resize of the box (top, left, height, width) to out_shape.

  image (H, W, C) → (out_h, out_w, C); the box values may be traced.
  Half-pixel centres; the samples stay inside the box. The full box at
  out_shape = (H, W) is the identity.
  """
  r0, r1, fr = _bilinear_axis(top, height, image.shape[0], out_shape[0])
  c0, c1, fc = _bilinear_axis(left, width, image.shape[1], out_shape[1])
  fr, fc = fr[:, None, None], fc[None, :, None]
  top_row = image[r0][:, c0] * (1 - fc) + image[r0][:, c1] * fc
  bottom_row = image[r1][:, c0] * (1 - fc) + image[r1][:, c1] * fc
  return top_row * (1 - fr) + bottom_row * fr


def crop_box(rng, height: int, width: int, scale=(0.9, 1.1),
             ratio=(0.9, 1.1), tries: int = 10):
  """(top, left, h, w) of a random resized crop (torchvision semantics).

  Draws `tries` candidates at once and keeps the first that fits; if none
  does, a centred box of the whole image, narrowed to the ratio range.
  """
  u = jax.random.uniform(rng, (2 * tries + 2,))   # one draw: fast compile
  area = height * width * _between(u[:tries], *scale)
  aspect = jnp.exp(_between(u[tries:2 * tries], math.log(ratio[0]),
                            math.log(ratio[1])))
  ws = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
  hs = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
  fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
  first = jnp.argmax(fits)
  w, h = ws[first], hs[first]
  top = jnp.minimum(jnp.floor(u[-2] * (height - h + 1)).astype(jnp.int32),
                    height - h)
  left = jnp.minimum(jnp.floor(u[-1] * (width - w + 1)).astype(jnp.int32),
                     width - w)
  # Fallback: centred, the whole image clipped to the ratio range.
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fw, fh = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    fw, fh = int(round(height * ratio[1])), height
  else:
    fw, fh = width, height
  found = jnp.any(fits)
  return (jnp.where(found, top, (height - fh) // 2),
          jnp.where(found, left, (width - fw) // 2),
          jnp.where(found, h, fh), jnp.where(found, w, fw))


# ------------------------------------------------------------- colour
def _gray(image):
  weights = jnp.asarray(GRAY_WEIGHTS, image.dtype)
  return jnp.sum(image * weights, axis=-1, keepdims=True)


def adjust_brightness(image, factor):
  """Blend with black: factor·x, clipped to [0, 1]."""
  return jnp.clip(image * factor, 0.0, 1.0)


def adjust_contrast(image, factor):
  """Blend with the mean grey level m: m + factor·(x − m), clipped."""
  mean = jnp.mean(_gray(image))
  return jnp.clip(mean + factor * (image - mean), 0.0, 1.0)


def adjust_saturation(image, factor):
  """Blend with the grey image g: g + factor·(x − g), clipped."""
  gray = _gray(image)
  return jnp.clip(gray + factor * (image - gray), 0.0, 1.0)


def _frac(x):
  return x - jnp.floor(x)


def rgb_to_hsv(image):
  """(…, 3) RGB in [0, 1] → HSV in [0, 1] (hue as a fraction of a turn)."""
  r, g, b = image[..., 0], image[..., 1], image[..., 2]
  maxc = jnp.max(image, axis=-1)
  delta = maxc - jnp.min(image, axis=-1)
  safe = jnp.where(delta > 0, delta, 1.0)
  hue = jnp.where(maxc == r, (g - b) / safe,
                  jnp.where(maxc == g, (b - r) / safe + 2.0,
                            (r - g) / safe + 4.0))
  hue = jnp.where(delta > 0, _frac(hue / 6.0), 0.0)
  sat = delta / jnp.where(maxc > 0, maxc, 1.0)
  return jnp.stack([hue, sat, maxc], axis=-1)


def hsv_to_rgb(hsv):
  """Inverse of `rgb_to_hsv`: channel n ∈ (5, 3, 1) for (R, G, B) is
  v − v·s·clip(min(k, 4 − k), 0, 1) with k = (n + 6h) mod 6."""
  h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
  k = 6.0 * _frac((jnp.asarray([5.0, 3.0, 1.0]) + 6.0 * h) / 6.0)
  return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def adjust_hue(image, shift):
  """Rotates the hue by `shift` turns (|shift| ≤ 0.5)."""
  hsv = rgb_to_hsv(image)
  return hsv_to_rgb(hsv.at[..., 0].set(_frac(hsv[..., 0] + shift)))


def jitter_colors(rng, image, brightness=0.4, contrast=0.4, saturation=0.4,
                 hue=0.125):
  """The four colour ops with random factors, in a random order."""
  u = jax.random.uniform(rng, (8,))
  def factor(v, strength):
    return _between(v, max(0.0, 1 - strength), 1 + strength)
  ops = [
      functools.partial(adjust_brightness, factor=factor(u[0], brightness)),
      functools.partial(adjust_contrast, factor=factor(u[1], contrast)),
      functools.partial(adjust_saturation, factor=factor(u[2], saturation)),
      functools.partial(adjust_hue, shift=_between(u[3], -hue, hue)),
  ]
  order = jnp.argsort(u[4:])                 # a uniform random permutation
  # A loop (not unrolled) keeps one copy of each op in the compiled program.
  return jax.lax.fori_loop(
      0, len(ops), lambda i, x: jax.lax.switch(order[i], ops, x), image)


# ------------------------------------------------------------- the view
def augment_image(rng, image, *, rotation=20.0, translate=0.1, shear=10.0,
                  crop_scale=(0.9, 1.1), crop_ratio=(0.9, 1.1),
                  crop_tries=10, color_jitter=True, brightness=0.4,
                  contrast=0.4, saturation=0.4, hue=0.125, flip=True):
  """x⁺ of one image (H, W, 3) in [−1, 1] → (H, W, 3) in [−1, 1]."""
  h, w = image.shape[:2]
  k_geometry, k_crop, k_color = jax.random.split(rng, 3)
  u = jax.random.uniform(k_geometry, (5,))
  x = (image + 1.0) / 2.0
  angle = _between(u[0], -rotation, rotation)
  tx = jnp.round(_between(u[1], -translate * w, translate * w))
  ty = jnp.round(_between(u[2], -translate * h, translate * h))
  sh = _between(u[3], -shear, shear)
  x = affine_warp(x, angle, tx, ty, sh)
  top, left, ch, cw = crop_box(k_crop, h, w, crop_scale, crop_ratio,
                               crop_tries)
  x = resized_crop(x, top, left, ch, cw, (h, w))
  if color_jitter:
    x = jitter_colors(k_color, x, brightness, contrast, saturation, hue)
  if flip:
    x = jnp.where(u[4] < 0.5, x[:, ::-1], x)
  return x * 2.0 - 1.0


def augment(rng, images, **kwargs):
  """x⁺ views of a batch (B, S, S, 3) in [−1, 1], one key per image.

  Keyword arguments are those of `augment_image` (ranges; a zero range
  disables that part); `color_jitter=False` for two-domain datasets.
  They must be static (Python numbers) under `jit`.
  """
  fn = functools.partial(augment_image, **kwargs)
  keys = jax.random.split(rng, images.shape[0])
  return jax.vmap(fn)(keys, images)
