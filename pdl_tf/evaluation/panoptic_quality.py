"""Panoptic quality (PQ = SQ x RQ) with the COCO panopticapi rules.

Per image, ground-truth and predicted segments are matched when they have the
same category and IoU > 0.5, with IoU = inter / (pred + gt - inter - pred area
on void). Crowd ground truth is never matched; an unmatched prediction is not
a false positive when more than half of it lies on void plus the crowd
regions of its own category. PQ per category = sum of matched IoU / (TP + FP/2 +
FN/2), averaged over the categories with TP + FP + FN > 0.

The matching works on segment-id maps plus segment dicts, so the COCO-format
evaluation (coco_panoptic.pq_compute) and the in-memory streaming metric
(StreamingPanopticQuality) share this one implementation.

Several crowd segments of one category in one image count as one region,
their union: the package's label encoding (crowd = instance 0 of a thing
class) cannot tell them apart, so this is the one rule both paths can
follow. panopticapi (and cityscapesScripts' copy of it) keeps only the crowd
segment listed last in segments_info for each category (its
``crowd_labels_dict`` is overwritten), which makes its result depend on the
JSON's segment order; with at most one crowd segment per category and image
the two rules agree.
"""

import collections
import dataclasses
from typing import Optional

import numpy as np

from pdl_tf.panoptic_format import check_areas

VOID_ID = 0  # segment id of void in an id map (COCO panoptic convention)
_OFFSET = 2 ** 32


@dataclasses.dataclass
class Segment:
  """One segment of an image: its category, crowd flag and, from a JSON,
  its stated area (None: not given). Areas are counted on the id map; a
  stated one must equal the count."""
  category_id: int
  iscrowd: bool = False
  area: Optional[int] = None


@dataclasses.dataclass
class CategoryStat:
  """Accumulated matches of one category."""
  iou: float = 0.0
  tp: int = 0
  fp: int = 0
  fn: int = 0

  def add(self, other):
    self.iou += other.iou
    self.tp += other.tp
    self.fp += other.fp
    self.fn += other.fn


class PQStat:
  """Per-category TP / FP / FN / IoU sums, mergeable across images/workers."""

  def __init__(self):
    self.per_category = collections.defaultdict(CategoryStat)

  def merge(self, other):
    for category, stat in other.per_category.items():
      self.per_category[category].add(stat)
    return self

  def summary(self, categories):
    """PQ / SQ / RQ for All, Things and Stuff, and per category.

    Args:
      categories: {category_id: {'isthing': 0 or 1, ...}}.

    Returns:
      {'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'},
       'per_class': {category_id: {'pq', 'sq', 'rq'}}} with fractions in
      [0, 1]; a split with no counted category has pq = sq = rq = 0, n = 0.
    """
    per_class = {}
    for category in categories:
      stat = self.per_category.get(category, CategoryStat())
      denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
      if denominator == 0:
        per_class[category] = None
        continue
      per_class[category] = {
          'pq': stat.iou / denominator,
          'sq': stat.iou / stat.tp if stat.tp else 0.0,
          'rq': stat.tp / denominator}
    result = {}
    for split, keep in (('All', lambda c: True),
                        ('Things', lambda c: categories[c]['isthing'] == 1),
                        ('Stuff', lambda c: categories[c]['isthing'] != 1)):
      counted = [per_class[c] for c in categories
                 if keep(c) and per_class[c] is not None]
      n = len(counted)
      result[split] = {key: (sum(r[key] for r in counted) / n if n else 0.0)
                       for key in ('pq', 'sq', 'rq')}
      result[split]['n'] = n
    result['per_class'] = {
        c: r or {'pq': 0.0, 'sq': 0.0, 'rq': 0.0} for c, r in per_class.items()}
    return result


def _pixel_counts(id_map):
  ids, counts = np.unique(id_map, return_counts=True)
  return dict(zip(ids.tolist(), counts.tolist()))


def match_image(gt_ids, gt_segments, pred_ids, pred_segments, image='',
                gt_image=None):
  """Matches one image's segments and returns its PQStat.

  Areas are pixel counts of the id maps; the segments must be exactly the
  ids of their map (void aside), and an area stated in a Segment must equal
  its count (panoptic_format.check_areas).

  Args:
    gt_ids: int array [H, W] of ground-truth segment ids (VOID_ID = void).
    gt_segments: {segment_id: Segment}.
    pred_ids: int array [H, W] of predicted segment ids (VOID_ID = void).
    pred_segments: {segment_id: Segment}.
    image: the prediction's name, for error messages.
    gt_image: the ground truth's name (default ``image``).

  Raises:
    ValueError: shapes differ, or a segments dict disagrees with its map;
      the message names the image and segment.
  """
  if gt_ids.shape != pred_ids.shape:
    raise ValueError(f'{image}: ground truth {gt_ids.shape} and prediction '
                     f'{pred_ids.shape} differ in size.')
  joint = _pixel_counts(gt_ids.astype(np.uint64) * _OFFSET +
                        pred_ids.astype(np.uint64))
  overlaps = {(key // _OFFSET, key % _OFFSET): count
              for key, count in joint.items()}
  gt_area, pred_area = collections.Counter(), collections.Counter()
  for (gt_id, pred_id), count in overlaps.items():
    gt_area[gt_id] += count
    pred_area[pred_id] += count
  for segments, area, name in ((gt_segments, gt_area, gt_image or image),
                               (pred_segments, pred_area, image)):
    check_areas({i: s.area for i, s in segments.items()}, area, name)
  stat, gt_matched, pred_matched = PQStat(), set(), set()
  for (gt_id, pred_id), intersection in overlaps.items():
    gt, pred = gt_segments.get(gt_id), pred_segments.get(pred_id)
    if gt is None or pred is None or gt.iscrowd:
      continue
    if gt.category_id != pred.category_id:
      continue
    union = (pred_area[pred_id] + gt_area[gt_id] - intersection -
             overlaps.get((VOID_ID, pred_id), 0))
    iou = intersection / union
    if iou > 0.5:
      stat.per_category[gt.category_id].tp += 1
      stat.per_category[gt.category_id].iou += iou
      gt_matched.add(gt_id)
      pred_matched.add(pred_id)
  crowd_of_category = collections.defaultdict(list)
  for gt_id, gt in gt_segments.items():
    if gt.iscrowd:
      crowd_of_category[gt.category_id].append(gt_id)
    elif gt_id not in gt_matched:
      stat.per_category[gt.category_id].fn += 1
  for pred_id, pred in pred_segments.items():
    if pred_id in pred_matched:
      continue
    ignored = overlaps.get((VOID_ID, pred_id), 0) + sum(
        overlaps.get((crowd_id, pred_id), 0)
        for crowd_id in crowd_of_category.get(pred.category_id, ()))
    if ignored / pred_area[pred_id] > 0.5:
      continue
    stat.per_category[pred.category_id].fp += 1
  return stat
