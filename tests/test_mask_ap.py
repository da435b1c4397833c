"""Mask AP through pycocotools on hand-made 16x16 scenes."""

import numpy as np
import pytest

from pdl_tf.evaluation.mask_ap import StreamingMaskAP

# Classes: 0 stuff; 1 and 2 things. Two ground-truth instances:
# class 1 (id 1) in rows 0-7, cols 0-7; class 2 (id 1) in rows 8-15, cols
# 8-15; a class-1 crowd region in rows 0-3, cols 12-15; stuff elsewhere.
GT = np.zeros((16, 16), np.int32)
GT[:8, :8] = 1001
GT[8:, 8:] = 2001
GT[:4, 12:] = 1000


def instances(*slots):
  """(instance map, classes, scores) from (rows, cols, class, score)."""
  instance_map = np.zeros((16, 16), np.int32)
  classes, scores = np.full(4, -1), np.zeros(4, np.float32)
  for k, (rows, cols, cls, score) in enumerate(slots):
    instance_map[rows, cols] = k + 1
    classes[k], scores[k] = cls, score
  return instance_map, classes, scores


def ap_of(*slots):
  metric = StreamingMaskAP(thing_class_ids=[1, 2])
  metric.update(GT, *instances(*slots))
  return metric.result()


def test_perfect_instances_give_ap_1():
  result = ap_of((np.s_[:8], np.s_[:8], 1, 0.9),
                 (np.s_[8:], np.s_[8:], 2, 0.8))
  assert result == pytest.approx({'ap': 1.0, 'ap50': 1.0, 'ap75': 1.0})


def test_a_prediction_on_crowd_is_not_a_false_positive():
  result = ap_of((np.s_[:8], np.s_[:8], 1, 0.9),
                 (np.s_[8:], np.s_[8:], 2, 0.8),
                 (np.s_[:4], np.s_[12:], 1, 0.95))
  assert result['ap'] == pytest.approx(1.0)


def test_a_miss_and_a_false_positive_halve_ap():
  # Class 1: its instance found, no false positive -> AP 1. Class 2: its
  # instance missed, one false positive (a class-2 mask on stuff, rows 8-15,
  # cols 0-7) -> AP 0. Mean over the two classes: 0.5 at every IoU.
  result = ap_of((np.s_[:8], np.s_[:8], 1, 0.9),
                 (np.s_[8:], np.s_[:8], 2, 0.8))
  assert result == pytest.approx({'ap': 0.5, 'ap50': 0.5, 'ap75': 0.5})


def test_iou_between_thresholds():
  # Class 1 predicted on rows 0-7, cols 0-5: IoU 48/64 = 0.75 -> a match at
  # IoU thresholds 0.50..0.75 (6 of the 10), AP 0.6 for class 1; class 2
  # perfect (AP 1). AP = mean(0.6, 1.0) = 0.8; AP50 = AP75 = 1.
  result = ap_of((np.s_[:8], np.s_[:6], 1, 0.9),
                 (np.s_[8:], np.s_[8:], 2, 0.8))
  assert result == pytest.approx({'ap': 0.8, 'ap50': 1.0, 'ap75': 1.0})


def test_no_predictions_and_no_ground_truth():
  assert ap_of() == {'ap': 0.0, 'ap50': 0.0, 'ap75': 0.0}
  metric = StreamingMaskAP(thing_class_ids=[1])
  metric.update(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32),
                [-1], [0.0])
  assert metric.result() == {'ap': None, 'ap50': None, 'ap75': None}
  with pytest.raises(ValueError, match='differ in shape'):
    metric.update(np.zeros((4, 4)), np.zeros((4, 5)), [-1], [0.0])
