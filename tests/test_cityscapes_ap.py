"""Cityscapes-convention instance AP through cityscapesScripts, on hand-made
ground truth and predictions whose AP is worked out below."""

import os

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data.readers import cityscapes
from pdl_tf.evaluation import cityscapes_ap
from pdl_tf.evaluation.cityscapes_writer import write_cityscapes_results

STEM = 'testcity_000000_000001'
PERSON, CAR, ROAD = 11, 13, 0  # train ids (label ids 24, 26, 7)
DIVISOR, IGNORE = 1000, 255
LABEL_IDS = cityscapes.metadata().category_ids

# Ground truth, 64x128: road everywhere, car 1 and car 2 (20x20 = 400 px),
# a person (15x15 = 225 px) and a tiny car (8x8 = 64 px, under the 100 px
# minimum region: never a false negative), plus an ignored band.
BOXES = {
    'car1': (CAR, 1, (5, 25, 5, 25)),
    'car2': (CAR, 2, (5, 25, 40, 60)),
    'person': (PERSON, 1, (30, 45, 70, 85)),
    'tiny': (CAR, 3, (50, 58, 100, 108)),
}


def _ground_truth():
  panoptic = np.full((64, 128), ROAD * DIVISOR, np.int32)
  panoptic[60:] = IGNORE * DIVISOR
  for cls, instance, (y0, y1, x0, x1) in BOXES.values():
    panoptic[y0:y1, x0:x1] = cls * DIVISOR + instance
  return panoptic


def _evaluate(tmp_path, predictions, ground_truth=None):
  """predictions: [(box name or (y0, y1, x0, x1), train id, score)]."""
  gt_dir, results = tmp_path / 'gt', tmp_path / 'results'
  cityscapes_ap.write_gt_instance_ids(
      STEM, str(gt_dir),
      _ground_truth() if ground_truth is None else ground_truth, LABEL_IDS,
      DIVISOR, IGNORE)
  instance_map = np.zeros((64, 128), np.int32)
  classes, scores = [], []
  for slot, (where, cls, score) in enumerate(predictions):
    y0, y1, x0, x1 = BOXES[where][2] if isinstance(where, str) else where
    instance_map[y0:y1, x0:x1] = slot + 1
    classes.append(cls)
    scores.append(score)
  semantic = np.full((64, 128), ROAD, np.int32)
  write_cityscapes_results(STEM, str(results), semantic, instance_map,
                           classes, scores, LABEL_IDS)
  return cityscapes_ap.cityscapes_instance_ap(str(gt_dir),
                                              str(results / 'instance'))


def test_gt_instance_ids_encoding(tmp_path):
  path = cityscapes_ap.write_gt_instance_ids(
      STEM, str(tmp_path), _ground_truth(), LABEL_IDS, DIVISOR, IGNORE)
  values = np.array(Image.open(path))
  # cityscapesScripts numbers instances from 0: package instances 1, 2
  # are the first and second car, 26000 and 26001.
  assert values[10, 10] == 26000 and values[10, 50] == 26001  # cars
  assert values[35, 75] == 24000  # the person
  assert values[0, 127] == 7 and values[63, 0] == 0  # road, ignored
  # Reading it back with the package's gtFine reader gives the same labels.
  np.testing.assert_array_equal(
      cityscapes.panoptic_from_instance_ids(values, DIVISOR, IGNORE),
      _ground_truth())


def test_perfect_predictions_give_ap_1(tmp_path):
  result = _evaluate(tmp_path, [('car1', CAR, 0.9), ('car2', CAR, 0.8),
                                ('person', PERSON, 0.7)])
  assert result['ap'] == pytest.approx(1.0)
  assert result['ap50'] == pytest.approx(1.0)
  assert result['per_class']['car']['ap'] == pytest.approx(1.0)
  assert result['per_class']['rider']['ap'] is None  # no gt, no prediction


def test_missed_car_halves_car_ap(tmp_path):
  # car: one of two found at precision 1 -> recall 0.5; the script's curve
  # (precision 1 on recall steps of 0.25 + 0.25) gives AP 0.5 at every
  # IoU threshold. person: 1. Mean over the two classes: 0.75.
  result = _evaluate(tmp_path, [('car1', CAR, 0.9), ('person', PERSON, 0.7)])
  assert result['per_class']['car']['ap'] == pytest.approx(0.5)
  assert result['ap'] == pytest.approx(0.75)


def test_first_gtfine_car_counts_as_a_missed_instance(tmp_path):
  # gtFine numbering: the first car is 26000, the second 26001, the person
  # 24000. Read with the package's reader and written back for the
  # evaluation, the first car stays an instance (not a group region), so
  # predicting only the second car and the person misses it: car AP 0.5.
  ids = np.full((64, 128), 7, np.int64)
  ids[60:] = 0
  for name, value in (('car1', 26000), ('car2', 26001), ('person', 24000)):
    y0, y1, x0, x1 = BOXES[name][2]
    ids[y0:y1, x0:x1] = value
  label = cityscapes.panoptic_from_instance_ids(ids, DIVISOR, IGNORE)
  result = _evaluate(tmp_path, [('car2', CAR, 0.8), ('person', PERSON, 0.7)],
                     ground_truth=label)
  assert result['per_class']['car']['ap'] == pytest.approx(0.5)
  assert result['per_class']['person']['ap'] == pytest.approx(1.0)


