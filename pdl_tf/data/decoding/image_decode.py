"""The one image decode of pdl_tf: readers, training, evaluation, export,
serving and pdl-predict all turn encoded bytes into pixels here.

``decode_image`` is a graph function (it runs inside the SavedModel, in
tf.data maps and, through ``decode_bytes``, for the Python readers):

* JPEG is decoded with ``dct_method='INTEGER_ACCURATE'`` (libjpeg's
  JDCT_ISLOW), the inverse DCT that PIL uses: bit-identical to
  ``PIL.Image.open(f).convert('RGB')`` (tested on the COCO sample and on
  4:2:0, 4:2:2, 4:4:4, progressive, grayscale and CMYK files). TensorFlow's
  default, the fast inexact one, differs on 76% of the COCO sample's values.
* PNG, GIF (first frame) and WebP (first frame) with TensorFlow's
  decoders; 3 channels (alpha dropped, gray replicated), uint8, as PIL's
  ``convert('RGB')`` shows them, except that the transparent pixels of a
  GIF come out black (PIL shows their palette colour).
* BMP through ``bmp.py``: 1/4/8-bit palette images in their colours,
  24-bit and 32-bit uncompressed; other variants (RLE, 16-bit, ...) are
  refused as 'unsupported'.
* The image is turned upright by its EXIF orientation (``exif.py``), as
  viewers show it.
* With ``max_pixels``, an image with more pixels is refused from its header
  (JPEG, PNG, GIF, BMP, WebP) before any pixel is decoded.

Failures are InvalidArgument in the graph; ``decode_bytes`` and
``read_image_file`` raise ``ImageDecodeError`` whose message starts with the
reason: 'empty file', 'not an image', 'truncated', 'too large',
'unsupported' or 'corrupt'.
"""

import os

import tensorflow as tf

from pdl_tf import config
from pdl_tf.data.decoding import bmp
from pdl_tf.data.decoding import exif
from pdl_tf.data.decoding import image_header

# The largest image (height x width) that an export accepts by default
# (config ``export.max_image_pixels``) and that pdl-predict decodes.
MAX_IMAGE_PIXELS = config.DEFAULT_MAX_IMAGE_PIXELS

REASONS = ('empty file', 'not an image', 'truncated', 'too large',
           'unsupported', 'corrupt')


class ImageDecodeError(ValueError):
  """Bytes that are not a decodable image.

  Attributes:
    reason: one of REASONS.
    name: the file (or request) the bytes came from.
    detail: what is wrong, in words.
  """

  def __init__(self, reason, name, detail):
    super().__init__(f'{reason}: {name} cannot be read: {detail}')
    self.reason, self.name, self.detail = reason, name, detail


def _decode_pixels(contents):
  """uint8 [H, W, 3] in the stored frame."""
  kinds = image_header.formats(contents)
  jpeg = lambda: tf.io.decode_jpeg(contents, channels=3,
                                   dct_method='INTEGER_ACCURATE')
  # TensorFlow's WebP decoder refuses to turn a WebP with alpha into 3
  # channels ('Number of channels requested does not match input'): it is
  # decoded as it is and the alpha dropped here, as for PNG.
  # The same DecodeImage op as the other formats (no newer op that an older
  # TF Serving would lack); the first frame of an animation, as for GIF.
  webp = lambda: tf.io.decode_image(contents, channels=0,
                                    expand_animations=False)[..., :3]
  other = lambda: tf.io.decode_image(contents, channels=3,
                                     expand_animations=False)
  return tf.ensure_shape(tf.case([
      (kinds[image_header.JPEG], jpeg),
      (kinds[image_header.BMP], lambda: bmp.decode_bmp(contents)),
      (kinds[image_header.WEBP], webp)], default=other), [None, None, 3])


def too_large_check(size, max_pixels, what):
  """Asserts size[0] * size[1] <= max_pixels (0 = no limit).

  Args:
    size: int [2], (height, width).
    max_pixels: int or int64 [], 0 for no limit.
    what: a string naming the image, for the message.

  Returns:
    The assert op (for control dependencies).
  """
  size = tf.cast(size, tf.int64)
  max_pixels = tf.cast(max_pixels, tf.int64)
  pixels = size[0] * size[1]
  message = tf.strings.format(
      f'too large: {what} is {{}} x {{}} = {{}} pixels, more than the limit '
      'of {} (export.max_image_pixels)',
      [size[1], size[0], pixels, max_pixels])
  return tf.debugging.Assert((max_pixels <= 0) | (pixels <= max_pixels),
                             [message])


