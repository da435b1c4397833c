"""Streaming PQ on in-memory panoptic maps, for the evaluation loop.

Two ways in, one matching (panoptic_quality.pair_histogram and
match_histogram, as pq_compute):

* ``update_segments``: segment-index maps plus each segment's class and
  crowd flag. Segments stay as distinct as their producer made them: two
  stuff segments of one class are two segments, several crowd segments
  several (scored by ``crowd_rule``), exactly as ``pq_compute`` scores the
  same segments from files.
* ``update``: maps in the package's label encoding, value = class *
  label_divisor + instance; in ground truth a thing class with instance 0 is
  crowd and class ``ignore_label`` is void; in predictions -1
  (postprocess.VOID) is void. One segment per value (``label_segments``).
  The encoding alone has one value for all stuff of a class and for all
  crowd of a class; a ground-truth *segment key map* (segment_keys.py,
  which pdl-eval's input pipeline gives) keeps such segments apart, as the
  COCO panoptic files list them, so that ``update`` scores what
  ``pq_compute`` scores on those files.
"""

import numpy as np

from pdl_tf.labels import segment_keys as keys_lib
from pdl_tf.evaluation import panoptic_quality

_SAMPLE_STRIDE = 61  # values are first looked for in every 61st pixel


class _ValueTable:
  """Label value -> segment index by one table look-up (``np.take``), the
  table kept between images (its size: the largest value met + 2, int32)
  and its used entries cleared after each map."""

  def __init__(self, dtype=np.int32):
    self._table = np.full(2, -1, dtype)

  def compact(self, flat, is_void, out=None, scale=1):
    """(index int32 [N] with void 0, values int64 [n + 1]) of a 1-D map:
    index k > 0 is values[k], the present non-void values in sorted order.

    The present values are first looked for in a sample of the pixels and
    then checked on all of them, so the cost is one pass over the map, not
    a sort. ``out``: optional [N] buffer (the table's dtype) for the
    index; ``scale``: the index comes multiplied by it (void 0).
    """
    lo, hi = int(flat.min()), int(flat.max())
    if lo < -1 or hi > max(4 * flat.size, 1 << 20):  # sparse: sort
      values, inverse = np.unique(flat, return_inverse=True)
      void = is_void(values)
      table = np.where(void, 0, np.cumsum(~void) * scale).astype(
          self._table.dtype)
      return (np.take(table, inverse.ravel(), out=out, mode='wrap'),
              np.concatenate([[0], values[~void]]))
    if len(self._table) < hi + 2:
      self._table = np.full(hi + 2, -1, self._table.dtype)
    table = self._table  # value v at position v; -1 at the last one (-1)
    seen = np.unique(flat[::_SAMPLE_STRIDE])
    while True:
      void = is_void(seen)
      values = seen[~void]
      table[seen[void]] = 0
      table[values] = np.arange(1, len(values) + 1) * scale
      try:  # 'wrap': -1 is the last entry, and no buffering of ``out``
        index = np.take(table, flat, out=out, mode='wrap')
      finally:
        table[seen] = -1
      if index.min() >= 0:
        return index, np.concatenate([[0], values]).astype(np.int64)
      seen = np.union1d(seen, np.unique(flat[index < 0]))


def label_segments(panoptic, label_divisor, void_class=None,
                   thing_class_ids=(), table=None, out=None, scale=1,
                   key_range=None):
  """Segments of a map in the label encoding: one per value.

  Args:
    panoptic: int array [H, W], value = class * label_divisor + instance;
      or a ground-truth segment key map (segment_keys.py, ``key_range``).
    label_divisor: as in the encoding.
    void_class: ground truth: the class of void (ignore_label); None for a
      prediction, where values < 0 are void.
    thing_class_ids: ground truth: classes whose instance 0 is crowd.
    table: a _ValueTable to reuse (a new one by default).
    out: optional [H * W] buffer (the table's dtype) for the index map.
    scale: the index map comes multiplied by it (pair_histogram's keys).
    key_range: ``panoptic`` is a segment key map of this key range (its
      values' labels are value % key_range); None: a label map.

  Returns:
    (index int32 [H, W] (0 = void), classes int64 [n + 1], crowd bool
    [n + 1]), entry 0 of the lists standing for void.
  """
  panoptic = np.asarray(panoptic)
  if key_range and panoptic.size and panoptic.min() < 0:
    raise ValueError(f'segment keys are >= 0; the map holds {panoptic.min()}.')
  label = (lambda v: v % key_range) if key_range else (lambda v: v)
  if void_class is None:
    is_void = lambda v: v < 0
  else:
    is_void = lambda v: label(v) // label_divisor == void_class
  index, values = (table or _ValueTable()).compact(panoptic.ravel(), is_void,
                                                   out, scale)
  classes, instances = np.divmod(label(values), label_divisor)
  crowd = np.isin(classes, list(thing_class_ids)) & (instances == 0)
  crowd[0] = False
  return index.reshape(panoptic.shape), classes, crowd


