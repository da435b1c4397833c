"""Format variants the one decode must get right or refuse by name: palette
and other BMPs, WebP with alpha, palette GIF and PNG. Oracle: PIL."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data.decoding import image_decode

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (7, 6, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (7, 6, 1), dtype=np.uint8)


def pil_rgb(contents):
  """The oracle: what PIL shows, uint8 [H, W, 3]."""
  with Image.open(io.BytesIO(contents)) as image:
    return np.asarray(image.convert('RGB'))


def saved(image, image_format, **options):
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def bmp(bits, rows, palette=(), compression=0, top_down=False, masks=None,
        width=6):
  """A BMP with a 40-byte header, built by hand.

  Args:
    bits: bits per pixel.
    rows: list of bytes, the stored rows (bottom-up unless top_down),
      each padded to 4 bytes already.
    palette: (r, g, b) entries.
    compression: biCompression.
    top_down: store a negative height.
    masks: (r, g, b, a) masks written after the header, or None.
    width: the pixel width.
  """
  data = b''.join(rows)
  extra = struct.pack('<4I', *masks) if masks else b''
  colours = b''.join(bytes([b, g, r, 0]) for r, g, b in palette)
  height = -len(rows) if top_down else len(rows)
  header = struct.pack('<IiiHHIIiiII', 40, width, height, 1, bits,
                       compression, len(data), 2835, 2835, len(palette), 0)
  offset = 14 + 40 + len(extra) + len(colours)
  return (b'BM' + struct.pack('<IHHI', offset + len(data), 0, 0, offset) +
          header + extra + colours + data)


def packed_rows(indices, bits, top_down=False):
  """Palette indices int [H, W] -> stored rows, most significant bits
  first, each padded to 4 bytes."""
  rows = []
  for row in indices:
    value, count = 0, 0
    for index in row:
      value = value << bits | int(index)
      count += bits
    value <<= -count % 8
    data = value.to_bytes((count + 7) // 8, 'big')
    rows.append(data + b'\x00' * (-len(data) % 4))
  return rows if top_down else rows[::-1]


def decoded(contents, name='a.bmp'):
  return image_decode.decode_bytes(contents, name)[0]


def test_palette_bmp_gives_the_colours_not_the_indices():
  # The field report's case: a 6x7 BMP with a 16-colour palette, where TF's
  # decoder gave the index (2, 2, 2) instead of the colour.
  contents = saved(Image.fromarray(RGB).quantize(16), 'BMP')
  assert contents[28] == 8 and contents[46] == 16  # 8-bit, 16 colours
  image = decoded(contents)
  np.testing.assert_array_equal(image, pil_rgb(contents))
  assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2


@pytest.mark.parametrize('bits', [1, 4, 8])
@pytest.mark.parametrize('top_down', [False, True])
def test_1_4_8_bit_palette_bmps_match_pil(bits, top_down):
  colours = [tuple(int(v) for v in c) for c in
             RNG.integers(0, 256, (2 ** bits, 3))]
  indices = RNG.integers(0, 2 ** bits, (7, 13))
  contents = bmp(bits, packed_rows(indices, bits, top_down), colours,
                 top_down=top_down, width=13)
  image = decoded(contents)
  np.testing.assert_array_equal(image, pil_rgb(contents))
  np.testing.assert_array_equal(image, np.array(colours, np.uint8)[indices])


def test_pil_written_bmps_match_pil():
  rgba = Image.fromarray(np.concatenate([RGB, ALPHA], -1))
  for image in (Image.fromarray(RGB), Image.fromarray(RGB).convert('1'),
                Image.fromarray(RGB).convert('L'), rgba,
                Image.fromarray(RGB).quantize(200)):
    contents = saved(image, 'BMP')
    np.testing.assert_array_equal(decoded(contents), pil_rgb(contents),
                                  err_msg=image.mode)


def test_32_bit_bitfields_bmp_with_the_usual_masks():
  rows = [b''.join(bytes([b, g, r, a]) for (r, g, b), (a,) in zip(row, alphas))
          for row, alphas in zip(RGB[::-1], ALPHA[::-1])]
  contents = bmp(32, rows, compression=3,
                 masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))
  np.testing.assert_array_equal(decoded(contents), RGB)
  np.testing.assert_array_equal(decoded(contents), pil_rgb(contents))


def _rle8(indices):
  """BI_RLE8 data: one run per pixel, end of line, end of bitmap."""
  data = b''
  for row in indices[::-1]:
    data += b''.join(bytes([1, int(i)]) for i in row) + b'\x00\x00'
  return data + b'\x00\x01'


@pytest.mark.parametrize('case', ['rle8', '16-bit', 'other masks', 'os2'])
def test_bmp_variants_not_decoded_are_refused_by_name(case):
  palette = [(10 * k, 20 * k, 30 * k) for k in range(4)]
  if case == 'rle8':
    indices = RNG.integers(0, 4, (7, 6))
    contents = bmp(8, [_rle8(indices)], palette, compression=1)
    contents = contents[:22] + struct.pack('<i', 7) + contents[26:]
    np.testing.assert_array_equal(  # a valid file that PIL decodes
        pil_rgb(contents), np.array(palette, np.uint8)[indices])
    expected = 'compression 1 (BI_RLE8)'
  elif case == '16-bit':
    contents = bmp(16, [b'\x1f\x7c' * 6] * 7)
    expected = 'BMP with 16 bits per pixel'
  elif case == 'other masks':  # RGBA order: TF would swap the channels
    contents = bmp(32, [b'\x00\x01\x02\x03' * 6] * 7, compression=3,
                   masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF))
    expected = 'compression 3 (BI_BITFIELDS)'
  else:  # OS/2 1.x: a 12-byte header
    contents = (b'BM' + struct.pack('<IHHI', 26 + 6 * 7 * 3, 0, 0, 26) +
                struct.pack('<IHHHH', 12, 6, 7, 1, 24) + b'\x00' * 6 * 7 * 3)
    expected = 'a 12-byte header'
  with pytest.raises(image_decode.ImageDecodeError) as error:
    decoded(contents, 'dir/odd.bmp')
  assert error.value.reason == 'unsupported'
  message = str(error.value)
  assert message.startswith('unsupported: dir/odd.bmp cannot be read: BMP')
  assert expected in message and 'convert it to PNG' in message
  assert '\n' not in message


@pytest.mark.parametrize('lossless', [True, False])
def test_webp_with_alpha_gives_rgb_like_png(lossless):
  rgba = Image.fromarray(np.concatenate([RGB, ALPHA], -1))
  contents = saved(rgba, 'WEBP', lossless=lossless)
  with Image.open(io.BytesIO(contents)) as image:
    assert image.mode == 'RGBA'
  image = decoded(contents, 'a.webp')
  np.testing.assert_array_equal(image, pil_rgb(contents))
  if lossless:  # the colours themselves, alpha dropped as for PNG
    np.testing.assert_array_equal(image, RGB)
    np.testing.assert_array_equal(image, decoded(saved(rgba, 'PNG')))


def test_broken_webp_is_corrupt_with_the_decoder_reason():
  contents = bytearray(saved(Image.fromarray(RGB), 'WEBP', lossless=True))
  contents[30:] = b'\xff' * (len(contents) - 30)
  with pytest.raises(image_decode.ImageDecodeError) as error:
    decoded(bytes(contents), 'a.webp')
  assert error.value.reason == 'corrupt'
  assert 'WebP decoder' in str(error.value)


@pytest.mark.parametrize('image_format,options', [
    ('GIF', {}), ('PNG', {}), ('PNG', dict(transparency=0))])
def test_palette_gif_and_png_match_pil(image_format, options):
  contents = saved(Image.fromarray(RGB).quantize(16), image_format, **options)
  np.testing.assert_array_equal(decoded(contents, 'a'), pil_rgb(contents))


def test_transparent_gif_pixels_are_black():
  # The documented difference: TensorFlow's GIF decoder gives transparent
  # pixels (0, 0, 0); PIL shows their palette entry. The others match.
  palette_image = Image.fromarray(RGB).quantize(16)
  contents = saved(palette_image, 'GIF', transparency=0)
  transparent = np.asarray(palette_image) == 0
  assert 0 < transparent.sum() < transparent.size
  image = decoded(contents, 'a.gif')
  np.testing.assert_array_equal(image[transparent], 0)
  np.testing.assert_array_equal(image[~transparent],
                                pil_rgb(contents)[~transparent])
