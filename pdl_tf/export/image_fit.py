"""Fitting images of any size to the fixed network input and mapping the
results back, inside the exported graph.

An image that fits inside the export input size is only padded (bottom and
right, with the ImageNet mean); a larger one is first downscaled, keeping its
aspect ratio, until it fits. Images are never upscaled, so Cityscapes
1024x2048 into 1025x2049 and COCO (<= 640 px) into 641x641 are exact. The
merge ignores the padding (``image_sizes``), and its maps are cropped to the
valid region and resized with nearest neighbour to the original size.
"""

import tensorflow as tf

from pdl_tf.data import augment

# Largest accepted image side, in pixels; larger images are refused with
# InvalidArgument before they are decoded (JPEG and PNG headers are read).
MAX_IMAGE_SIDE = 8192
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _png_header_size(contents):
  """(height, width) from a PNG's IHDR chunk (big-endian, bytes 16-24)."""
  raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 16, 8),
                                 tf.uint8), tf.int64)
  weights = tf.constant([2 ** 24, 2 ** 16, 2 ** 8, 1], tf.int64)
  width = tf.reduce_sum(raw[0:4] * weights)
  height = tf.reduce_sum(raw[4:8] * weights)
  return tf.stack([height, width])


def header_size(contents):
  """int64 [2] (height, width) read from a JPEG or PNG header without
  decoding; [0, 0] for other formats (checked after decoding)."""
  is_png = ((tf.strings.substr(contents, 0, 8) == _PNG_SIGNATURE) &
            (tf.strings.length(contents) >= 24))
  return tf.case([
      (tf.io.is_jpeg(contents),
       lambda: tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64)),
      (is_png, lambda: _png_header_size(contents))],
                 default=lambda: tf.zeros([2], tf.int64))


def check_size(size, what):
  """Asserts 1 <= side <= MAX_IMAGE_SIDE; returns ``size`` once checked."""
  size = tf.cast(size, tf.int64)
  check = tf.debugging.Assert(
      tf.reduce_all(size <= MAX_IMAGE_SIDE),
      [f'{what} is larger than the limit of {MAX_IMAGE_SIDE} pixels per '
       'side (pdl_tf.export.image_fit.MAX_IMAGE_SIDE); (height, width) =',
       size])
  with tf.control_dependencies([check]):
    return tf.identity(size)


def decode_image(contents):
  """uint8 [H, W, 3] from JPEG/PNG/GIF/BMP bytes; refuses huge images and
  non-image bytes with InvalidArgument."""
  header = check_size(header_size(contents), 'encoded image')
  with tf.control_dependencies([header]):
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  with tf.control_dependencies([check_size(tf.shape(image)[:2],
                                           'decoded image')]):
    return tf.identity(image)


def fit_image(image, input_size, pad_rgb=augment.PAD_RGB):
  """Downscales (if needed) and pads one image to the network input size.

  Args:
    image: uint8 or float [H, W, 3], RGB.
    input_size: (height, width) of the network input.
    pad_rgb: padding value, ``normalization.pad_rgb`` of the model's
      input normalization.

  Returns:
    float32 [input_h, input_w, 3] and int32 [2], the (height, width) of the
    valid top-left region.
  """
  input_h, input_w = input_size
  size = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = tf.minimum(1.0, tf.reduce_min(
      tf.constant([input_h, input_w], tf.float32) / size))
  valid = tf.minimum(
      tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1),
      tf.constant([input_h, input_w]))
  image = tf.cast(image, tf.float32)
  image = tf.cond(
      scale < 1.0,
      lambda: tf.image.resize(image, valid, antialias=True),
      lambda: image)
  image = augment.pad_image(image, input_h, input_w, pad_rgb)
  return tf.ensure_shape(image, [input_h, input_w, 3]), valid


def unfit_map(value, valid, original, output_size, fill):
  """Inverse of ``fit_image`` for a per-pixel map.

  Args:
    value: [input_h, input_w, C] map at network input resolution.
    valid: int32 [2], the valid (height, width) returned by ``fit_image``.
    original: int32 [2], the image's original (height, width).
    output_size: int32 [2] >= ``original``; the result is padded to it.
    fill: value of the padding beyond ``original``.

  Returns:
    [output_h, output_w, C]: the valid region resized with nearest neighbour
    (half-pixel centers) to ``original`` and padded with ``fill``.
  """
  def source_index(out_len, in_len):
    step = tf.cast(in_len, tf.float32) / tf.cast(out_len, tf.float32)
    index = tf.cast((tf.cast(tf.range(out_len), tf.float32) + 0.5) * step,
                    tf.int32)
    return tf.minimum(index, in_len - 1)

  rows = source_index(original[0], valid[0])
  cols = source_index(original[1], valid[1])
  resized = tf.gather(tf.gather(value, rows, axis=0), cols, axis=1)
  paddings = [[0, output_size[0] - original[0]],
              [0, output_size[1] - original[1]], [0, 0]]
  return tf.pad(resized, paddings, constant_values=fill)
