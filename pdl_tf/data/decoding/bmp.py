"""BMP pixels in the graph, for ``image_decode``: palette images decoded to
their colours, the variants TensorFlow's own decoder would get wrong
refused by name.

``tf.io.decode_bmp`` reads the pixel data at face value: 24-bit BGR, 32-bit
BGRA, and an 8-bit image as gray levels, whatever its palette (a 16-colour
BMP whose pixel shows (190, 177, 132) came out as (2, 2, 2)). It ignores
the compression and the colour masks. Here:

* 1-, 4- and 8-bit uncompressed (BI_RGB) images are looked up in their
  palette (BGRX entries after the DIB header, ``biClrUsed`` of them or
  2^bits), rows padded to 4 bytes, bottom-up unless the height is negative;
* 24-bit BI_RGB, and 32-bit BI_RGB or BI_BITFIELDS with the usual
  masks (red 0xFF0000, green 0xFF00, blue 0xFF) go to ``tf.io.decode_bmp``
  (alpha dropped);
* everything else (RLE4/RLE8 compression, 16 bits per pixel, other masks,
  embedded JPEG/PNG, the OS/2 12-byte header) fails with a message
  starting 'unsupported: '.

Header layout (little-endian): pixel data offset at 10, DIB header size at
14, width at 18, height at 22 (negative: top-down), bits per pixel at 28,
compression at 30, colours used at 46, red/green/blue masks at 54-66.
"""

import tensorflow as tf

from pdl_tf.data.decoding import image_header

COMPRESSIONS = ('BI_RGB', 'BI_RLE8', 'BI_RLE4', 'BI_BITFIELDS', 'BI_JPEG',
                'BI_PNG', 'BI_ALPHABITFIELDS')
_USUAL_MASKS = (0xFF0000, 0xFF00, 0xFF)


def _field(contents, position, size):
  """int64 []: an unsigned little-endian field of the header (zero past the
  end of the bytes)."""
  return image_header.little(image_header.bytes_at(contents, position, size))


def _signed(value):
  """int64 []: a 32-bit field read unsigned, as two's complement."""
  return tf.where(value >= 2 ** 31, value - 2 ** 32, value)


def support_check(contents):
  """Asserts that the BMP ``contents`` is a variant decoded right here.

  Args:
    contents: string [], BMP bytes.

  Returns:
    (the assert op, bool [] whether it is a palette image).
  """
  header_size = _field(contents, 14, 4)
  bits = _field(contents, 28, 2)
  compression = _field(contents, 30, 4)
  masks = tf.stack([_field(contents, 54 + 4 * k, 4) for k in range(3)])
  usual_masks = tf.reduce_all(masks == tf.constant(_USUAL_MASKS, tf.int64))
  palette = ((bits == 1) | (bits == 4) | (bits == 8)) & (compression == 0)
  direct = (((bits == 24) & (compression == 0)) |
            ((bits == 32) & ((compression == 0) |
                             ((compression == 3) & usual_masks))))
  name = tf.gather(tf.constant(COMPRESSIONS + ('unknown',)), tf.clip_by_value(
      compression, 0, len(COMPRESSIONS)))
  message = tf.strings.join([tf.strings.format(
      'unsupported: BMP with {} bits per pixel, a {}-byte header and '
      'compression {} (', [bits, header_size, compression]), name,
      '); pdl_tf reads 1/4/8-bit palette, 24-bit and 32-bit uncompressed '
      'BMPs: convert it to PNG'])
  supported = (header_size >= 40) & (palette | direct)
  return tf.debugging.Assert(supported, [message]), palette


def _palette_pixels(contents):
  """uint8 [H, W, 3]: a 1/4/8-bit BI_RGB image looked up in its palette."""
  offset = _field(contents, 10, 4)
  width = _signed(_field(contents, 18, 4))
  height = _signed(_field(contents, 22, 4))
  bits = _field(contents, 28, 2)
  rows = tf.abs(height)
  stride = (width * bits + 31) // 32 * 4
  data = tf.io.decode_raw(tf.strings.substr(contents, offset, stride * rows),
                          tf.uint8)
  checks = [tf.debugging.Assert(
      (width > 0) & (tf.size(data, tf.int64) == stride * rows),
      [tf.strings.format('the BMP pixel data ends early ({} of {} bytes)',
                         [tf.size(data), stride * rows])])]
  with tf.control_dependencies(checks):
    data = tf.cast(tf.reshape(data, tf.stack([rows, stride])), tf.int64)
  # Pixel x is in byte x * bits // 8, most significant bits first.
  x = tf.range(width) * bits
  indices = (tf.gather(data, x // 8, axis=1) //
             2 ** (8 - bits - x % 8)) % 2 ** bits
  count = _field(contents, 46, 4)
  count = tf.where((count == 0) | (count > 2 ** bits), 2 ** bits, count)
  start = tf.cast(tf.minimum(14 + _field(contents, 14, 4), 2 ** 31 - 1),
                  tf.int32)
  entries = tf.reshape(image_header.bytes_at(contents, start, 4 * 256),
                       [256, 4])
  checks = [tf.debugging.Assert(tf.reduce_max(indices) < count, [
      tf.strings.format('a BMP pixel has colour index {}, past the {} '
                        'colours of its palette',
                        [tf.reduce_max(indices), count])])]
  with tf.control_dependencies(checks):
    image = tf.gather(tf.cast(entries[:, 2::-1], tf.uint8), indices)
  return tf.cond(height > 0, lambda: image[::-1], lambda: image)


def decode_bmp(contents):
  """uint8 [H, W, 3] of a BMP, in its stored frame.

  Args:
    contents: string [], BMP bytes.

  Returns:
    The RGB pixels (alpha dropped).

  Raises:
    InvalidArgumentError (when run): 'unsupported: ...' for a variant not
    decoded (module docstring), or the decoder's message for damaged data.
  """
  check, palette = support_check(contents)
  with tf.control_dependencies([check]):
    return tf.cond(palette, lambda: _palette_pixels(contents),
                   lambda: tf.io.decode_bmp(contents, channels=3))
