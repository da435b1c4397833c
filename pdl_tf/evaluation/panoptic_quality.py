"""Panoptic quality (PQ = SQ x RQ) with the COCO panopticapi rules.

Per image, ground-truth and predicted segments are matched when they have the
same category and IoU > 0.5, with IoU = inter / (pred + gt - inter - pred area
on void). Crowd ground truth is never matched; an unmatched prediction is not
a false positive when more than half of it lies on void plus the crowd region
of its own category. PQ per category = sum of matched IoU / (TP + FP/2 +
FN/2), averaged over the categories with TP + FP + FN > 0.

The matching works on segment-id maps plus segment dicts, so the COCO-format
evaluation (coco_panoptic.pq_compute) and the in-memory streaming metric
(StreamingPanopticQuality) share this one implementation.
"""

import collections
import dataclasses

import numpy as np

VOID_ID = 0  # segment id of void in an id map (COCO panoptic convention)
_OFFSET = 2 ** 32


@dataclasses.dataclass
class Segment:
  """One segment of an image: its category, crowd flag and area in pixels."""
  category_id: int
  iscrowd: bool = False
  area: int = 0


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


def match_image(gt_ids, gt_segments, pred_ids, pred_segments, image=''):
  """Matches one image's segments and returns its PQStat.

  Args:
    gt_ids: int array [H, W] of ground-truth segment ids (VOID_ID = void).
    gt_segments: {segment_id: Segment}; areas are used as given.
    pred_ids: int array [H, W] of predicted segment ids (VOID_ID = void).
    pred_segments: {segment_id: Segment}; areas are recomputed from pred_ids.
    image: name used in error messages.

  Raises:
    ValueError: shapes differ, or a predicted id is in the map but not in
      the segments (or the reverse); the message names the image and id.
  """
  if gt_ids.shape != pred_ids.shape:
    raise ValueError(f'{image}: ground truth {gt_ids.shape} and prediction '
                     f'{pred_ids.shape} differ in size.')
  pred_area = _pixel_counts(pred_ids)
  pred_area.pop(VOID_ID, None)
  missing = sorted(set(pred_area) - set(pred_segments))
  if missing:
    raise ValueError(f'{image}: predicted segment ids {missing} are in the '
                     'PNG but not in the JSON segments_info.')
  unused = sorted(set(pred_segments) - set(pred_area))
  if unused:
    raise ValueError(f'{image}: predicted segment ids {unused} are in the '
                     'JSON segments_info but not in the PNG.')
  pred_segments = {i: dataclasses.replace(s, area=pred_area[i])
                   for i, s in pred_segments.items()}
  joint = _pixel_counts(gt_ids.astype(np.uint64) * _OFFSET +
                        pred_ids.astype(np.uint64))
  overlaps = {(key // _OFFSET, key % _OFFSET): count
              for key, count in joint.items()}
  stat, gt_matched, pred_matched = PQStat(), set(), set()
  for (gt_id, pred_id), intersection in overlaps.items():
    gt, pred = gt_segments.get(gt_id), pred_segments.get(pred_id)
    if gt is None or pred is None or gt.iscrowd:
      continue
    if gt.category_id != pred.category_id:
      continue
    union = (pred.area + gt.area - intersection -
             overlaps.get((VOID_ID, pred_id), 0))
    iou = intersection / union
    if iou > 0.5:
      stat.per_category[gt.category_id].tp += 1
      stat.per_category[gt.category_id].iou += iou
      gt_matched.add(gt_id)
      pred_matched.add(pred_id)
  crowd_of_category = {}
  for gt_id, gt in gt_segments.items():
    if gt.iscrowd:
      crowd_of_category[gt.category_id] = gt_id
    elif gt_id not in gt_matched:
      stat.per_category[gt.category_id].fn += 1
  for pred_id, pred in pred_segments.items():
    if pred_id in pred_matched:
      continue
    ignored = overlaps.get((VOID_ID, pred_id), 0)
    if pred.category_id in crowd_of_category:
      ignored += overlaps.get((crowd_of_category[pred.category_id], pred_id), 0)
    if ignored / pred.area > 0.5:
      continue
    stat.per_category[pred.category_id].fp += 1
  return stat
