"""The one image decode (pdl_tf/data/decoding/image_decode.py, exif.py,
image_header.py) against PIL: pixels, EXIF orientation, header sizes, the
reasons of bad files, and the label rule for oriented images."""

import io
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from PIL import ImageOps

from helpers import require_coco_sample
from pdl_tf.data.readers import coco_panoptic
from pdl_tf.data.decoding import exif
from pdl_tf.data.decoding import image_decode
from pdl_tf.data.decoding import image_header
from pdl_tf.data.readers import tfrecords
from pdl_tf.labels.panoptic_format import id_map_to_rgb
from pdl_tf.labels.panoptic_format import read_id_map


def scene(height=37, width=53, seed=0):
  """uint8 [H, W, 3] blocks and a gradient: structure JPEG keeps, and no
  symmetry, so every orientation is a distinct image."""
  rng = np.random.default_rng(seed)
  blocks = np.kron(rng.integers(0, 256, (-(-height // 6), -(-width // 6), 3)),
                   np.ones((6, 6, 1)))[:height, :width]
  ramp = np.arange(width)[None, :, None] * 2 + np.arange(height)[:, None,
                                                                   None]
  return ((blocks * 0.7 + ramp) % 256).astype(np.uint8)


def encode(image, image_format, orientation=None, **options):
  """Bytes of ``image`` in ``image_format``, with an EXIF Orientation tag
  (little-endian TIFF, as PIL writes it) unless ``orientation`` is None."""
  if orientation is not None:
    tags = Image.Exif()
    tags[exif.ORIENTATION_TAG] = orientation
    options['exif'] = tags.tobytes()
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, image_format, **options)
  return buffer.getvalue()


def pil_upright(contents):
  """The oracle: what a viewer shows, uint8 [H, W, 3]."""
  with Image.open(io.BytesIO(contents)) as image:
    return np.asarray(ImageOps.exif_transpose(image).convert('RGB'))


def test_jpeg_decode_is_bit_identical_to_pil_on_the_coco_sample():
  sample = require_coco_sample()
  for path in sorted((sample / 'input_images').glob('*.jpg')):
    contents = path.read_bytes()
    image, orientation = image_decode.decode_bytes(contents, str(path))
    np.testing.assert_array_equal(image, pil_upright(contents))
    assert orientation == 1
    # TensorFlow's default (fast) inverse DCT is not what training saw.
    fast = tf.io.decode_jpeg(contents, channels=3).numpy()
    assert (fast != image).mean() > 0.5


@pytest.mark.parametrize('mode,options', [
    ('RGB', dict(quality=90)),                   # 4:2:0
    ('RGB', dict(quality=90, subsampling=1)),    # 4:2:2
    ('RGB', dict(quality=95, subsampling=0)),    # 4:4:4
    ('RGB', dict(quality=80, progressive=True)),
    ('L', dict(quality=90)),
    ('CMYK', dict(quality=90)),
])
def test_jpeg_decode_is_bit_identical_to_pil(mode, options):
  buffer = io.BytesIO()
  Image.fromarray(scene(45, 61)).convert(mode).save(buffer, 'JPEG', **options)
  contents = buffer.getvalue()
  image, _ = image_decode.decode_bytes(contents, 'x.jpg')
  np.testing.assert_array_equal(image, pil_upright(contents))


@pytest.mark.parametrize('image_format,options', [
    ('PNG', {}), ('GIF', {}), ('BMP', {}), ('WEBP', dict(lossless=True))])
def test_other_formats_decode_like_pil(image_format, options):
  contents = encode(scene(), image_format, **options)
  image, _ = image_decode.decode_bytes(contents, 'x')
  np.testing.assert_array_equal(image, pil_upright(contents))
  assert tuple(image_header.stored_size(contents).numpy()) == (37, 53)


@pytest.mark.parametrize('image_format,options', [
    ('JPEG', dict(quality=95, subsampling=0)), ('PNG', {}),
    ('WEBP', dict(lossless=True))])
def test_all_eight_orientations_match_pil_exif_transpose(image_format,
                                                         options):
  image = scene()
  decode = tf.function(image_decode.decode_with_orientation)  # in a graph
  shapes = set()
  for orientation in range(1, 9):
    contents = encode(image, image_format, orientation, **options)
    upright = pil_upright(contents)
    eager, value = image_decode.decode_bytes(contents, 'x')
    graph, graph_value = decode(tf.constant(contents))
    assert value == int(graph_value) == orientation
    np.testing.assert_array_equal(eager, upright, err_msg=str(orientation))
    np.testing.assert_array_equal(graph.numpy(), upright)
    shapes.add(upright.shape)
  assert shapes == {(37, 53, 3), (53, 37, 3)}


def _tiff(orientation, byte_order):
  """A one-entry TIFF directory holding Orientation (SHORT)."""
  endian = '<' if byte_order == b'II' else '>'
  return (byte_order + struct.pack(endian + 'HI', 42, 8) +
          struct.pack(endian + 'HHHIHH', 1, exif.ORIENTATION_TAG, 3, 1,
                      orientation, 0) + struct.pack(endian + 'I', 0))


def _with_app1(contents, *payloads):
  """JPEG bytes with APP1 segments inserted right after SOI."""
  segments = b''.join(b'\xff\xe1' + struct.pack('>H', len(p) + 2) + p
                      for p in payloads)
  return contents[:2] + segments + contents[2:]


def test_orientation_big_endian_after_xmp_and_unreadable_tags():
  image = scene()
  plain = encode(image, 'JPEG', quality=95)
  xmp = b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>'
  big = _with_app1(plain, xmp, b'Exif\x00\x00' + _tiff(6, b'MM'))
  assert image_decode.decode_bytes(big, 'x')[1] == 6
  np.testing.assert_array_equal(image_decode.decode_bytes(big, 'x')[0],
                                pil_upright(big))
  for tiff in (_tiff(9, b'II'), _tiff(0, b'MM'), b'XX' + _tiff(6, b'II')[2:],
               _tiff(6, b'II')[:9]):  # out of range, bad order, cut short
    contents = _with_app1(plain, b'Exif\x00\x00' + tiff)
    assert image_decode.decode_bytes(contents, 'x')[1] == 1
    np.testing.assert_array_equal(image_decode.decode_bytes(contents, 'x')[0],
                                  pil_upright(contents))


def test_orient_is_the_inverse_of_each_stored_frame():
  """orient() on numpy against the EXIF table, written out by hand."""
  stored = np.arange(6).reshape(2, 3)  # [[0 1 2], [3 4 5]]
  expected = {1: [[0, 1, 2], [3, 4, 5]], 2: [[2, 1, 0], [5, 4, 3]],
              3: [[5, 4, 3], [2, 1, 0]], 4: [[3, 4, 5], [0, 1, 2]],
              5: [[0, 3], [1, 4], [2, 5]], 6: [[3, 0], [4, 1], [5, 2]],
              7: [[5, 2], [4, 1], [3, 0]], 8: [[2, 5], [1, 4], [0, 3]]}
  for value, want in expected.items():
    np.testing.assert_array_equal(exif.orient(stored, value), want)


def png_header_only(width, height):
  """A PNG signature and IHDR claiming width x height, then IEND: no
  pixels at all."""
  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data)))
  return (image_header.PNG_SIGNATURE +
          chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0,
                                     0)) + chunk(b'IEND', b''))


