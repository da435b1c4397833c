"""The merge's instances as (class, score, mask), for AP and result files."""

import numpy as np


def predicted_instances(instance_map, instance_classes, instance_scores):
  """Yields each non-empty instance slot of one image.

  Slot ``k`` has mask ``instance_map == k + 1``; empty slots (class -1, or
  no pixel, e.g. cropped away) are skipped before any mask is built.

  Args:
    instance_map: int [H, W], slot + 1 (0 = none).
    instance_classes: int [K], class per slot (-1 = empty).
    instance_scores: float [K].

  Yields:
    (class int, score float, mask bool [H, W]).
  """
  instance_map = np.asarray(instance_map)
  for slot, (cls, score) in enumerate(zip(instance_classes,
                                          instance_scores)):
    if cls < 0:
      continue
    mask = instance_map == slot + 1
    if mask.any():
      yield int(cls), float(score), mask
