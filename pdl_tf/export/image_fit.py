"""Fitting images of any size to the fixed network input and mapping the
results back, inside the exported graph.

An image that fits inside the export input size is only padded (bottom and
right, with the ImageNet mean); a larger one is first downscaled, keeping its
aspect ratio, until it fits. Images are never upscaled, so Cityscapes
1024x2048 into 1025x2049 and COCO (<= 640 px) into 641x641 are exact. The
merge ignores the padding (``image_sizes``), and its maps are cropped to the
valid region and resized with nearest neighbour to the original size.
Decoding (and its size limit) is ``pdl_tf.data.decoding.image_decode``.
"""

import tensorflow as tf

from pdl_tf.data.targets import augment


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
