"""COCO panoptic PNG encoding: segment id = R + 256 G + 256^2 B, 0 = void.

Shared by the dataset readers and the evaluation; numpy and PIL only.
``parse_segments`` and ``check_areas`` are the one check of a
``segments_info`` list and of its agreement with the PNG, used by the
COCO-format reader and by ``pq_compute``.
"""

import os

import numpy as np
from PIL import Image


def read_id_map(path):
  """Segment-id map [H, W] (uint32) of a COCO panoptic PNG.

  Raises:
    FileNotFoundError: no such file. ValueError: not a readable image.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Panoptic PNG {path!r} does not exist.')
  try:
    with Image.open(path) as image:
      rgb = np.asarray(image if image.mode == 'RGB' else
                       image.convert('RGB'))
  except (OSError, SyntaxError) as e:
    raise ValueError(f'Panoptic PNG {path!r} cannot be read: {e}') from e
  ids = rgb[..., 2].astype(np.uint32)  # in place below: one array
  ids <<= 8
  ids |= rgb[..., 1]
  ids <<= 8
  ids |= rgb[..., 0]
  return ids


def read_index_png(path, what):
  """The values [H, W] of a one-channel PNG (8 or 16 bit gray, or the
  indices of a palette PNG), as stored: uint8, uint16 or int32.

  Args:
    path: the PNG.
    what: what it is, for messages (e.g. 'Semantic PNG').

  Raises:
    FileNotFoundError: no such file. ValueError: not a readable image, or
    one with several channels (RGB, gray + alpha).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path!r} does not exist.')
  try:
    with Image.open(path) as image:
      mode = image.mode
      values = np.asarray(image)
  except (OSError, SyntaxError) as e:
    raise ValueError(f'{what} {path!r} cannot be read: {e}') from e
  if values.ndim != 2:
    raise ValueError(f'{what} {path!r} has mode {mode}; it must have one '
                     'channel (8 or 16 bit gray, or palette indices).')
  return values


def id_map_to_rgb(ids):
  """uint8 [H, W, 3] with id = R + 256 G + 256^2 B."""
  ids = np.asarray(ids, np.int64)
  if ids.min() < 0 or ids.max() >= 256 ** 3:
    raise ValueError(f'segment ids must be in [0, 2^24); got {ids.min()}..'
                     f'{ids.max()}.')
  return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(
      np.uint8)


def _checked_info(info, index, categories, where, prediction):
  """(id, category_id, iscrowd) of one segments_info entry, or raises."""
  if not isinstance(info, dict) or 'id' not in info or (
      'category_id' not in info):
    raise ValueError(f'{where}: segments_info[{index}] needs an id and a '
                     f'category_id; got {info!r}.')
  segment_id, category = info['id'], info['category_id']
  if isinstance(segment_id, bool) or not isinstance(segment_id, int) or not (
      0 < segment_id < 256 ** 3):
    raise ValueError(f'{where}: segments_info[{index}] has id {segment_id!r};'
                     f' segment ids are ints in [1, 2^24) (0 is void).')
  if not isinstance(category, int) or category not in categories:
    raise ValueError(f'{where}: segment {segment_id} has unknown category_id '
                     f'{category!r}.')
  crowd = 0 if prediction else info.get('iscrowd', 0)
  if crowd not in (0, 1) or not isinstance(crowd, (int, bool)):
    raise ValueError(f'{where}: segment {segment_id} has iscrowd {crowd!r}; '
                     'expected 0 or 1.')
  return segment_id, category, bool(crowd)


def parse_segments(segments_info, categories, where, prediction=False):
  """Checks a ``segments_info`` list on its own; ``check_areas`` then checks
  it against its PNG. Together they check every field that a reader or an
  evaluation here takes from the JSON (``bbox`` is read by none).

  Args:
    segments_info: the annotation's list of segment dicts.
    categories: a container of the known category ids.
    where: the PNG's path, for the messages.
    prediction: for predictions iscrowd and area are not read (areas are
      counted on the PNG, as panopticapi does).

  Returns:
    {segment id: (category_id, iscrowd bool, JSON area or None)} in list
    order.

  Raises:
    ValueError naming ``where`` and the segment: an entry without an int id
    in [1, 2^24) or a category_id, an id listed twice, a category_id not in
    ``categories``, iscrowd other than 0 or 1 (absent = 0).
  """
  segments = {}
  for index, info in enumerate(segments_info):
    segment_id, category, crowd = _checked_info(info, index, categories,
                                                where, prediction)
    if segment_id in segments:
      raise ValueError(f'{where}: segment id {segment_id} is listed twice in '
                       'segments_info.')
    segments[segment_id] = (category, crowd,
                            None if prediction else info.get('area'))
  return segments


def check_areas(json_areas, png_areas, where):
  """Checks segments against the pixel counts of their PNG.

  Args:
    json_areas: {segment id: JSON area, or None where not given or not
      read}.
    png_areas: {segment id: pixel count} of the PNG (void, id 0, may be in).
    where: the PNG's path, for the messages.

  Raises:
    ValueError naming ``where`` and the segments: ids of the PNG (but 0)
    missing from the JSON, ids of the JSON missing from the PNG, or a JSON
    area different from the segment's pixel count.
  """
  missing = sorted(set(png_areas) - set(json_areas) - {0})
  if missing:
    raise ValueError(f'{where}: segment ids {missing} are in the PNG but '
                     'not in the JSON segments_info.')
  unused = sorted(set(json_areas) - set(png_areas))
  if unused:
    raise ValueError(f'{where}: segment ids {unused} are in the JSON '
                     'segments_info but not in the PNG.')
  for segment_id, area in json_areas.items():
    if area is not None and area != png_areas[segment_id]:
      raise ValueError(
          f'{where}: segment {segment_id} has JSON area {area!r} but covers '
          f'{png_areas[segment_id]} pixels of the PNG.')
