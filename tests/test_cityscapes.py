"""Cityscapes id mapping on hand-made instanceIds maps, and the reader."""

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data import cityscapes


def test_train_id_table_matches_cityscapes_scripts():
  table = cityscapes.train_id_table()
  # label id -> train id, from cityscapesScripts' labels.py.
  expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8,
              22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16,
              32: 17, 33: 18}
  for label_id in range(34):
    assert table[label_id] == expected.get(label_id, 255), label_id
  meta = cityscapes.metadata()
  assert meta.num_classes == 19
  assert meta.thing_class_ids == list(range(11, 19))
  assert meta.class_names[13] == 'car' and meta.category_ids[13] == 26


def test_hand_made_instance_ids_map():
  # Row 0: road (7), sidewalk (8), car 26001, car 26002.
  # Row 1: person crowd stored as plain 24, rider 25000 (instance 0 -> crowd),
  #        unlabeled (0), caravan 29001 (not trained -> ignore).
  # Row 2: bus 28003, sky (23), license plate (-1 is stored as 0 here),
  #        bicycle 33010.
  ids = np.array([[7, 8, 26001, 26002],
                  [24, 25000, 0, 29001],
                  [28003, 23, 0, 33010]])
  want = np.array([[0, 1000, 13001, 13002],
                   [11000, 12000, 255000, 255000],
                   [15003, 10000, 255000, 18010]])
  np.testing.assert_array_equal(cityscapes.panoptic_from_instance_ids(ids),
                                want)


def test_unknown_label_id_is_an_error():
  with pytest.raises(ValueError, match='unknown Cityscapes label ids \\[40\\]'):
    cityscapes.panoptic_from_instance_ids(np.array([[40, 7]]))


def write_pair(root, split, city, stem, ids, size=None):
  image_dir = root / 'leftImg8bit' / split / city
  label_dir = root / 'gtFine' / split / city
  image_dir.mkdir(parents=True, exist_ok=True)
  label_dir.mkdir(parents=True, exist_ok=True)
  height, width = size or ids.shape
  Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(
      image_dir / f'{stem}_leftImg8bit.png')
  Image.fromarray(ids.astype(np.uint16)).save(  # 16-bit, as gtFine
      label_dir / f'{stem}_gtFine_instanceIds.png')


def test_reader_on_a_tiny_tree(tmp_path):
  ids = np.array([[7, 26001], [26002, 24]])
  write_pair(tmp_path, 'val', 'aachen', 'aachen_000000_000019', ids)
  meta, examples = cityscapes.read_cityscapes(str(tmp_path), 'val')
  examples = list(examples)
  assert len(examples) == 1 and meta.num_classes == 19
  np.testing.assert_array_equal(examples[0].panoptic,
                                [[0, 13001], [13002, 11000]])
  write_pair(tmp_path, 'val', 'bonn', 'bonn_000000_000019', ids, size=(3, 2))
  with pytest.raises(ValueError, match='bonn_000000_000019_gtFine_instanceIds'
                     '.png is 2x2 but .* is 2x3'):
    list(cityscapes.read_cityscapes(str(tmp_path), 'val')[1])
  with pytest.raises(ValueError, match='no Cityscapes images match'):
    cityscapes.read_cityscapes(str(tmp_path), 'train')
