"""COCO panoptic PNG encoding: segment id = R + 256 G + 256^2 B, 0 = void.

Shared by the dataset readers and the evaluation; numpy and PIL only.
"""

import json
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
      rgb = np.asarray(image.convert('RGB'), dtype=np.uint32)
  except (OSError, SyntaxError) as e:
    raise ValueError(f'Panoptic PNG {path!r} cannot be read: {e}') from e
  return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_map_to_rgb(ids):
  """uint8 [H, W, 3] with id = R + 256 G + 256^2 B."""
  ids = np.asarray(ids, np.int64)
  if ids.min() < 0 or ids.max() >= 256 ** 3:
    raise ValueError(f'segment ids must be in [0, 2^24); got {ids.min()}..'
                     f'{ids.max()}.')
  return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(
      np.uint8)


def load_json(path, what):
  """Parsed JSON file; errors name ``what`` (e.g. 'Ground-truth') and path."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} JSON {path!r} does not exist.')
  with open(path, encoding='utf-8') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{what} JSON {path!r} is not valid JSON: {e}') from e