def test_bad_bytes_are_named_with_their_reason_first():
  good_jpeg = encode(scene(), 'JPEG')
  good_png = encode(scene(), 'PNG')
  cases = [(b'', 'empty file'), (b'hello, world\n', 'not an image'),
           (good_jpeg[:len(good_jpeg) // 2], 'truncated'),
           (good_png[:len(good_png) // 2], 'truncated'),
           (good_png[:100] + b'\x00' * 50 + good_png[150:], 'corrupt'),
           (png_header_only(60000, 60000), 'too large')]
  for contents, reason in cases:
    with pytest.raises(image_decode.ImageDecodeError) as error:
      image_decode.decode_bytes(contents, 'dir/a_bad.jpg', max_pixels=10**8)
    assert error.value.reason == reason
    message = str(error.value)
    assert message.startswith(f'{reason}: dir/a_bad.jpg cannot be read: ')
    assert '\n' not in message and 'Graph execution' not in message


def test_too_large_is_refused_from_the_header_before_decoding():
  # The header claims 60000 x 60000 (10.8 GB of pixels); the refusal comes
  # from the header, so the decoder never sees the (absent) pixels.
  contents = tf.constant(png_header_only(60000, 60000))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='too large: the encoded image is 60000 x 60000'):
    image_decode.decode_image(contents, 10**8)
  small = encode(scene(), 'PNG')
  assert image_decode.decode_image(small, 37 * 53).shape == (37, 53, 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match='too large'):
    image_decode.decode_image(small, 37 * 53 - 1)


@pytest.mark.parametrize('image_format,options', [
    ('JPEG', {}), ('PNG', {}), ('GIF', {}), ('BMP', {}),
    ('WEBP', dict(lossless=True)), ('WEBP', dict(quality=80)),
    ('WEBP', dict(quality=80, exif=b'Exif\x00\x00'))])
def test_header_size_is_the_stored_size(image_format, options):
  contents = encode(scene(29, 71), image_format, **options)
  assert tuple(image_header.stored_size(contents).numpy()) == (29, 71)
  assert image_header.sniff(contents) is not None


def test_labels_of_oriented_images_follow_the_documented_rule():
  label = np.arange(6, dtype=np.int32).reshape(2, 3)
  # Image stored 2x3 with orientation 6, shown 3x2: a 2x3 label is in the
  # stored frame and turns with it; a 3x2 label is already upright.
  turned = image_decode.upright_label_array(label, 6, (3, 2))
  np.testing.assert_array_equal(turned, exif.orient(label, 6))
  upright = label.T.copy()
  np.testing.assert_array_equal(
      image_decode.upright_label_array(upright, 6, (3, 2)), upright)
  # Mirrored (same size in both frames): stored frame, turned.
  np.testing.assert_array_equal(
      image_decode.upright_label_array(label, 2, (2, 3)), label[:, ::-1])
  # No tag: untouched; a label of another size: left to the caller's check.
  assert image_decode.upright_label_array(label, 1, (2, 3)) is label
  other = np.arange(20, dtype=np.int32).reshape(4, 5)
  np.testing.assert_array_equal(
      image_decode.upright_label_array(other, 6, (3, 2)), other)


def _coco_copy(tmp_path):
  """A writable copy of the COCO sample: (json, images, pngs) paths."""
  sample = require_coco_sample()
  root = tmp_path / 'coco'
  shutil.copytree(sample, root)
  return (root / 'panoptic_examples.json', root / 'input_images',
          root / 'panoptic_examples')


def _read(json_file, images, pngs, name):
  _, examples = coco_panoptic.read_coco_panoptic(str(json_file), str(images),
                                                 str(pngs))
  return next(e for e in examples if e.file_name == name)


def test_coco_reader_turns_an_oriented_image_and_its_label(tmp_path):
  json_file, images, pngs = _coco_copy(tmp_path)
  name = '000000142238.jpg'
  before = _read(json_file, images, pngs, name)
  # The same photo as a phone stores it: pixels sideways, tag 6.
  sideways = np.rot90(before.image, k=1)  # 90 counter-clockwise
  contents = encode(sideways, 'JPEG', 6, quality=95)
  (images / name).write_bytes(contents)
  # 1. Label in the stored (sideways) frame, as the JSON's width/height
  # and panopticapi have it: turned with the image.
  png = pngs / name.replace('.jpg', '.png')
  ids = read_id_map(str(png))
  Image.fromarray(id_map_to_rgb(np.rot90(ids, k=1))).save(png)
  example = _read(json_file, images, pngs, name)
  np.testing.assert_array_equal(example.image, pil_upright(contents))
  np.testing.assert_array_equal(example.panoptic, before.panoptic)
  # 2. Label already upright (drawn in a viewer that applied the tag): kept.
  Image.fromarray(id_map_to_rgb(ids)).save(png)
  example = _read(json_file, images, pngs, name)
  np.testing.assert_array_equal(example.panoptic, before.panoptic)
  # 3. A label of neither size: the error names both frames.
  Image.fromarray(id_map_to_rgb(ids[:400])).save(png)
  with pytest.raises(ValueError, match=(
      r'000000142238.png is 640x400 but its image .*000000142238.jpg is '
      r'640x427 upright \(stored as 427x640 with EXIF orientation 6\)')):
    _read(json_file, images, pngs, name)


def test_tfrecord_jpeg_images_decode_like_pil():
  image = scene(45, 61)
  record = tfrecords.serialize_example(
      image, np.zeros(image.shape[:2], np.int32), 'x.jpg', 'jpeg')
  encoded = tf.train.Example.FromString(record).features.feature[
      'image/encoded'].bytes_list.value[0]
  decoded, _, _ = tfrecords.decode_example(tf.constant(record))
  np.testing.assert_array_equal(decoded.numpy(), pil_upright(encoded))


def test_max_image_pixels_is_a_checked_config_key():
  from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
  from pdl_tf.config import ConfigError  # pylint: disable=g-import-not-at-top
  config = config_io.load_config('demo', [], [])
  assert config.export.max_image_pixels == image_decode.MAX_IMAGE_PIXELS
  assert config_io.load_config('demo', [], [
      'export.max_image_pixels=100']).export.max_image_pixels == 100
  with pytest.raises(ConfigError, match="'export.max_image_pixels' must be"):
    config_io.load_config('demo', [], ['export.max_image_pixels=0'])
