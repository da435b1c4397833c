"""Mask AP on hand-made 16x16 scenes, and against pycocotools' own COCOeval
(the oracle of the COCOeval the package runs, hotcoco's) on seeded scenes."""

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


def seeded_scenes(metric, seed=0, images=30, size=48):
  """Random rectangles: 1-6 instances of classes 1-3 per image (some
  overlapping, painted in order), a crowd region now and then; predictions
  are the instances shifted by up to 1 px (some with another class), plus
  false positives, with random scores."""
  rng = np.random.default_rng(seed)
  for _ in range(images):
    gt = np.zeros((size, size), np.int32)
    instance_map = np.zeros((size, size), np.int32)
    classes, scores = [], []
    counts = {}
    for _ in range(rng.integers(1, 7)):
      cls = int(rng.integers(1, 4))
      y, x = rng.integers(0, size - 8, 2)
      h, w = rng.integers(4, 20, 2)
      crowd = rng.random() < 0.15
      counts[cls] = counts.get(cls, 0) + (not crowd)
      gt[y:y + h, x:x + w] = cls * 1000 + (0 if crowd else counts[cls])
      if crowd or rng.random() < 0.2:
        continue
      dy, dx = rng.integers(-1, 2, 2)
      slot = len(classes) + 1
      instance_map[max(y + dy, 0):y + dy + h, max(x + dx, 0):x + dx + w] = slot
      classes.append(cls if rng.random() < 0.85 else int(rng.integers(1, 4)))
      scores.append(float(rng.random()))
    for _ in range(rng.integers(0, 3)):  # false positives
      y, x = rng.integers(0, size - 6, 2)
      instance_map[y:y + 6, x:x + 6] = len(classes) + 1
      classes.append(int(rng.integers(1, 4)))
      scores.append(float(rng.random()))
    metric.update(gt, instance_map, np.array(classes + [-1]),
                  np.array(scores + [0.0], np.float32))


def pycocotools_stats(metric):
  """COCOeval of pycocotools on the metric's own ground truth and
  detections: the oracle."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from pycocotools import coco, cocoeval  # pylint: disable=g-import-not-at-top
  ground_truth = coco.COCO()
  ground_truth.dataset = {
      'images': metric._images, 'annotations': metric._gt,  # pylint: disable=protected-access
      'categories': [{'id': c} for c in metric._things]}  # pylint: disable=protected-access
  with contextlib.redirect_stdout(io.StringIO()):
    ground_truth.createIndex()
    evaluator = cocoeval.COCOeval(
        ground_truth, ground_truth.loadRes(metric._dt), 'segm')  # pylint: disable=protected-access
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return [float(s) for s in evaluator.stats[:3]]


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_equals_pycocotools_cocoeval_on_seeded_scenes(seed):
  metric = StreamingMaskAP(thing_class_ids=[1, 2, 3])
  seeded_scenes(metric, seed)
  result = metric.result()
  expected = pycocotools_stats(metric)
  assert 0.05 < expected[0] < 0.95  # neither trivial nor empty
  assert [result['ap'], result['ap50'], result['ap75']] == expected


def test_a_detection_of_a_class_without_ground_truth_category_is_dropped(
    capfd):
  # COCOeval never matches a detection of a category outside the ground
  # truth's (pycocotools ignores it; hotcoco would warn on stderr).
  slots = ((np.s_[:8], np.s_[:8], 1, 0.9), (np.s_[8:], np.s_[8:], 2, 0.8))
  metric = StreamingMaskAP(thing_class_ids=[1, 2])
  instance_map, classes, scores = instances(*slots,
                                            (np.s_[8:], np.s_[:4], 7, 0.95))
  metric.update(GT, instance_map, classes, scores)
  assert metric.result() == ap_of(*slots)
  assert 'hotcoco' not in capfd.readouterr().err
