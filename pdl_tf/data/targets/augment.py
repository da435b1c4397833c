"""Augmentation applied to an image and its panoptic label together.

All randomness is stateless and driven by an explicit seed, so a pipeline
with a fixed seed produces the same crops in every run.
"""

import tensorflow as tf

from pdl_tf import normalization

# Default padding value of images: the ImageNet mean, which normalizes to
# ~0 under 'imagenet' normalization; callers pass
# normalization.pad_rgb(model.input_normalization) (127.5 for 'inception').
PAD_RGB = normalization.IMAGENET_MEAN_RGB


def _paddings(image, height, width):
  pad_h = tf.maximum(height - tf.shape(image)[0], 0)
  pad_w = tf.maximum(width - tf.shape(image)[1], 0)
  return [[0, pad_h], [0, pad_w]]


def pad_image(image, height, width, pad_rgb=PAD_RGB):
  """Pads a float [H, W, 3] image bottom/right to (height, width) with
  ``pad_rgb``. Sizes already larger are left as they are."""
  paddings = _paddings(image, height, width)
  return tf.stack([tf.pad(image[..., c], paddings, constant_values=v)
                   for c, v in enumerate(pad_rgb)], axis=-1)


def _pad_to(image, panoptic, height, width, ignore_value, pad_rgb=PAD_RGB):
  """Pads bottom/right up to (height, width): image with ``pad_rgb``, label
  with ``ignore_value``. Sizes already larger are left as they are."""
  paddings = _paddings(image, height, width)
  panoptic = tf.pad(panoptic, paddings, constant_values=ignore_value)
  return pad_image(image, height, width, pad_rgb), panoptic


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


def pad_edges(image, panoptic):
  """Repeats each image's outermost rows and columns once on every side.

  ``random_scale_crop_flip`` reads this border where ``tf.image.resize``
  would clamp to the edge.

  Args:
    image: uint8 or float [H, W, 3]; panoptic: int32 [H, W].

  Returns:
    image [H + 2, W + 2, 3] (same dtype), panoptic [H + 2, W + 2] and
    int32 [2], the original (H, W).
  """
  edges = [[1, 1], [1, 1]]
  return (tf.pad(image, edges + [[0, 0]], mode='SYMMETRIC'),
          tf.pad(panoptic, edges, mode='SYMMETRIC'), tf.shape(panoptic))


def _sample_positions(size, crop, offset, in_size, flipped):
  """Normalized crop_and_resize box edges along one axis, and which output
  positions fall inside the scaled image.

  Output position j reads scaled position p = offset + j (offset + crop - 1
  - j when flipped), i.e. source coordinate (p + 0.5) * in_size / size - 0.5
  as tf.image.resize's half-pixel centres, + 1 for the pad_edges border.

  Args:
    size: int32 [B], the scaled image's length; crop: Python int (>= 2);
    offset: int32 [B]; in_size: int32 [B], the source length; flipped:
    bool [B].

  Returns:
    start, end float32 [B] (in units of the canvas length - 1, applied by
    the caller) and valid bool [B, crop].
  """
  step = tf.cast(in_size, tf.float32) / tf.cast(size, tf.float32)
  first = tf.cast(offset, tf.float32)
  last = first + (crop - 1)
  first, last = tf.where(flipped, last, first), tf.where(flipped, first, last)
  positions = tf.range(crop)[None, :]
  positions = tf.where(flipped[:, None], crop - 1 - positions, positions)
  valid = positions + offset[:, None] < size[:, None]
  return (first + 0.5) * step + 0.5, (last + 0.5) * step + 0.5, valid


def random_draws(seed):
  """One image's augmentation draws: float32 [4] uniform in [0, 1), from
  its own int32 [2] stateless seed, so they do not depend on batching."""
  return tf.random.stateless_uniform([4], seed)


def random_crop_params(sizes, draws, *, crop_size, min_scale, max_scale,
                       flip):
  """Scale, crop corner and flip of each image of a batch.

  Args:
    sizes: int32 [B, 2], each image's (H, W).
    draws: float32 [B, 4], each image's ``random_draws``.
    crop_size, min_scale, max_scale, flip: as ``random_scale_crop_flip``.

  Returns:
    scaled int32 [B, 2] (round(size * scale), scale uniform in [min_scale,
    max_scale)), top int32 [B] and left int32 [B] (the crop's corner in the
    scaled image padded to at least crop_size, uniform over the valid
    corners) and flipped bool [B] (all False unless ``flip``).
  """
  scale = min_scale + draws[:, 0] * (max_scale - min_scale)
  scaled = tf.cast(tf.round(tf.cast(sizes, tf.float32) * scale[:, None]),
                   tf.int32)

  def offset(draw, length, crop):
    choices = tf.maximum(length, crop) - crop + 1
    return tf.minimum(tf.cast(draw * tf.cast(choices, tf.float32), tf.int32),
                      choices - 1)

  return (scaled, offset(draws[:, 1], scaled[:, 0], crop_size[0]),
          offset(draws[:, 2], scaled[:, 1], crop_size[1]),
          (draws[:, 3] < 0.5) & flip)


