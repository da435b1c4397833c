"""Augmentation applied to an image and its panoptic label together.

All randomness is stateless and driven by an explicit seed, so a pipeline
with a fixed seed produces the same crops in every run.
"""

import tensorflow as tf

# Padding value of images: the ImageNet mean, which normalizes to ~0.
PAD_RGB = (123.675, 116.28, 103.53)


def _paddings(image, height, width):
  pad_h = tf.maximum(height - tf.shape(image)[0], 0)
  pad_w = tf.maximum(width - tf.shape(image)[1], 0)
  return [[0, pad_h], [0, pad_w]]


def pad_image(image, height, width):
  """Pads a float [H, W, 3] image bottom/right to (height, width) with
  PAD_RGB. Sizes already larger are left as they are."""
  paddings = _paddings(image, height, width)
  return tf.stack([tf.pad(image[..., c], paddings, constant_values=v)
                   for c, v in enumerate(PAD_RGB)], axis=-1)


def _pad_to(image, panoptic, height, width, ignore_value):
  """Pads bottom/right up to (height, width): image with PAD_RGB, label with
  ``ignore_value``. Sizes already larger are left as they are."""
  paddings = _paddings(image, height, width)
  panoptic = tf.pad(panoptic, paddings, constant_values=ignore_value)
  return pad_image(image, height, width), panoptic


def resize_longest_side(image, panoptic, max_size):
  """Downscales so that the longer side is at most ``max_size`` (0 = never).

  Args:
    image: uint8 or float [H, W, 3].
    panoptic: int32 [H, W].
    max_size: the largest allowed side in pixels; 0 leaves every image as
      it is.

  Returns:
    image float32 [h, w, 3] (bilinear) and panoptic int32 [h, w] (nearest),
    with h, w = round(H * s), round(W * s), s = min(1, max_size / max(H, W)).
  """
  image = tf.cast(image, tf.float32)
  if not max_size:
    return image, panoptic
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = tf.minimum(1.0, max_size / tf.reduce_max(shape))
  size = tf.minimum(tf.cast(tf.round(shape * scale), tf.int32), max_size)

  def resize():
    return (tf.image.resize(image, size),
            tf.image.resize(panoptic[..., None], size,
                            method='nearest')[..., 0])

  return tf.cond(scale < 1.0, resize, lambda: (image, panoptic))


def random_scale_crop_flip(image, panoptic, seed, *, crop_size, min_scale,
                           max_scale, flip, ignore_value):
  """Training augmentation: random scale, crop/pad to crop_size, flip.

  Args:
    image: uint8 or float [H, W, 3].
    panoptic: int32 [H, W].
    seed: int32 [2], the stateless seed of this example.
    crop_size: (height, width) of the output.
    min_scale, max_scale: range of the uniform random scale factor.
    flip: whether to flip left-right with probability 1/2.
    ignore_value: label value of padding (ignore_label * label_divisor).

  Returns:
    image float32 [crop_h, crop_w, 3] in [0, 255], panoptic int32
    [crop_h, crop_w]. The label is resized with nearest neighbour, so the
    targets (computed afterwards) see the augmented instance sizes.
  """
  scale_seed, y_seed, x_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 4))
  scale = tf.random.stateless_uniform([], scale_seed, min_scale, max_scale)
  size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale),
                 tf.int32)
  image = tf.image.resize(tf.cast(image, tf.float32), size)
  panoptic = tf.image.resize(panoptic[..., None], size,
                             method='nearest')[..., 0]
  crop_h, crop_w = crop_size
  image, panoptic = _pad_to(image, panoptic, crop_h, crop_w, ignore_value)
  top = tf.random.stateless_uniform(
      [], y_seed, 0, tf.shape(image)[0] - crop_h + 1, dtype=tf.int32)
  left = tf.random.stateless_uniform(
      [], x_seed, 0, tf.shape(image)[1] - crop_w + 1, dtype=tf.int32)
  image = image[top:top + crop_h, left:left + crop_w]
  panoptic = panoptic[top:top + crop_h, left:left + crop_w]
  if flip:
    flipped = tf.random.stateless_uniform([], flip_seed) < 0.5
    image = tf.where(flipped, tf.reverse(image, [1]), image)
    panoptic = tf.where(flipped, tf.reverse(panoptic, [1]), panoptic)
  image = tf.ensure_shape(image, [crop_h, crop_w, 3])
  return image, tf.ensure_shape(panoptic, [crop_h, crop_w])


def pad_for_eval(image, panoptic, *, size, ignore_value):
  """Evaluation: pads to ``size`` (no resize) and returns the original size.

  Returns:
    image float32 [h, w, 3], panoptic int32 [h, w] and int32 [2], the
    original (H, W): predictions[:H, :W] map back to the input.

  Raises:
    InvalidArgumentError: the image is larger than ``size``.
  """
  original = tf.shape(image)[:2]
  check = tf.debugging.assert_less_equal(
      original, tf.constant(size, tf.int32),
      message=f'evaluation image larger than data.eval.crop_size {size}')
  with tf.control_dependencies([check]):
    image, panoptic = _pad_to(tf.cast(image, tf.float32), panoptic, size[0],
                              size[1], ignore_value)
  return (tf.ensure_shape(image, [size[0], size[1], 3]),
          tf.ensure_shape(panoptic, [size[0], size[1]]), original)
