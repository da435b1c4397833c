"""Panoptic quality (PQ = SQ x RQ) with the COCO panopticapi rules.

Per image, ground-truth and predicted segments are matched when they have the
same category and IoU > 0.5, with IoU = inter / (pred + gt - inter - pred area
on void). Crowd ground truth is never matched; an unmatched prediction is not
a false positive when more than half of it lies on void plus the crowd
region of its own category. PQ per category = sum of matched IoU / (TP +
FP/2 + FN/2), averaged over the categories with TP + FP + FN > 0.

One image is one histogram: the pixel counts of every (ground-truth
segment, predicted segment) pair (``pair_histogram``, one ``np.bincount``),
from which ``match_histogram`` reads the areas, the matches and the false
positives. The COCO-format evaluation (coco_panoptic.pq_compute) and the
in-memory streaming metric (StreamingPanopticQuality) both call these two
functions, with integer counts and one summation order (matches in the
order of the ground-truth segment index, images in the order given), so
they agree bit for bit.

The crowd region of a category, with several crowd segments of it in one
image (``crowd_rule``):

* ``'union'`` (default): all of them, their union. The package's label
  encoding (crowd = instance 0 of a thing class) cannot tell them apart, so
  a prediction is judged the same from files and from label maps.
* ``'panopticapi'``: the official evaluator's rule (and cityscapesScripts'
  copy of it): only the crowd segment listed last in segments_info (its
  ``crowd_labels_dict`` is overwritten), so the result depends on the
  JSON's segment order. With this rule ``pq_compute`` equals panopticapi's
  numbers bit for bit.

With at most one crowd segment per category and image the two rules agree.
"""

import numpy as np

VOID_ID = 0  # segment id of void in an id map (COCO panoptic convention)
CROWD_RULES = ('union', 'panopticapi')


def check_crowd_rule(crowd_rule):
  """Raises ValueError unless ``crowd_rule`` is one of CROWD_RULES."""
  if crowd_rule not in CROWD_RULES:
    raise ValueError(f'crowd_rule {crowd_rule!r}: expected one of '
                     f'{", ".join(CROWD_RULES)}.')


def pair_histogram(gt_index, num_gt, pred_index, num_pred, out=None):
  """Pixel counts of every (ground-truth, predicted) segment pair.

  Args:
    gt_index: int array [H, W], segment indices 0..num_gt - 1 (0 = void).
    num_gt: number of ground-truth indices (void included).
    pred_index: int array [H, W], indices 0..num_pred - 1 (0 = void).
    num_pred: number of predicted indices (void included).
    out: optional int64 [H * W] buffer for the keys (saves an allocation
      per image).

  Returns:
    int64 [num_gt, num_pred]; row 0 / column 0 are void. Row sums are the
    ground-truth areas, column sums the predicted ones.

  Raises:
    ValueError: the maps differ in shape.
  """
  if gt_index.shape != pred_index.shape:
    raise ValueError(f'ground truth {gt_index.shape} and prediction '
                     f'{pred_index.shape} differ in size.')
  # int64 keys gt * num_pred + pred, computed in one array.
  key = np.multiply(gt_index.reshape(-1), np.intp(num_pred), out=out,
                    dtype=np.intp)
  key += pred_index.reshape(-1)
  return histogram_of_keys(key, num_gt, num_pred)


def histogram_of_keys(key, num_gt, num_pred):
  """int64 [num_gt, num_pred] counts of the int64 [N] keys gt_index *
  num_pred + pred_index (``pair_histogram``'s last step)."""
  return np.bincount(key, minlength=num_gt * num_pred).reshape(
      num_gt, num_pred)


def _crowd_rows(gt_category, gt_crowd, gt_rank, crowd_rule):
  """bool [G]: the crowd segments that make up their category's region."""
  if crowd_rule == 'union' or gt_crowd.sum() < 2:
    return gt_crowd
  crowds = np.flatnonzero(gt_crowd)
  listed = crowds[np.argsort(gt_rank[crowds], kind='stable')][::-1]
  _, last = np.unique(gt_category[listed], return_index=True)
  rows = np.zeros_like(gt_crowd)
  rows[listed[last]] = True
  return rows


