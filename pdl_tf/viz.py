"""Colour panoptic maps and overlays (numpy, PIL), for pdl-predict and
TensorBoard.

One colour per class: the dataset's own (``data.class_colors``, e.g. the
Cityscapes and COCO palettes) where known, else a fixed palette by class
index (``class_palette``). Each thing instance is a shade of its class's
colour, the same for the same instance id; segments are outlined
(``boundaries``). ``draw_labels`` and ``draw_legend`` add class names (and
scores) with PIL's default font; ``side_by_side`` puts two pictures in one.

Example:
  >>> picture = panoptic_overlay(image, panoptic, 1000, colors)  # uint8
"""

import colorsys

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

_GOLDEN = 0.6180339887498949
WHITE = (255, 255, 255)


def parse_color(value):
  """(r, g, b) ints of '#rrggbb' or a 3-sequence of ints in 0..255.

  Raises:
    ValueError: anything else (naming the value).
  """
  if isinstance(value, str):
    text = value[1:] if value.startswith('#') else ''
    try:
      if len(text) == 6:
        return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
      pass
  elif (isinstance(value, (list, tuple)) and len(value) == 3 and
        all(isinstance(c, int) and 0 <= c <= 255 for c in value)):
    return tuple(value)
  raise ValueError(f"colour {value!r} is not '#rrggbb' or [r, g, b] in "
                   '0..255.')


def hex_color(rgb):
  """'#rrggbb' of an (r, g, b)."""
  return '#{:02x}{:02x}{:02x}'.format(*(int(c) for c in rgb))


def class_palette(num_classes, colors=()):
  """uint8 [num_classes, 3]: ``colors`` (one per class, '#rrggbb' or
  [r, g, b]) where given, else hues a golden angle apart by class index
  (the same for every run; alternate classes lighter and darker).

  Raises:
    ValueError: ``colors`` given but not one per class, or not a colour.
  """
  if colors is not None and len(colors):
    if len(colors) != num_classes:
      raise ValueError(f'{len(colors)} class colours for {num_classes} '
                       'classes.')
    return np.array([parse_color(c) for c in colors], np.uint8)
  rows = [colorsys.hsv_to_rgb((index * _GOLDEN) % 1.0, 0.7,
                              0.95 if index % 2 == 0 else 0.7)
          for index in range(num_classes)]
  return np.round(np.array(rows, np.float64).reshape(-1, 3) *
                  255).astype(np.uint8)


def instance_shades(colors, instances):
  """uint8 [..., 3]: each thing instance a shade of its class colour.

  Instance 0 (stuff) and 1 get the colour itself; instance k moves it
  ``0.6 * frac((k - 1) * golden ratio)`` of the way towards white (dark
  colours) or black (light ones): distinct for distinct k.

  Args:
    colors: uint8 [..., 3] class colours.
    instances: int [...] instance ids (0 = stuff).
  """
  colors = np.asarray(colors, np.float64)
  k = np.maximum(np.asarray(instances, np.int64) - 1, 0)
  amount = 0.6 * ((k * _GOLDEN) % 1.0)
  luminance = colors @ np.array([0.299, 0.587, 0.114])
  target = np.where(luminance < 140, 255.0, 0.0)
  shaded = colors + (target[..., None] - colors) * amount[..., None]
  return np.round(shaded).astype(np.uint8)


