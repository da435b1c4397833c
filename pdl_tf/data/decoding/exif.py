"""EXIF orientation, read from encoded image bytes inside a TensorFlow graph.

Phones and cameras store many photos sideways and record in the EXIF tag
Orientation (0x0112) how a viewer must turn them upright. ``orientation``
finds the tag in the bytes (JPEG: the first APP1 segment that starts with
``Exif\\0\\0``; PNG: the ``eXIf`` chunk before the image data; WebP: the
``EXIF`` chunk), with graph ops only, so the exported SavedModel honours it
for bytes sent to TF Serving. ``orient`` applies it. Together they turn an
image exactly as ``PIL.ImageOps.exif_transpose`` does (tested on all eight
values, tests/test_image_decode.py); the values are those of the EXIF 2.32
specification (CIPA DC-008), section 4.6.4 A, "Orientation":

  1 upright          2 mirrored left-right   3 turned 180
  4 mirrored top-bottom                      5 transposed (mirrored along
  the main diagonal)  6 turned 90 clockwise  7 transversed (mirrored along
  the other diagonal) 8 turned 90 counter-clockwise

Missing, unreadable or out-of-range tags give 1 (as viewers and PIL do).
"""

import tensorflow as tf

from pdl_tf.data.decoding import image_header

ORIENTATION_TAG = 0x0112
_EXIF_HEADER = b'Exif\x00\x00'
# Bound on the EXIF bytes read: the tag sits in the first directory, at the
# start of the EXIF block.
_MAX_EXIF_BYTES = 1 << 16


def _png_step(contents):
  """PNG chunks: big-endian length, type, data, CRC; the walk stops at the
  image data (eXIf must precede IDAT, PNG specification 3rd ed. 11.3.6)."""
  def step(position):
    head = image_header.bytes_at(contents, position, 4)
    size = ((head[0] * 256 + head[1]) * 256 + head[2]) * 256 + head[3]
    kind = image_header.text_at(contents, position + 4, 4)
    stop = (kind == b'IDAT') | (kind == b'IEND') | (size < 0)
    return (position + 12 + size,
            tf.where(kind == b'eXIf', position + 8, -1), size, stop)
  return step


def _webp_step(contents):
  """RIFF chunks: FourCC, little-endian length, data padded to even."""
  def step(position):
    head = image_header.bytes_at(contents, position + 4, 4)
    size = ((head[3] * 256 + head[2]) * 256 + head[1]) * 256 + head[0]
    kind = image_header.text_at(contents, position, 4)
    return (position + 8 + size + size % 2,
            tf.where(kind == b'EXIF', position + 8, -1), size, size < 0)
  return step


def _exif_block(contents):
  """(start, size) int32 of the TIFF-structured EXIF block; start -1 if
  there is none."""
  contents = tf.convert_to_tensor(contents, tf.string)
  formats = image_header.formats(contents)
  none = lambda: (tf.constant(-1), tf.constant(0))

  def jpeg():  # APP1 (FF E1) segment starting "Exif\0\0"
    is_exif = lambda marker, position: (marker == 0xE1) & (
        image_header.text_at(contents, position + 4, 6) == _EXIF_HEADER)
    found, size = image_header.walk(
        contents, 2, image_header.jpeg_step(contents, is_exif))
    return tf.where(found >= 0, found + 10, -1), size - 8

  start, size = tf.case([
      (formats[image_header.JPEG], jpeg),
      (formats[image_header.PNG],
       lambda: image_header.walk(contents, 8, _png_step(contents))),
      (formats[image_header.WEBP],
       lambda: image_header.walk(contents, 12, _webp_step(contents)))],
                        default=none)
  # Some writers keep the JPEG "Exif\0\0" header in PNG and WebP chunks.
  prefixed = (start >= 0) & (
      image_header.text_at(contents, start, 6) == _EXIF_HEADER)
  return (tf.where(prefixed, start + 6, start),
          tf.where(prefixed, size - 6, size))