def test_false_positive_ranked_first_lowers_car_ap_to_5_12(tmp_path):
  # A car predicted on empty road with the highest score. Scores ascending:
  # 0.8 (TP), 0.9 (TP), 0.95 (FP); the thresholds give (precision, recall)
  # (2/3, 1), (1/2, 1/2), (0, 0), plus the script's artificial (1, 0).
  # Step widths, its [-0.5, 0, 0.5] convolution of the recalls padded to
  # [1, 1, 1/2, 0, 0, 0]: 1/4, 1/2, 1/4, 0 -> AP = 2/3 * 1/4 + 1/2 * 1/2
  # = 5/12. A false positive ranked last costs nothing.
  first = _evaluate(tmp_path / 'a', [
      ('car1', CAR, 0.9), ('car2', CAR, 0.8), ((30, 50, 20, 40), CAR, 0.95),
      ('person', PERSON, 0.7)])
  assert first['per_class']['car']['ap'] == pytest.approx(5 / 12)
  assert first['ap'] == pytest.approx((5 / 12 + 1) / 2)
  last = _evaluate(tmp_path / 'b', [
      ('car1', CAR, 0.9), ('car2', CAR, 0.8), ((30, 50, 20, 40), CAR, 0.5),
      ('person', PERSON, 0.7)])
  assert last['per_class']['car']['ap'] == pytest.approx(1.0)


def test_partial_mask_misses_the_highest_iou_threshold(tmp_path):
  # car1 predicted as 19x19 of its 20x20: IoU 361 / 400 = 0.9025, a match at
  # the thresholds 0.5..0.9 (9 of 10). At 0.95 it is a false positive ranked
  # above car2 (0.9 > 0.8): the curve of the FP-first case with one of two
  # cars found, (precision, recall) = (1/2, 1/2), (0, 0), (1, 0), step
  # widths 1/4, 1/4, 0 -> AP 1/8. Car AP = (9 * 1 + 1/8) / 10.
  result = _evaluate(tmp_path, [((5, 24, 5, 24), CAR, 0.9),
                                ('car2', CAR, 0.8), ('person', PERSON, 0.7)])
  assert result['per_class']['car']['ap50'] == pytest.approx(1.0)
  assert result['per_class']['car']['ap'] == pytest.approx(0.9125)


def test_missing_prediction_file_is_a_clear_error(tmp_path):
  gt_dir = tmp_path / 'gt'
  cityscapes_ap.write_gt_instance_ids(STEM, str(gt_dir), _ground_truth(),
                                      LABEL_IDS, DIVISOR, IGNORE)
  os.makedirs(tmp_path / 'empty')
  with pytest.raises(RuntimeError, match='cityscapesScripts stopped'):
    cityscapes_ap.cityscapes_instance_ap(str(gt_dir), str(tmp_path / 'empty'))
  with pytest.raises(FileNotFoundError, match='instanceIds'):
    cityscapes_ap.cityscapes_instance_ap(str(tmp_path / 'empty'),
                                         str(tmp_path / 'empty'))


def test_eval_on_a_cityscapes_tree_reports_cityscapes_ap(tmp_path):
  # pdl-eval's path: a 2-image gtFine tree, a random tiny network, predictions
  # saved; the ground truth written for the evaluation must equal the gtFine
  # files, and the metrics carry the Cityscapes AP.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from helpers import SMALL_DEMO  # pylint: disable=g-import-not-at-top
  from test_cityscapes import write_pair  # pylint: disable=g-import-not-at-top
  from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
  from pdl_tf.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  ids = np.full((64, 128), 7, np.uint16)  # road
  # The first car, the second car and the first person (instances count
  # from 0 in gtFine).
  ids[5:25, 5:25], ids[5:25, 40:60] = 26000, 26001
  ids[30:45, 70:85] = 24000
  stems = ['aachen_000000_000019', 'aachen_000001_000019']
  for stem in stems:
    write_pair(tmp_path, 'val', 'aachen', stem, ids)
  config = config_io.load_config('demo', params_override=(
      f'{SMALL_DEMO},model.num_classes=19,data.dataset=cityscapes,'
      f'data.thing_class_ids=[11,12,13,14,15,16,17,18],'
      f'data.train.path={tmp_path},data.train.split=val,'
      f'data.eval.path={tmp_path},data.eval.split=val,'
      'data.eval.num_examples=0,data.eval.crop_size=[64,128]'))
  trainer = trainer_lib.Trainer(config, str(tmp_path / 'run'),
                                tf.distribute.get_strategy())
  metrics = trainer.evaluate(predictions_dir=str(tmp_path / 'pred'))
  assert 'cityscapes_ap' in metrics and 'cityscapes_ap50' in metrics
  for stem in stems:
    written = np.array(Image.open(
        tmp_path / 'pred' / 'cityscapes' / 'gt' /
        f'{stem}_gtFine_instanceIds.png'))
    np.testing.assert_array_equal(written, ids)
