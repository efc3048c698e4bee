"""TUNIT's x⁺ augmentation: ranges, determinism, special cases."""

import colorsys
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from i2ijax.data import augment

# Every random part switched off except the ones a test turns back on.
OFF = dict(rotation=0.0, translate=0.0, shear=0.0, crop_scale=(1.0, 1.0),
           crop_ratio=(1.0, 1.0), color_jitter=False, flip=False)


def _images(batch=4, size=16, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(-1, 1, size=(batch, size, size, 3)),
                     jnp.float32)


@functools.lru_cache(maxsize=None)
def _jitted(**kwargs):
  return jax.jit(functools.partial(augment.augment, **kwargs))


def _augment(rng, images, **kwargs):
  return _jitted(**{k: v for k, v in sorted(kwargs.items())})(rng, images)


def test_default_views_keep_shape_and_range_and_depend_on_the_key():
  x = _images()
  a = _augment(jax.random.key(0), x)
  assert a.shape == x.shape and a.dtype == jnp.float32
  assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0
  np.testing.assert_array_equal(a, _augment(jax.random.key(0), x))
  b = _augment(jax.random.key(1), x)
  assert not np.allclose(a, b)
  # One draw per image: identical inputs get different views.
  same = jnp.tile(x[:1], (4, 1, 1, 1))
  views = np.asarray(_augment(jax.random.key(2), same))
  assert not np.allclose(views[0], views[1])


def test_all_ranges_zero_is_the_identity():
  x = _images()
  kw = {**OFF, 'color_jitter': True, 'brightness': 0.0, 'contrast': 0.0,
        'saturation': 0.0, 'hue': 0.0}
  np.testing.assert_allclose(_augment(jax.random.key(3), x, **kw), x,
                             atol=1e-5)


def test_flip_only_gives_identity_or_mirror_per_image():
  x = _images(batch=16)
  out = np.asarray(_augment(jax.random.key(4), x, **{**OFF, 'flip': True}))
  flipped = 0
  for o, i in zip(out, np.asarray(x)):
    if np.allclose(o, i[:, ::-1], atol=1e-6):
      flipped += 1
    else:
      np.testing.assert_allclose(o, i, atol=1e-6)
  assert 0 < flipped < 16


def test_rotation_of_a_known_pattern():
  image = np.zeros((7, 7, 1), np.float32)
  image[1, 3] = 1.0                    # a dot above the centre
  image[3, 5] = 0.5                    # and one to its right
  rotated = augment.affine_warp(jnp.asarray(image), 90.0, 0.0, 0.0, 0.0)
  # Counter-clockwise as displayed: the same as np.rot90.
  np.testing.assert_allclose(rotated, np.rot90(image), atol=1e-6)
  shifted = augment.affine_warp(jnp.asarray(image), 0.0, 2.0, -1.0, 0.0)
  assert shifted[0, 5, 0] == 1.0 and shifted[2, 7 - 1, 0] == 0.0
  assert float(shifted.sum()) == 1.0   # the 0.5 dot left the image


def test_affine_fills_with_black():
  x = jnp.ones((1, 16, 16, 3))                  # white in [−1, 1]
  out = _augment(jax.random.key(5), x, **{**OFF, 'rotation': 20.0})
  corners = np.asarray(out)[0, [0, 0, -1, -1], [0, -1, 0, -1]]
  # Some corner leaves the rotated image (unless the angle is tiny).
  assert np.any(corners == -1.0) and np.all(np.isin(out, [-1.0, 1.0]))


def test_crop_box_fits_and_falls_back_to_the_whole_image():
  for seed in range(20):
    top, left, h, w = (int(v) for v in augment.crop_box(
        jax.random.key(seed), 32, 32))
    assert 0 <= top and top + h <= 32 and 0 <= left and left + w <= 32
    assert 0.9 * 1024 * 0.9 <= h * w <= 1024
  # Areas > 1 never fit: the fallback is the whole (square) image.
  box = augment.crop_box(jax.random.key(0), 32, 32, scale=(1.2, 1.3))
  assert [int(v) for v in box] == [0, 0, 32, 32]


def test_resized_crop_of_a_constant_image_is_constant():
  x = jnp.full((16, 16, 3), 0.25)
  out = augment.resized_crop(x, 2, 3, 13, 11, (16, 16))
  np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_colour_jitter_off_keeps_grey_images_grey():
  rng = np.random.default_rng(6)
  grey = rng.uniform(-1, 1, size=(4, 16, 16, 1))
  x = jnp.asarray(np.repeat(grey, 3, axis=-1), jnp.float32)
  out = np.asarray(_augment(jax.random.key(7), x, color_jitter=False))
  np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)
  np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-6)
  # With jitter on, saturation and hue leave grey grey too.
  out = np.asarray(_augment(jax.random.key(7), x))
  np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-5)


def test_brightness_scales_a_constant_image():
  x = jnp.full((8, 8, 8, 3), 0.5)
  jitter = jax.jit(jax.vmap(functools.partial(
      augment.jitter_colors, contrast=0.0, saturation=0.0, hue=0.0)))
  out = np.asarray(jitter(jax.random.split(jax.random.key(8), 8), x))
  factors = out[:, 0, 0, 0] / 0.5
  assert np.all((factors >= 0.6 - 1e-6) & (factors <= 1.4 + 1e-6))
  assert len(np.unique(np.round(factors, 5))) == 8
  np.testing.assert_allclose(out, out[:, :1, :1, :1] * np.ones_like(out),
                             atol=1e-6)
  np.testing.assert_allclose(augment.adjust_brightness(jnp.full(3, 0.8), 1.4),
                             1.0)


def test_contrast_and_saturation_blend_with_grey():
  pixel = jnp.array([[[0.8, 0.4, 0.2]]])
  gray = 0.299 * 0.8 + 0.587 * 0.4 + 0.114 * 0.2
  np.testing.assert_allclose(augment.adjust_saturation(pixel, 0.0)[0, 0],
                             [gray] * 3, rtol=1e-6)
  np.testing.assert_allclose(augment.adjust_contrast(pixel, 0.0)[0, 0],
                             [gray] * 3, rtol=1e-6)
  np.testing.assert_allclose(augment.adjust_saturation(pixel, 1.0), pixel)


@pytest.mark.parametrize('shift', [0.1, -0.125, 0.5])
def test_hue_shift_matches_colorsys(shift):
  rng = np.random.default_rng(9)
  pixels = rng.uniform(size=(20, 3)).astype(np.float32)
  pixels[0] = [0.3, 0.3, 0.3]                  # grey stays grey
  out = np.asarray(augment.adjust_hue(jnp.asarray(pixels), shift))
  for p, o in zip(pixels, out):
    h, s, v = colorsys.rgb_to_hsv(*p)
    np.testing.assert_allclose(o, colorsys.hsv_to_rgb((h + shift) % 1, s, v),
                               atol=1e-5)
  np.testing.assert_allclose(
      augment.hsv_to_rgb(augment.rgb_to_hsv(jnp.asarray(pixels))), pixels,
      atol=1e-5)