def random_scale_crop_flip(images, panoptic, sizes, draws, *, crop_size,
                           min_scale, max_scale, flip, ignore_value,
                           pad_rgb=PAD_RGB):
  """Training augmentation of a batch: random scale, crop/pad, flip.

  Per image, the same as resizing by a random factor (bilinear image,
  nearest label, half-pixel centres, as ``tf.image.resize``), padding
  bottom/right to crop_size (image PAD_RGB, label ``ignore_value``), taking
  a random crop and flipping left-right with probability 1/2, but done as
  one ``tf.image.crop_and_resize`` per batch (a few ops per batch, not a
  few dozen per image). Labels are resampled as float32, exact for values
  below 2^24 (the pipeline checks). Where the source coordinate of a label
  pixel lies exactly halfway between two pixels, either may be taken.

  Args:
    images: uint8 or float [B, Hc, Wc, 3]: each image through
      ``pad_edges``, then padded to a common size (``padded_batch``; the
      padding is never read).
    panoptic: int32 [B, Hc, Wc], the same layout.
    sizes: int32 [B, 2], each image's (H, W) before ``pad_edges``.
    draws: float32 [B, 4], each image's ``random_draws``.
    crop_size: (height, width) of the output, each >= 2.
    min_scale, max_scale: range of the uniform random scale factor.
    flip: whether to flip left-right with probability 1/2.
    ignore_value: label value of padding (ignore_label * label_divisor).
    pad_rgb: image value of padding (default PAD_RGB).

  Returns:
    images float32 [B, crop_h, crop_w, 3] in [0, 255], panoptic int32
    [B, crop_h, crop_w]. The targets are made afterwards, so they see the
    augmented instance sizes.
  """
  crop_h, crop_w = crop_size
  if min(crop_h, crop_w) < 2:
    raise ValueError(f'crop_size must be at least 2 x 2, got {crop_size}.')
  scaled, top, left, flipped = random_crop_params(
      sizes, draws, crop_size=crop_size, min_scale=min_scale,
      max_scale=max_scale, flip=flip)
  y1, y2, rows = _sample_positions(scaled[:, 0], crop_h, top, sizes[:, 0],
                                   tf.zeros_like(flipped))
  x1, x2, cols = _sample_positions(scaled[:, 1], crop_w, left, sizes[:, 1],
                                   flipped)
  canvas = tf.cast(tf.shape(images)[1:3] - 1, tf.float32)
  boxes = tf.stack([y1 / canvas[0], x1 / canvas[1], y2 / canvas[0],
                    x2 / canvas[1]], axis=-1)
  box_images = tf.range(tf.shape(images)[0])
  images = tf.image.crop_and_resize(images, boxes, box_images, crop_size)
  labels = tf.image.crop_and_resize(
      tf.cast(panoptic[..., None], tf.float32), boxes, box_images, crop_size,
      method='nearest')[..., 0]
  images, labels = _fill_outside(images, labels, rows, cols, ignore_value,
                                 tf.constant(pad_rgb, tf.float32))
  return (tf.ensure_shape(images, [None, crop_h, crop_w, 3]),
          tf.ensure_shape(labels, [None, crop_h, crop_w]))


@tf.function(jit_compile=True)
def _fill_outside(images, labels, rows, cols, ignore_value, pad_rgb):
  """``pad_rgb`` (float32 [3]) and ``ignore_value`` outside the scaled
  images; int32 labels.

  One XLA call (TensorFlow's broadcasting select took 3x as long).

  Args:
    images: float32 [B, h, w, 3]; labels: float32 [B, h, w]; rows: bool
      [B, h] and cols: bool [B, w], the positions inside.
  """
  inside = rows[:, :, None] & cols[:, None, :]
  return (tf.where(inside[..., None], images, pad_rgb),
          tf.where(inside, tf.cast(labels, tf.int32), ignore_value))


def pad_for_eval(image, panoptic, *, size, ignore_value, pad_rgb=PAD_RGB):
  """Evaluation: pads to ``size`` (no resize, image with ``pad_rgb``) and
  returns the original size.

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
                              size[1], ignore_value, pad_rgb)
  return (tf.ensure_shape(image, [size[0], size[1], 3]),
          tf.ensure_shape(panoptic, [size[0], size[1]]), original)
