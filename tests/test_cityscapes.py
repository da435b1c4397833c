"""Cityscapes id mapping on hand-made instanceIds maps, and the reader."""

import json

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data.readers import cityscapes
from pdl_tf.labels.panoptic_format import read_id_map


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


def test_first_instance_is_an_instance_and_only_a_bare_label_id_is_crowd():
  # cityscapesScripts numbers instances from 0: 26000 is the first car,
  # 26001 the second; only the bare label id 26 (< 1000) is a crowd group.
  np.testing.assert_array_equal(
      cityscapes.panoptic_from_instance_ids([[7, 26000, 26000],
                                             [26001, 26001, 26]]),
      [[0, 13001, 13001], [13002, 13002, 13000]])


def test_hand_made_instance_ids_map():
  # Row 0: road (7), sidewalk (8), car 26001, car 26002 (the second and
  #        third cars: instance k -> k + 1 in the package encoding).
  # Row 1: person crowd stored as plain 24, rider 25000 (its first instance),
  #        unlabeled (0), caravan 29001 (not trained -> ignore).
  # Row 2: bus 28003, sky (23), license plate (-1 is stored as 0 here),
  #        bicycle 33010.
  ids = np.array([[7, 8, 26001, 26002],
                  [24, 25000, 0, 29001],
                  [28003, 23, 0, 33010]])
  want = np.array([[0, 1000, 13002, 13003],
                   [11000, 12001, 255000, 255000],
                   [15004, 10000, 255000, 18011]])
  np.testing.assert_array_equal(cityscapes.panoptic_from_instance_ids(ids),
                                want)


def test_instances_past_the_label_divisor_are_an_error():
  # With label_divisor 4, instances 0..2 of a class (26000..26002) fit as
  # 1..3; 26003 would be 13 * 4 + 4 = 14 * 4, the next class (truck).
  fits = cityscapes.panoptic_from_instance_ids([[26000, 26001, 26002]], 4)
  np.testing.assert_array_equal(fits, [[53, 54, 55]])
  with pytest.raises(ValueError, match="f.png: class 13 \\('car'\\) has 4 "
                     'instances, ids up to 26003.*label_divisor 4 allows '
                     'instances 1..3'):
    cityscapes.panoptic_from_instance_ids([[26000, 26001, 26002, 26003]], 4,
                                          where='f.png')
  with pytest.raises(ValueError, match='class 11 .*up to 24999'):
    cityscapes.panoptic_from_instance_ids([[24999, 26000]])  # 1000 > 999


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
  ids = np.array([[7, 26000], [26001, 24]])
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
  with pytest.raises(FileNotFoundError, match="no Cityscapes leftImg8bit "
                     "folder for split 'train'"):
    cityscapes.read_cityscapes(str(tmp_path), 'train')
  (tmp_path / 'leftImg8bit' / 'train').mkdir()
  with pytest.raises(FileNotFoundError, match="no Cityscapes gtFine folder"):
    cityscapes.read_cityscapes(str(tmp_path), 'train')
  (tmp_path / 'gtFine' / 'train').mkdir()
  with pytest.raises(FileNotFoundError, match="no Cityscapes images for "
                     "split 'train': nothing matches"):
    cityscapes.read_cityscapes(str(tmp_path), 'train')


def test_reader_names_the_file_of_too_many_instances(tmp_path):
  write_pair(tmp_path, 'val', 'aachen', 'aachen_000000_000019',
             np.array([[7, 26000], [26001, 26002]]))
  with pytest.raises(ValueError, match='aachen_000000_000019_gtFine_instance'
                     "Ids.png: class 13 \\('car'\\) has 3 instances"):
    list(cityscapes.read_cityscapes(str(tmp_path), 'val', label_divisor=3)[1])


def test_reader_agrees_with_cityscapes_scripts_panoptic_converter(tmp_path):
  """cityscapesScripts' own createPanopticImgs (crowd exactly when the id is
  < 1000), read back with the COCO-format reader, gives the same labels as
  the gtFine reader: cars 26000/26001, a car group 26, persons 24000/24001,
  a rider 25000 beside the person group 24, a caravan 29000 (not trained)."""
  from cityscapesscripts.preparation import createPanopticImgs  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.readers import coco_panoptic  # pylint: disable=g-import-not-at-top
  ids = np.full((6, 8), 7)
  ids[0, :3], ids[1, :3], ids[2, :2] = 26000, 26001, 26
  ids[3, :2], ids[3, 2:4], ids[4, :3] = 24000, 24001, 24
  ids[5, :2], ids[5, 2:4], ids[0, 6:], ids[1, 6:] = 25000, 29000, 23, 0
  stem = 'aachen_000000_000019'
  write_pair(tmp_path, 'val', 'aachen', stem, ids)
  createPanopticImgs.convert2panoptic(str(tmp_path / 'gtFine'),
                                      str(tmp_path), useTrainId=True,
                                      setNames=['val'])
  converted = json.loads(
      (tmp_path / 'cityscapes_panoptic_val_trainId.json').read_text())
  annotation, = converted['annotations']
  png = tmp_path / 'cityscapes_panoptic_val_trainId' / annotation['file_name']
  meta = coco_panoptic.metadata_from_categories(converted['categories'])
  assert meta.class_names == cityscapes.metadata().class_names
  expected = coco_panoptic.label_from_segments(
      read_id_map(str(png)), annotation['segments_info'], meta, str(png))
  _, ours = cityscapes.read_cityscapes(str(tmp_path), 'val')
  np.testing.assert_array_equal(next(iter(ours)).panoptic, expected)
  assert expected[0, 0] == 13001 and expected[1, 0] == 13002  # two cars
  assert expected[2, 0] == 13000 and expected[4, 0] == 11000  # groups
  assert expected[5, 0] == 12001 and expected[5, 2] == 255000


def test_gt_writer_inverts_the_reader_for_cityscapes_evaluation(tmp_path):
  """The instanceIds PNG written for the Cityscapes AP is the original for
  trained labels, and cityscapesScripts' evaluation sees the same instances
  (instID >= 1000) and groups."""
  from cityscapesscripts.evaluation.instances2dict import instances2dict  # pylint: disable=g-import-not-at-top
  from pdl_tf.evaluation import cityscapes_ap  # pylint: disable=g-import-not-at-top
  ids = np.array([[7, 26000, 26000, 24], [26001, 26001, 26, 24000]])
  label = cityscapes.panoptic_from_instance_ids(ids)
  path = cityscapes_ap.write_gt_instance_ids(
      'aachen_000000_000019', str(tmp_path), label,
      cityscapes.metadata().category_ids, 1000, 255)
  with Image.open(path) as written:
    np.testing.assert_array_equal(np.asarray(written), ids)
  original = tmp_path / 'original.png'
  Image.fromarray(ids.astype(np.uint16)).save(original)
  seen = instances2dict([path, str(original)])
  assert seen[path] == seen[str(original)]
  cars = sorted(i['instID'] for i in seen[path]['car'])
  assert cars == [26, 26000, 26001]