class StreamingPanopticQuality:
  """Accumulates PQ over images; ``result()`` matches ``pq_compute``.

  Args:
    num_classes: classes 0..num_classes - 1.
    thing_class_ids: the thing classes (the others are stuff).
    label_divisor, ignore_label: of the label encoding (``update``).
    crowd_rule: 'union' (default) or 'panopticapi' (panoptic_quality).

  Example:
    >>> metric = StreamingPanopticQuality(19, range(11, 19))
    >>> metric.update(gt_panoptic, pred_panoptic)   # [H, W] or [B, H, W]
    >>> metric.result()['All']['pq']
  """

  def __init__(self, num_classes, thing_class_ids, label_divisor=1000,
               ignore_label=255, crowd_rule='union'):
    panoptic_quality.check_crowd_rule(crowd_rule)
    self._things = frozenset(int(c) for c in thing_class_ids)
    self._categories = {c: {'isthing': int(c in self._things)}
                        for c in range(num_classes)}
    self._label_divisor = label_divisor
    self._ignore_label = ignore_label
    self.crowd_rule = crowd_rule
    self._table = _ValueTable()
    self._key_table = _ValueTable(np.intp)
    self._buffer = None
    self.reset()

  def reset(self):
    self._stat = panoptic_quality.PQStat(self._categories)

  def update(self, gt_panoptic, pred_panoptic, segment_keys=False):
    """Adds images: int arrays [H, W] or [B, H, W] in the label encoding.

    With ``segment_keys``, ``gt_panoptic`` is a segment key map
    (pdl_tf/labels/segment_keys.py): segments that share a label value are
    scored apart, crowd segments of a class in listing order (the
    'panopticapi' rule's "listed last"); its values' labels are not range
    checked beyond their class.

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
    if not len(gt_panoptic):
      return
    _, pred_buffer, key = self._buffers(gt_panoptic[0].size)
    divisor = self._label_divisor
    key_range = (keys_lib.key_range(divisor, self._ignore_label)
                 if segment_keys else None)
    for gt, pred in zip(gt_panoptic, pred_panoptic):
      # Crowd exists only in ground truth.
      pred_index, pred_classes, _ = label_segments(
          pred, divisor, table=self._table, out=pred_buffer)
      # The ground-truth index comes as int64 keys index * num_pred, to
      # which the predicted index is added: pair_histogram's keys, one
      # pass fewer over the image.
      _, gt_classes, gt_crowd = label_segments(
          gt, divisor, self._ignore_label, self._things, self._key_table,
          key, scale=len(pred_classes), key_range=key_range)
      key += pred_index.ravel()
      self._match(panoptic_quality.histogram_of_keys(
          key, len(gt_classes), len(pred_classes)), gt_classes, gt_crowd,
                  pred_classes)

  def update_segments(self, gt_index, gt_classes, gt_crowd, pred_index,
                      pred_classes):
    """Adds one image given as segments.

    Args:
      gt_index: int array [H, W], ground-truth segment indices 0..G (0 =
        void).
      gt_classes: int [G + 1], each index's class (entry 0 unused).
      gt_crowd: bool [G + 1], each index's crowd flag; the 'panopticapi'
        crowd rule takes the crowd segment of highest index as listed last.
      pred_index: int array [H, W], predicted segment indices 0..P (0 =
        void).
      pred_classes: int [P + 1], each index's class (entry 0 unused).

    An index that covers no pixel is no segment.

    Raises:
      ValueError: shapes differ, an index outside its class list, or a
        class outside 0..num_classes - 1.
    """
    gt_index, pred_index = np.asarray(gt_index), np.asarray(pred_index)
    gt_classes = np.asarray(gt_classes, np.int64)
    pred_classes = np.asarray(pred_classes, np.int64)
    gt_crowd = np.asarray(gt_crowd, bool)
    if gt_classes.shape != gt_crowd.shape:
      raise ValueError(f'gt_classes {gt_classes.shape} and gt_crowd '
                       f'{gt_crowd.shape} differ in length.')
    for name, index, classes in (('ground truth', gt_index, gt_classes),
                                 ('prediction', pred_index, pred_classes)):
      if index.size and (index.min() < 0 or index.max() >= len(classes)):
        raise ValueError(f'{name} segment indices {index.min()}..'
                         f'{index.max()} outside 0..{len(classes) - 1} of '
                         'its class list.')
    self._add(gt_index, gt_classes, gt_crowd, pred_index, pred_classes)

  def _buffers(self, size):
    """Index maps (int32) and keys (int64) of an image of ``size`` pixels,
    kept between images: fresh arrays of this size cost more than the
    work (page faults) when several are alive at once."""
    if self._buffer is None or len(self._buffer[2]) != size:
      self._buffer = (np.empty(size, np.int32), np.empty(size, np.int32),
                      np.empty(size, np.intp))
    return self._buffer

  def _add(self, gt_index, gt_classes, gt_crowd, pred_index, pred_classes):
    self._match(panoptic_quality.pair_histogram(
        gt_index, len(gt_classes), pred_index, len(pred_classes),
        out=self._buffers(gt_index.size)[2]), gt_classes, gt_crowd,
                pred_classes)

  def _match(self, histogram, gt_classes, gt_crowd, pred_classes):
    """Checks the classes of the segments present and adds the image."""
    for name, classes, areas in (('ground truth', gt_classes,
                                  histogram.sum(1)),
                                 ('prediction', pred_classes,
                                  histogram.sum(0))):
      used = classes[1:][areas[1:] > 0]
      if used.size and (used.min() < 0 or
                        used.max() >= len(self._categories)):
        unknown = sorted(set(used[(used < 0) | (used >= len(
            self._categories))].tolist()))
        raise ValueError(f'{name} has classes {unknown} outside 0..'
                         f'{len(self._categories) - 1} (label_divisor '
                         f'{self._label_divisor}).')
    self._stat.add(*panoptic_quality.match_histogram(
        histogram, gt_classes, gt_crowd, pred_classes, self.crowd_rule))

  def result(self):
    """Same structure as ``pq_compute``; categories are class ids."""
    return self._stat.summary(self._categories)
