"""mIoU on hand-worked maps."""

import numpy as np
import pytest

from pdl_tf.evaluation import StreamingMeanIoU


def test_hand_worked_miou_over_two_updates():
  # Image 1 (2x3): gt [[0,0,1],[1,2,255]], pred [[0,1,1],[1,2,0]]; the
  # ignored pixel does not count. Class 0: tp 1, gt 2, pred 1 -> 1/2.
  # Class 1: tp 2, gt 2, pred 3 -> 2/3. Class 2: tp 1 -> 1. Class 3 unseen.
  # Image 2 (1x2): gt [3, 3], pred [3, 0] -> class 3: 1/2; class 0 now has
  # tp 1, gt 2, pred 2 -> union 3 -> 1/3.
  metric = StreamingMeanIoU(num_classes=5, ignore_label=255)
  metric.update([[0, 0, 1], [1, 2, 255]], [[0, 1, 1], [1, 2, 0]])
  metric.update([[3, 3]], [[3, 0]])
  result = metric.result()
  np.testing.assert_allclose(result['per_class_iou'][:4],
                             [1 / 3, 2 / 3, 1.0, 1 / 2])
  assert np.isnan(result['per_class_iou'][4])  # never seen: not averaged
  assert result['miou'] == pytest.approx((1 / 3 + 2 / 3 + 1 + 1 / 2) / 4)


def test_bad_input():
  metric = StreamingMeanIoU(num_classes=3)
  with pytest.raises(ValueError, match='differ in shape'):
    metric.update(np.zeros((2, 2)), np.zeros((2, 3)))
  with pytest.raises(ValueError, match='predicted class ids must be in'):
    metric.update(np.zeros((2, 2)), np.full((2, 2), 3))