def _tiff_orientation(tiff):
  """Orientation from a TIFF structure (int32 [N] bytes, zero padded):
  byte order 'II'/'MM', 42, offset of the first directory; each directory
  entry is tag, type, count, value (12 bytes); SHORT = 3, LONG = 4."""
  size = tf.shape(tiff)[0]
  little = (tiff[0] == 0x49) & (tiff[1] == 0x49)
  big = (tiff[0] == 0x4D) & (tiff[1] == 0x4D)

  def unsigned(index, width):
    index = tf.clip_by_value(index, 0, size - width)
    parts = [tf.gather(tiff, index + k) for k in range(width)]
    big_value = sum(part * 256 ** (width - 1 - k)
                    for k, part in enumerate(parts))
    little_value = sum(part * 256 ** k for k, part in enumerate(parts))
    return tf.where(little, little_value, big_value)

  directory = unsigned(tf.constant(4), 4)
  count = unsigned(directory, 2)
  room = tf.maximum((size - directory - 2) // 12, 0)
  count = tf.where((directory >= 8) & (directory < size),
                   tf.minimum(count, room), 0)
  entries = directory + 2 + 12 * tf.range(count)
  kinds = unsigned(entries + 2, 2)
  values = tf.where(kinds == 3, unsigned(entries + 8, 2),
                    tf.where(kinds == 4, unsigned(entries + 8, 4), 0))
  hits = tf.boolean_mask(values, unsigned(entries, 2) == ORIENTATION_TAG)
  value = tf.concat([hits, [1]], 0)[0]
  valid = ((little | big) & (unsigned(tf.constant(2), 2) == 42) &
           (value >= 1) & (value <= 8))
  return tf.where(valid, value, 1)


def orientation(contents):
  """The EXIF orientation of encoded image bytes.

  Args:
    contents: string [], JPEG/PNG/WebP (other formats give 1).

  Returns:
    int32 [], 1..8; 1 where the bytes hold no (valid) tag.
  """
  start, size = _exif_block(contents)
  size = tf.clip_by_value(size, 0, _MAX_EXIF_BYTES)
  block = image_header.bytes_at(contents, start, _MAX_EXIF_BYTES)
  block = tf.where(tf.range(_MAX_EXIF_BYTES) < size, block, 0)
  return tf.where(start >= 0, _tiff_orientation(block), 1)


def _swap(image):
  rank = image.shape.rank
  return tf.transpose(image, [1, 0] + list(range(2, rank)))


def orient(image, value):
  """Turns ``image`` upright by the EXIF orientation ``value``.

  Args:
    image: [H, W] or [H, W, C], any dtype, in the stored frame.
    value: int32 [], 1..8 (anything else: unchanged).

  Returns:
    The image in the upright frame: [H, W, ...] for 1-4, [W, H, ...] for
    5-8.
  """
  image = tf.convert_to_tensor(image)
  branches = [
      lambda: tf.identity(image),                 # 1
      lambda: tf.reverse(image, [1]),             # 2
      lambda: tf.reverse(image, [0, 1]),          # 3
      lambda: tf.reverse(image, [0]),             # 4
      lambda: _swap(image),                       # 5
      lambda: tf.reverse(_swap(image), [1]),      # 6
      lambda: tf.reverse(_swap(image), [0, 1]),   # 7
      lambda: tf.reverse(_swap(image), [0]),      # 8
  ]
  index = tf.where((value >= 1) & (value <= 8), value - 1, 0)
  return tf.switch_case(tf.cast(index, tf.int32), branches)


def stored_size(upright_size, value):
  """int32 [2]: the stored (height, width) of an image whose upright size
  is ``upright_size`` under orientation ``value``."""
  upright_size = tf.convert_to_tensor(upright_size)
  return tf.where(value >= 5, tf.reverse(upright_size, [0]), upright_size)
