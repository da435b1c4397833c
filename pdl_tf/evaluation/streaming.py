"""Streaming PQ on in-memory panoptic maps, for the evaluation loop.

Maps use the package's label encoding: value = class * label_divisor +
instance; in ground truth a thing class with instance 0 is crowd and class
``ignore_label`` is void; in predictions -1 (postprocess.VOID) is void. All
crowd pixels of a class are one value, hence one crowd region: the union
rule of panoptic_quality, which pq_compute follows too.
"""

import numpy as np

from pdl_tf.evaluation import panoptic_quality
from pdl_tf.evaluation.panoptic_quality import Segment


def _to_segments(panoptic, label_divisor, is_void, thing_class_ids):
  """Id map (void = 0) and {id: Segment} of a panoptic map."""
  values, inverse = np.unique(panoptic, return_inverse=True)
  ids = inverse.reshape(panoptic.shape).astype(np.int64) + 1
  segments = {}
  for index, value in enumerate(values.tolist()):
    if is_void(value):
      ids[ids == index + 1] = panoptic_quality.VOID_ID
      continue
    category, instance = divmod(value, label_divisor)
    segments[index + 1] = Segment(
        category, category in thing_class_ids and instance == 0)
  return ids, segments


class StreamingPanopticQuality:
  """Accumulates PQ over images; ``result()`` matches ``pq_compute``.

  Example:
    >>> metric = StreamingPanopticQuality(19, range(11, 19))
    >>> metric.update(gt_panoptic, pred_panoptic)   # [H, W] or [B, H, W]
    >>> metric.result()['All']['pq']
  """

  def __init__(self, num_classes, thing_class_ids, label_divisor=1000,
               ignore_label=255):
    self._things = frozenset(int(c) for c in thing_class_ids)
    self._categories = {c: {'isthing': int(c in self._things)}
                        for c in range(num_classes)}
    self._label_divisor = label_divisor
    self._ignore_label = ignore_label
    self._stat = panoptic_quality.PQStat()

  def reset(self):
    self._stat = panoptic_quality.PQStat()

  def update(self, gt_panoptic, pred_panoptic):
    """Adds images: int arrays [H, W] or [B, H, W] in the label encoding.

    Raises:
      ValueError: shapes differ, or a value's class is outside
        0..num_classes - 1 (and not void).
    """
    gt_panoptic, pred_panoptic = np.asarray(gt_panoptic), np.asarray(
        pred_panoptic)
    if gt_panoptic.shape != pred_panoptic.shape:
      raise ValueError(f'Ground truth {gt_panoptic.shape} and prediction '
                       f'{pred_panoptic.shape} differ in shape.')
    if gt_panoptic.ndim == 2:
      gt_panoptic, pred_panoptic = gt_panoptic[None], pred_panoptic[None]
    divisor = self._label_divisor
    for gt, pred in zip(gt_panoptic, pred_panoptic):
      gt_ids, gt_segments = _to_segments(
          gt, divisor, lambda v: v // divisor == self._ignore_label,
          self._things)
      # Crowd exists only in ground truth: no thing classes for predictions.
      pred_ids, pred_segments = _to_segments(
          pred, divisor, lambda v: v < 0, frozenset())
      for name, segments in (('ground truth', gt_segments),
                             ('prediction', pred_segments)):
        unknown = sorted({s.category_id for s in segments.values()} -
                         set(self._categories))
        if unknown:
          raise ValueError(f'{name} has classes {unknown} outside 0..'
                           f'{len(self._categories) - 1} (label_divisor '
                           f'{divisor}).')
      self._stat.merge(panoptic_quality.match_image(
          gt_ids, gt_segments, pred_ids, pred_segments))

  def result(self):
    """Same structure as ``pq_compute``; categories are class ids."""
    return self._stat.summary(self._categories)
