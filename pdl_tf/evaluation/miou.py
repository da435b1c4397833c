"""Streaming mean IoU over semantic classes (ignore label excluded)."""

import numpy as np


class StreamingMeanIoU:
  """Accumulates a confusion matrix; ``result()`` gives mIoU and per class.

  Classes that appear neither in the ground truth nor in the predictions of
  any image seen have no IoU (NaN per class) and do not enter the mean.

  Example:
    >>> metric = StreamingMeanIoU(num_classes=19, ignore_label=255)
    >>> metric.update(gt_semantic, pred_semantic)   # [H, W] or [B, H, W]
    >>> metric.result()['miou']
  """

  def __init__(self, num_classes, ignore_label=255):
    self.num_classes = num_classes
    self.ignore_label = ignore_label
    self.confusion = np.zeros((num_classes, num_classes), np.int64)

  def reset(self):
    self.confusion[:] = 0

  def update(self, gt_semantic, pred_semantic):
    """Adds pixels; gt rows, prediction columns. Out-of-range ids raise."""
    gt, pred = np.asarray(gt_semantic), np.asarray(pred_semantic)
    if gt.shape != pred.shape:
      raise ValueError(f'Ground truth {gt.shape} and prediction {pred.shape} '
                       'differ in shape.')
    keep = gt != self.ignore_label
    gt, pred = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    for name, values in (('ground-truth', gt), ('predicted', pred)):
      if values.size and (values.min() < 0 or values.max() >= self.num_classes):
        raise ValueError(f'{name} class ids must be in [0, '
                         f'{self.num_classes}) or the ignore label '
                         f'{self.ignore_label}; got {values.min()}..'
                         f'{values.max()}.')
    self.confusion += np.bincount(
        gt * self.num_classes + pred,
        minlength=self.num_classes ** 2).reshape(self.confusion.shape)

  def result(self):
    """{'miou': float, 'per_class_iou': float array [C] (NaN if unseen)}."""
    true_positive = np.diag(self.confusion).astype(np.float64)
    union = (self.confusion.sum(0) + self.confusion.sum(1) - true_positive)
    with np.errstate(invalid='ignore', divide='ignore'):
      iou = np.where(union > 0, true_positive / union, np.nan)
    seen = ~np.isnan(iou)
    return {'miou': float(iou[seen].mean()) if seen.any() else 0.0,
            'per_class_iou': iou}
