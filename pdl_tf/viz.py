"""Colour panoptic maps and overlays (numpy), for pdl-predict and TensorBoard.

Example:
  >>> picture = panoptic_overlay(image, panoptic)   # uint8 [H, W, 3]
"""

import numpy as np


def segment_colors(ids):
  """uint8 [H, W, 3]: a fixed pseudo-random colour per segment id, black
  for 0 (void)."""
  ids = np.asarray(ids, np.uint32)
  hashed = (ids * np.uint32(2654435761)) >> np.uint32(8)
  rgb = np.stack([hashed % 256, hashed // 256 % 256, hashed // 65536 % 256],
                 axis=-1).astype(np.uint8)
  rgb[ids == 0] = 0
  return rgb


def overlay(image, ids, alpha=0.5):
  """The image with segment colours blended in (void pixels unchanged).

  Args:
    image: [H, W, 3] in 0..255.
    ids: int [H, W] segment ids, 0 = void.
  """
  image = np.asarray(image, np.float32)
  blended = (1 - alpha) * image + alpha * segment_colors(ids)
  return np.where((ids > 0)[..., None], blended, image).astype(np.uint8)


def panoptic_overlay(image, panoptic, alpha=0.5):
  """Overlay of a panoptic map (class * divisor + instance, void < 0)."""
  panoptic = np.asarray(panoptic, np.int64)
  return overlay(image, np.where(panoptic < 0, 0, panoptic + 1), alpha)