def decode_with_orientation(contents, max_pixels=0):
  """Decodes encoded image bytes and turns them upright.

  Args:
    contents: string [], JPEG/PNG/GIF/BMP/WebP bytes.
    max_pixels: int or int64 [], refuse images with more pixels (checked on
      the header before decoding, and on the decoded size); 0 = no limit.

  Returns:
    (uint8 [H, W, 3] upright, int32 [] the EXIF orientation 1..8 that was
    applied).

  Raises:
    InvalidArgumentError (when run): 'empty file', 'not an image: ...',
    'too large: ...', 'unsupported: ...' (a BMP variant), or the decoder's
    own message for corrupt or truncated data.
  """
  contents = tf.convert_to_tensor(contents, tf.string)
  checks = [tf.debugging.Assert(tf.strings.length(contents) > 0,
                                ['empty file'])]
  with tf.control_dependencies(checks):  # in this order
    checks = [tf.debugging.Assert(image_header.known_format(contents), [
        'not an image: the bytes are not JPEG, PNG, GIF, BMP or WebP'])]
  with tf.control_dependencies(checks):
    header = image_header.stored_size(contents)
    checks = [too_large_check(header, max_pixels, 'the encoded image')]
  with tf.control_dependencies(checks):
    image = _decode_pixels(contents)
  with tf.control_dependencies([too_large_check(
      tf.shape(image)[:2], max_pixels, 'the decoded image')]):
    value = exif.orientation(contents)
    return exif.orient(image, value), value


def decode_image(contents, max_pixels=0):
  """uint8 [H, W, 3], upright: ``decode_with_orientation`` without the
  orientation."""
  return decode_with_orientation(contents, max_pixels)[0]


@tf.function(input_signature=[tf.TensorSpec([], tf.string),
                              tf.TensorSpec([], tf.int64)])
def _decode_function(contents, max_pixels):
  return decode_with_orientation(contents, max_pixels)


def graph_message(error):
  """The op's own message out of TensorFlow's graph-execution text.

  Args:
    error: a tf.errors.OpError.

  Returns:
    str, one line: the failing op's (or assertion's) message.
  """
  lines = [line.strip() for line in error.message.splitlines()]
  lines = [line for line in lines if line and not line.startswith(
      ('Graph execution error', 'Detected at node', 'File "', '[[', '{{'))]
  message = lines[-1] if lines else error.message
  for prefix in ('assertion failed: [', 'assertion failed:'):
    if message.startswith(prefix):
      message = message[len(prefix):].rstrip(']')
  return message.split(' [Op:')[0].strip()


def decode_bytes(contents, name, max_pixels=0):
  """Decodes bytes in Python (eagerly, with the graph decode).

  Args:
    contents: bytes of one encoded image.
    name: the file the bytes come from, for messages.
    max_pixels: refuse larger images; 0 = no limit.

  Returns:
    (uint8 numpy [H, W, 3] upright, int EXIF orientation 1..8).

  Raises:
    ImageDecodeError: its message starts with the reason (REASONS).
  """
  if not contents:
    raise ImageDecodeError('empty file', name, 'it holds 0 bytes')
  kind = image_header.sniff(contents)
  if kind is None:
    raise ImageDecodeError(
        'not an image', name, f'it starts with {contents[:12]!r}, not with '
        'the signature of a JPEG, PNG, GIF, BMP or WebP file')
  if kind == image_header.JPEG and image_header.is_truncated(contents, kind):
    # Certain to fail; not decoded, as libjpeg would also print to stderr.
    raise ImageDecodeError(
        'truncated', name, f'the JPEG data ends before its end-of-image '
        f'marker ({len(contents)} bytes)')
  try:
    image, value = _decode_function(tf.constant(contents),
                                    tf.constant(max_pixels, tf.int64))
  except tf.errors.InvalidArgumentError as e:
    message = graph_message(e)
    for reason in ('too large', 'unsupported'):
      if message.startswith(reason + ': '):
        raise ImageDecodeError(reason, name,
                               message[len(reason) + 2:]) from None
    if image_header.is_truncated(contents, kind):
      raise ImageDecodeError(
          'truncated', name, f'the {kind} data ends early ({len(contents)} '
          f'bytes; decoder: {message})') from None
    raise ImageDecodeError('corrupt', name,
                           f'{kind} decoder: {message}') from None
  return image.numpy(), int(value)


def read_image_file(path, max_pixels=0):
  """(uint8 numpy [H, W, 3] upright, EXIF orientation) of an image file.

  Raises:
    FileNotFoundError: no such file.
    ImageDecodeError: the file is not a decodable image (reason first).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Image {path!r} does not exist.')
  with open(path, 'rb') as f:
    return decode_bytes(f.read(), path, max_pixels)


def upright_label(label, value, image_size):
  """Turns a label like its image, by the rule for labels of images that
  have an EXIF orientation.

  Label PNGs carry no orientation of their own. A label whose size is the
  image's stored size (the frame the dataset's JSON width/height and the
  COCO panopticapi tools use, and the only frame when the image has no
  tag) is turned like the image; a label already in the upright size is
  kept. A square image is taken to be labelled in its stored frame.

  Args:
    label: [h, w] or [h, w, C] tensor.
    value: int32 [], the image's EXIF orientation, 1..8.
    image_size: int [2], (height, width) of the upright image.

  Returns:
    The label in the upright frame; a label matching neither frame is
    returned unchanged (the caller's size check names both files).
  """
  label = tf.convert_to_tensor(label)
  stored = exif.stored_size(tf.cast(image_size, tf.int32), value)
  in_stored = tf.reduce_all(tf.shape(label)[:2] == stored)
  return tf.cond((value != 1) & in_stored, lambda: exif.orient(label, value),
                 lambda: tf.identity(label))


def upright_label_array(label, value, image_size):
  """``upright_label`` for numpy labels of the Python readers."""
  if value == 1:
    return label
  return upright_label(label, tf.constant(value, tf.int32),
                       tuple(image_size)).numpy()
