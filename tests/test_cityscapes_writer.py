"""Cityscapes result files on a hand-made 4x6 prediction."""

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data.readers import cityscapes
from pdl_tf.evaluation.cityscapes_writer import write_cityscapes_results

LABEL_IDS = cityscapes.metadata().category_ids  # train id -> label id


def test_files_hold_label_ids_masks_and_scores(tmp_path):
  # Train ids: road (0, label 7) on top, car (13, label 26) bottom-left,
  # person (11, label 24) bottom-right. Slot 0: the car, slot 1: empty,
  # slot 2: the person.
  semantic = np.array([[0] * 6, [0] * 6, [13, 13, 13, 11, 11, 11],
                       [13, 13, 13, 11, 11, 11]])
  instance_map = np.zeros((4, 6), np.int32)
  instance_map[2:, :3] = 1
  instance_map[2:, 3:] = 3
  count = write_cityscapes_results(
      'city_000000_000001', str(tmp_path), semantic, instance_map,
      [13, -1, 11], [0.9, 0.0, 0.25], LABEL_IDS)
  assert count == 2
  label = np.asarray(Image.open(tmp_path / 'semantic' /
                                'city_000000_000001.png'))
  assert label[0].tolist() == [7] * 6 and label[2].tolist() == [26] * 3 + [24] * 3
  lines = (tmp_path / 'instance' /
           'city_000000_000001_pred.txt').read_text().splitlines()
  assert lines == ['masks/city_000000_000001_0.png 26 0.900000',
                   'masks/city_000000_000001_1.png 24 0.250000']
  car = np.asarray(Image.open(tmp_path / 'instance' / lines[0].split()[0]))
  assert car.dtype == np.uint8 and (car == 255).sum() == 6
  assert (car[2:, :3] == 255).all()


def test_an_unknown_train_id_is_an_error(tmp_path):
  with pytest.raises(ValueError, match='semantic train ids 0..19'):
    write_cityscapes_results('x', str(tmp_path), np.array([[0, 19]]),
                             np.zeros((1, 2)), [], [], LABEL_IDS)
