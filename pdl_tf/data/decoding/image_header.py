"""What the first bytes of an encoded image say: its format, its stored
size, whether it looks cut short. Graph functions for the decode
(``image_decode``) and plain-Python twins for its error messages.

Header layouts: JPEG start-of-frame segment (height, width at 5-9, big
endian, found by walking the markers); PNG IHDR
(big-endian width, height at bytes 16-24); GIF logical screen
(little-endian 16-bit width, height at 6-10); BMP DIB header (little-endian
32-bit width, height at 18-26, height negative for top-down rows; 16-bit at
18-22 in the old 12-byte core header); WebP ``VP8X`` (24-bit width - 1,
height - 1 at 24-30), ``VP8L`` (14-bit width - 1, height - 1 after the
0x2f signature at 20) and ``VP8 `` (14-bit width, height at 26-30).
"""

import tensorflow as tf

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG = 'JPEG'
PNG = 'PNG'
GIF = 'GIF'
BMP = 'BMP'
WEBP = 'WebP'
# Bound on the segments/chunks a walk looks at.
MAX_STEPS = 256


def bytes_at(contents, position, size):
  """int32 [size]: contents[position:position + size], zero past the end."""
  position = tf.clip_by_value(position, 0, tf.strings.length(contents))
  piece = tf.strings.join([tf.strings.substr(contents, position, size),
                           b'\x00' * size])
  return tf.cast(tf.reshape(tf.io.decode_raw(piece, tf.uint8)[:size], [size]),
                 tf.int32)


def text_at(contents, position, size):
  """string []: contents[position:position + size], clipped to the end."""
  position = tf.clip_by_value(position, 0, tf.strings.length(contents))
  return tf.strings.substr(contents, position, size)


def walk(contents, start, step):
  """Walks segments/chunks from ``start`` until ``step`` finds one or stops.

  Args:
    contents: string [].
    start: int, the first segment's position.
    step: function(position) -> (next position, found position or -1,
      found size, stop), int32/bool tensors.

  Returns:
    int32 (found position or -1, its size); -1 when the walk ends, stops,
    goes backwards or takes MAX_STEPS steps without finding.
  """
  length = tf.strings.length(contents)

  def cond(position, found, _, steps):
    return (steps < MAX_STEPS) & (found < 0) & (position + 8 <= length)

  def body(position, _, __, steps):
    next_position, found, size, stop = step(position)
    next_position = tf.where(stop | (next_position <= position), length,
                             next_position)
    return next_position, found, size, steps + 1

  _, found, size, _ = tf.while_loop(
      cond, body, (tf.constant(start), tf.constant(-1), tf.constant(0),
                   tf.constant(0)))
  return found, size


def jpeg_step(contents, is_target):
  """A ``walk`` step over JPEG markers: FF xx, then (but for RSTn, TEM and
  fill bytes) a big-endian length that counts itself; stops at the start of
  scan (FF DA) or the end of image (FF D9).

  Args:
    contents: string [].
    is_target: function(marker int32 [], position int32 []) -> bool [].

  Returns:
    The step; it finds the marker's position and its segment length.
  """
  def step(position):
    head = bytes_at(contents, position, 4)
    marker, size = head[1], head[2] * 256 + head[3]
    fill = marker == 0xFF
    standalone = (marker == 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))
    stop = (head[0] != 0xFF) | (marker == 0xDA) | (marker == 0xD9)
    next_position = tf.where(fill, position + 1, tf.where(
        standalone, position + 2, position + 2 + size))
    found = ~stop & ~fill & is_target(marker, position)
    return next_position, tf.where(found, position, -1), size, stop
  return step


def _jpeg_size(contents):
  """From the first start-of-frame segment (SOF0-15 but DHT C4, JPG C8,
  DAC CC): precision, then big-endian height and width. Parsed here rather
  than with tf.image.extract_jpeg_shape, whose libjpeg prints to stderr on
  a file cut inside its header."""
  is_frame = lambda marker, _: ((marker >= 0xC0) & (marker <= 0xCF) &
                                (marker != 0xC4) & (marker != 0xC8) &
                                (marker != 0xCC))
  found, _ = walk(contents, 2, jpeg_step(contents, is_frame))
  head = bytes_at(contents, found + 5, 4)
  size = tf.stack([_big(head[0:2]), _big(head[2:4])])
  return tf.where(found >= 0, size, tf.zeros([2], tf.int64))


def little(parts):
  """int64 value of little-endian bytes (int32 [n])."""
  parts = tf.cast(parts, tf.int64)
  return sum(parts[k] * 256 ** k for k in range(parts.shape[0]))