def panoptic_colors(panoptic, label_divisor, palette):
  """uint8 [H, W, 3]: class colour shaded by instance, black for void.

  Args:
    panoptic: int [H, W], class * label_divisor + instance, void < 0.
    label_divisor: as above.
    palette: uint8 [num_classes, 3] (``class_palette``).

  Raises:
    ValueError: a class beyond the palette.
  """
  panoptic = np.asarray(panoptic, np.int64)
  palette = np.asarray(palette, np.uint8)
  valid = panoptic >= 0
  classes = np.where(valid, panoptic // label_divisor, 0)
  if classes.max(initial=0) >= len(palette):
    raise ValueError(f'class {int(classes.max())} in the panoptic map but '
                     f'only {len(palette)} class colours.')
  rgb = instance_shades(palette[classes], np.where(
      valid, panoptic % label_divisor, 0))
  rgb[~valid] = 0
  return rgb


def boundaries(ids):
  """bool [H, W]: non-void pixels (id >= 0) with a 4-neighbour of another
  id: a 1-pixel line inside each segment, 2 pixels between two."""
  ids = np.asarray(ids)
  edge = np.zeros(ids.shape, bool)
  vertical = ids[1:] != ids[:-1]
  horizontal = ids[:, 1:] != ids[:, :-1]
  edge[1:] |= vertical
  edge[:-1] |= vertical
  edge[:, 1:] |= horizontal
  edge[:, :-1] |= horizontal
  return edge & (ids >= 0)


def panoptic_overlay(image, panoptic, label_divisor=1000, colors=(),
                     alpha=0.5, outline=WHITE):
  """The image with each segment's colour blended in and outlined; void
  pixels unchanged.

  Args:
    image: [H, W, 3] in 0..255.
    panoptic: int [H, W], class * label_divisor + instance, void < 0.
    label_divisor: as above.
    colors: the class colours ('#rrggbb' or [r, g, b]), or () for
      ``class_palette``'s.
    alpha: weight of the colour (0..1).
    outline: (r, g, b) of the segment outlines, None for none.

  Returns:
    uint8 [H, W, 3].
  """
  panoptic = np.asarray(panoptic, np.int64)
  top = int(panoptic.max(initial=-1)) // label_divisor + 1
  palette = class_palette(len(colors) if len(colors) else max(top, 1),
                          colors)
  image = np.asarray(image, np.float32)
  blended = (1 - alpha) * image + alpha * panoptic_colors(
      panoptic, label_divisor, palette)
  picture = np.where((panoptic >= 0)[..., None], blended, image)
  if outline is not None:
    picture[boundaries(panoptic)] = outline
  return np.round(picture).clip(0, 255).astype(np.uint8)


def interior_point(mask):
  """(y, x) of a pixel of ``mask`` far from its boundary: of the pixels
  that survive the most 4-neighbour erosions, the one nearest the mask's
  centroid (masks over 128 pixels across are eroded at a stride).

  Raises:
    ValueError: an empty mask.
  """
  ys, xs = np.nonzero(mask)
  if not len(ys):
    raise ValueError('interior_point of an empty mask.')
  y0, x0 = ys.min(), xs.min()
  crop = np.asarray(mask, bool)[y0:ys.max() + 1, x0:xs.max() + 1]
  stride = max(1, -(-max(crop.shape) // 128))
  core = np.pad(crop[::stride, ::stride], 1)
  while True:
    eroded = (core[1:-1, 1:-1] & core[:-2, 1:-1] & core[2:, 1:-1] &
              core[1:-1, :-2] & core[1:-1, 2:])
    if not eroded.any():
      break
    core = np.pad(eroded, 1)
  cy, cx = np.nonzero(core[1:-1, 1:-1])
  best = np.argmin((cy * stride - (ys.mean() - y0)) ** 2 +
                   (cx * stride - (xs.mean() - x0)) ** 2)
  return int(y0 + cy[best] * stride), int(x0 + cx[best] * stride)


def _font(height):
  """PIL's default font, sized for a picture ``height`` pixels high."""
  size = int(np.clip(round(height / 40), 10, 24))
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow < 10.1: one bitmap size
    return ImageFont.load_default()


def _boxed_text(draw, xy, text, font, anchor_center=True, bounds=None):
  """White text on a dark box, centred on ``xy`` and kept inside
  ``bounds`` (width, height)."""
  left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
  width, height = right - left + 4, bottom - top + 4
  x, y = xy
  if anchor_center:
    x, y = x - width // 2, y - height // 2
  if bounds is not None:
    x = int(np.clip(x, 0, max(0, bounds[0] - width)))
    y = int(np.clip(y, 0, max(0, bounds[1] - height)))
  draw.rectangle((x, y, x + width - 1, y + height - 1), fill=(0, 0, 0, 160))
  draw.text((x + 2 - left, y + 2 - top), text, font=font,
            fill=(255, 255, 255, 255))


def draw_labels(picture, ids, texts):
  """``picture`` with each segment's text drawn at its interior point.

  Args:
    picture: uint8 [H, W, 3].
    ids: int [H, W] segment ids.
    texts: {segment id: text}; segments not named are left unlabelled.

  Returns:
    uint8 [H, W, 3] (a new array).
  """
  ids = np.asarray(ids)
  canvas = Image.fromarray(np.asarray(picture, np.uint8)).convert('RGBA')
  layer = Image.new('RGBA', canvas.size, (0, 0, 0, 0))
  draw = ImageDraw.Draw(layer)
  font = _font(max(ids.shape))
  for segment_id, text in texts.items():
    mask = ids == segment_id
    if mask.any():
      y, x = interior_point(mask)
      _boxed_text(draw, (x, y), text, font, bounds=canvas.size)
  return np.asarray(Image.alpha_composite(canvas, layer).convert('RGB'))


def legend_entries(classes, class_names, palette):
  """[(class index, name, (r, g, b))] of the classes present, by index.

  Args:
    classes: iterable of the class indices present (repeats allowed).
    class_names: names by class index, or None ('class N').
    palette: uint8 [num_classes, 3].
  """
  return [(c, class_names[c] if class_names is not None else f'class {c}',
           tuple(int(v) for v in palette[c]))
          for c in sorted(set(int(c) for c in classes))]


def draw_legend(picture, entries):
  """``picture`` with a legend panel on its right: one colour swatch and
  name per entry (``legend_entries``), in columns as the height allows.

  Returns:
    uint8 [H, W + panel width, 3].
  """
  height = picture.shape[0]
  font = _font(max(picture.shape[:2]))
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  boxes = [measure.textbbox((0, 0), name, font=font) for _, name, _ in
           entries] or [(0, 0, 0, 10)]
  line = max(b[3] - b[1] for b in boxes) + 6
  swatch = line - 4
  rows = max(1, (height - 4) // line)
  columns = -(-len(entries) // rows)
  column_width = swatch + 6 + max(b[2] - b[0] for b in boxes) + 8
  panel = Image.new('RGB', (4 + columns * column_width, height),
                    (32, 32, 32))
  draw = ImageDraw.Draw(panel)
  for index, (_, name, color) in enumerate(entries):
    x = 4 + (index // rows) * column_width
    y = 4 + (index % rows) * line
    draw.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=color,
                   outline=WHITE)
    left, top, _, bottom = draw.textbbox((0, 0), name, font=font)
    draw.text((x + swatch + 6 - left, y + (swatch - (bottom - top)) // 2 -
               top), name, font=font, fill=WHITE)
  return np.concatenate([np.asarray(picture, np.uint8),
                         np.asarray(panel)], axis=1)


def side_by_side(left, right, gap=4):
  """uint8 [max H, W1 + gap + W2, 3]: two pictures, top-aligned, a white
  gap between them (the shorter one padded white below)."""
  height = max(left.shape[0], right.shape[0])
  parts = []
  for picture in (left, right):
    padded = np.full((height, picture.shape[1], 3), 255, np.uint8)
    padded[:picture.shape[0]] = picture
    parts.append(padded)
  return np.concatenate([parts[0], np.full((height, gap, 3), 255, np.uint8),
                         parts[1]], axis=1)