def match_histogram(histogram, gt_category, gt_crowd, pred_category,
                    crowd_rule='union', gt_rank=None):
  """Matches one image's segments from its pair histogram.

  Args:
    histogram: int [G + 1, P + 1] of ``pair_histogram`` (row/column 0 void).
    gt_category: int [G + 1], category of each ground-truth index (entry 0
      unused).
    gt_crowd: bool [G + 1], crowd flag of each ground-truth index.
    pred_category: int [P + 1], category of each predicted index.
    crowd_rule: 'union' or 'panopticapi' (module docstring).
    gt_rank: int [G + 1], each ground-truth segment's position in its
      segments_info (the 'panopticapi' rule keeps the crowd listed last);
      default: index order.

  Returns:
    (tp_category int [T], tp_iou float64 [T], fn_category int [F],
    fp_category int [Q]); the matches in ground-truth index order. An index
    that covers no pixel is no segment (neither FN nor FP).
  """
  inter = histogram[1:, 1:]
  gt_area = histogram.sum(1)[1:]
  pred_area = histogram.sum(0)[1:]
  pred_void = histogram[0, 1:]
  gt_category = np.asarray(gt_category)[1:]
  pred_category = np.asarray(pred_category)[1:]
  crowd = np.asarray(gt_crowd, bool)[1:]
  same = gt_category[:, None] == pred_category[None, :]
  gt, pred = np.nonzero(same & (inter > 0) & ~crowd[:, None])
  overlap = inter[gt, pred]
  iou = overlap / (pred_area[pred] + gt_area[gt] - overlap - pred_void[pred])
  matched = iou > 0.5
  gt, pred, iou = gt[matched], pred[matched], iou[matched]
  gt_matched = np.zeros(len(gt_area), bool)
  gt_matched[gt] = True
  pred_matched = np.zeros(len(pred_area), bool)
  pred_matched[pred] = True
  rank = (np.arange(len(crowd)) if gt_rank is None else
          np.asarray(gt_rank)[1:])
  region = _crowd_rows(gt_category, crowd, rank, crowd_rule)
  ignored = pred_void + (inter * (same & region[:, None])).sum(0)
  present = pred_area > 0
  false_positive = ~pred_matched & present
  false_positive[present] &= ~(ignored[present] / pred_area[present] > 0.5)
  missed = ~gt_matched & ~crowd & (gt_area > 0)
  return gt_category[gt], iou, gt_category[missed], pred_category[
      false_positive]


def _running_sum(values):
  """Plain left-to-right float sum, as panopticapi adds (Python 3.12's
  ``sum`` compensates the rounding, which differs in the last bit)."""
  total = 0.0
  for value in values:
    total += value
  return total


class PQStat:
  """Per-category TP / FP / FN counts and IoU sums over images.

  Args:
    categories: the category ids (any ints) that segments may have.
  """

  def __init__(self, categories):
    self._ids = np.array(sorted(int(c) for c in categories), np.int64)
    size = len(self._ids)
    self.iou = np.zeros(size)
    self.tp = np.zeros(size, np.int64)
    self.fp = np.zeros(size, np.int64)
    self.fn = np.zeros(size, np.int64)

  def _positions(self, category):
    position = np.searchsorted(self._ids, category)
    if len(category) and (position.max() >= len(self._ids) or (
        self._ids[position] != category).any()):
      unknown = sorted(set(np.asarray(category).tolist()) -
                       set(self._ids.tolist()))
      raise ValueError(f'segments of unknown categories {unknown}.')
    return position

  def add(self, tp_category, tp_iou, fn_category, fp_category):
    """Adds one image (``match_histogram``'s result). IoUs are summed one
    by one in the given order (np.add.at is unbuffered), as panopticapi
    does."""
    tp = self._positions(tp_category)
    np.add.at(self.iou, tp, tp_iou)
    size = len(self._ids)
    self.tp += np.bincount(tp, minlength=size)
    self.fn += np.bincount(self._positions(fn_category), minlength=size)
    self.fp += np.bincount(self._positions(fp_category), minlength=size)

  def summary(self, categories):
    """PQ / SQ / RQ for All, Things and Stuff, and per category.

    Args:
      categories: {category_id: {'isthing': 0 or 1, ...}}.

    Returns:
      {'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'},
       'per_class': {category_id: {'pq', 'sq', 'rq'}}} with fractions in
      [0, 1]; a split with no counted category has pq = sq = rq = 0, n = 0.
    """
    index = {c: k for k, c in enumerate(self._ids.tolist())}
    per_class = {}
    for category in categories:
      k = index[category]
      iou, tp, fp, fn = (float(self.iou[k]), int(self.tp[k]),
                         int(self.fp[k]), int(self.fn[k]))
      denominator = tp + 0.5 * fp + 0.5 * fn
      if denominator == 0:
        per_class[category] = None
        continue
      per_class[category] = {'pq': iou / denominator,
                             'sq': iou / tp if tp else 0.0,
                             'rq': tp / denominator}
    result = {}
    for split, keep in (('All', lambda c: True),
                        ('Things', lambda c: categories[c]['isthing'] == 1),
                        ('Stuff', lambda c: categories[c]['isthing'] != 1)):
      counted = [per_class[c] for c in categories
                 if keep(c) and per_class[c] is not None]
      n = len(counted)
      result[split] = {key: (_running_sum(r[key] for r in counted) / n
                             if n else 0.0) for key in ('pq', 'sq', 'rq')}
      result[split]['n'] = n
    result['per_class'] = {
        c: r or {'pq': 0.0, 'sq': 0.0, 'rq': 0.0} for c, r in per_class.items()}
    return result
