"""TensorFlow image preprocessing for the input pipelines (spec §2.1).

Train: decode → RGB → resize to load_size (bicubic, antialiased; aspect ratio
not kept) → random crop image_size → random horizontal flip → [-1, 1].
Eval: decode → RGB → resize to load_size → centre crop image_size → [-1, 1].
Masks are resized with nearest neighbour and cropped like their image.

Randomness is stateless: every random op takes an explicit int64 seed of
shape (2,), so a pipeline is deterministic for a fixed seed.
"""

import tensorflow as tf


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
  """PNG/JPEG/BMP/GIF bytes → uint8 (H, W, 3).

  Grayscale is replicated to RGB, alpha is dropped, a GIF gives its first
  frame.
  """
  image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                             expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def resize(image: tf.Tensor, size: int, method: str = 'bicubic'):
  """Resizes (…, H, W, C) to (…, size, size, C) float32 in the input's range.

  A no-op (apart from the cast) when the image already has that size.
  """
  image = tf.cast(image, tf.float32)
  if method == 'nearest':
    return tf.image.resize(image, (size, size), method='nearest')
  shape = tf.shape(image)
  same = tf.logical_and(shape[-3] == size, shape[-2] == size)
  resized = tf.cond(
      same, lambda: image,
      lambda: tf.image.resize(image, (size, size), method=method,
                              antialias=True))
  # Bicubic overshoots; keep the uint8 range.
  return tf.clip_by_value(resized, 0.0, 255.0)


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """Central size×size window of (…, H, W, C); H, W ≥ size."""
  shape = tf.shape(image)
  top = (shape[-3] - size) // 2
  left = (shape[-2] - size) // 2
  return image[..., top:top + size, left:left + size, :]


def to_unit_range(image: tf.Tensor) -> tf.Tensor:
  """[0, 255] → [-1, 1] (normalise with mean 0.5, std 0.5)."""
  return tf.cast(image, tf.float32) / 127.5 - 1.0


def train_image(image: tf.Tensor, seed: tf.Tensor, *, load_size: int,
                image_size: int, flip: bool) -> tf.Tensor:
  """uint8 (H, W, 3) → float32 (image_size, image_size, 3) in [-1, 1]."""
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  image = resize(image, load_size)
  image = tf.image.stateless_random_crop(
      image, (image_size, image_size, 3), seed=crop_seed)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
  return to_unit_range(image)


def eval_image(image: tf.Tensor, *, load_size: int,
               image_size: int) -> tf.Tensor:
  """uint8 (…, H, W, 3) → float32 (…, image_size, image_size, 3), [-1, 1]."""
  image = center_crop(resize(image, load_size), image_size)
  return to_unit_range(image)


def eval_mask(mask: tf.Tensor, *, load_size: int,
              image_size: int) -> tf.Tensor:
  """uint8 (…, H, W, 1) → uint8 (…, image_size, image_size, 1), nearest."""
  mask = center_crop(resize(mask, load_size, method='nearest'), image_size)
  return tf.cast(mask, tf.uint8)