def _big(parts):
  return little(parts[::-1])


def formats(contents):
  """Graph booleans, in the order TensorFlow's decode_image tests them."""
  return {
      JPEG: tf.strings.substr(contents, 0, 3) == b'\xff\xd8\xff',
      PNG: tf.strings.substr(contents, 0, 8) == PNG_SIGNATURE,
      GIF: tf.strings.substr(contents, 0, 3) == b'GIF',
      BMP: tf.strings.substr(contents, 0, 2) == b'BM',
      WEBP: ((tf.strings.substr(contents, 0, 4) == b'RIFF') &
             (text_at(contents, 8, 4) == b'WEBP')),
  }


def known_format(contents):
  """bool []: the bytes start like a JPEG, PNG, GIF, BMP or WebP file."""
  return tf.reduce_any(tf.stack(list(formats(contents).values())))


def _bmp_size(contents):
  head = bytes_at(contents, 14, 12)
  core = little(head[0:4]) == 12
  width = tf.where(core, little(head[4:6]), little(head[4:8]))
  height = tf.where(core, little(head[6:8]), little(head[8:12]))
  # 32-bit two's complement: rows stored top-down have a negative height.
  height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)
  return tf.stack([height, width])


def _webp_size(contents):
  kind = text_at(contents, 12, 4)
  head = bytes_at(contents, 20, 12)
  extended = tf.stack([little(head[7:10]) + 1, little(head[4:7]) + 1])
  bits = little(head[1:5])
  lossless = tf.stack([bits // 16384 % 16384 + 1, bits % 16384 + 1])
  lossy = tf.stack([little(head[8:10]) % 16384,
                    little(head[6:8]) % 16384])
  return tf.case([(kind == b'VP8X', lambda: extended),
                  (kind == b'VP8L', lambda: lossless)], default=lambda: lossy)


def stored_size(contents):
  """int64 [2]: (height, width) from the header, before any decoding; the
  stored frame (before EXIF orientation). [0, 0] for unknown formats."""
  contents = tf.convert_to_tensor(contents, tf.string)
  kinds = formats(contents)
  # A PNG whose first chunk is not IHDR has no size to trust: [0, 0], and
  # the decoder reports the damage.
  has_ihdr = text_at(contents, 12, 4) == b'IHDR'
  png = lambda: tf.where(has_ihdr, tf.stack([_big(bytes_at(contents, 20, 4)),
                                             _big(bytes_at(contents, 16, 4))]),
                         tf.zeros([2], tf.int64))
  gif = lambda: tf.stack([little(bytes_at(contents, 8, 2)),
                          little(bytes_at(contents, 6, 2))])
  size = tf.case([(kinds[JPEG], lambda: _jpeg_size(contents)),
                  (kinds[PNG], png),
                  (kinds[GIF], gif),
                  (kinds[BMP], lambda: _bmp_size(contents)),
                  (kinds[WEBP], lambda: _webp_size(contents))],
                 default=lambda: tf.zeros([2], tf.int64))
  return size


def sniff(contents):
  """The format name of ``contents`` (bytes) by its signature, or None."""
  if contents[:3] == b'\xff\xd8\xff':
    return JPEG
  if contents[:8] == PNG_SIGNATURE:
    return PNG
  if contents[:3] == b'GIF':
    return GIF
  if contents[:2] == b'BM':
    return BMP
  if contents[:4] == b'RIFF' and contents[8:12] == b'WEBP':
    return WEBP
  return None


def is_truncated(contents, kind):
  """Whether ``contents`` (bytes of format ``kind``) lacks its end: JPEG
  without a start of scan or an end-of-image marker after it (certain: its
  decoder runs out of data), PNG with IHDR but without IEND, GIF without its
  trailer, BMP or WebP shorter than their header's file size."""
  if kind == JPEG:  # no end of image after the start of scan: FF D9
    # cannot occur inside entropy-coded data (FF is followed by 00 or RSTn)
    scan = contents.find(b'\xff\xda')
    return scan < 0 or contents.find(b'\xff\xd9', scan) < 0
  if kind == PNG:
    return (contents[12:16] == b'IHDR' and
            b'IEND\xaeB`\x82' not in contents[-24:])
  if kind == GIF:
    return not contents.rstrip(b'\x00').endswith(b'\x3b')
  if kind == BMP:
    return len(contents) < int.from_bytes(contents[2:6], 'little')
  if kind == WEBP:
    return len(contents) < int.from_bytes(contents[4:8], 'little') + 8
  return False
