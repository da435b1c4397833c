"""COCO panoptic reader on the two real COCO val2017 images, and bad input."""

import copy
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import COCO_SAMPLE
from helpers import require_coco_sample
from pdl_tf.data.readers.coco_panoptic import read_coco_panoptic
from pdl_tf.labels.panoptic_format import read_id_map

SAMPLE = COCO_SAMPLE


@pytest.fixture()
def sample_copy(tmp_path):
  """A writable copy of the sample: (json path, images, pngs, parsed JSON)."""
  require_coco_sample()
  root = tmp_path / 'coco'
  shutil.copytree(SAMPLE, root)
  data = json.loads((root / 'panoptic_examples.json').read_text())
  return (root / 'panoptic_examples.json', root / 'input_images',
          root / 'panoptic_examples', data)


def read_all(json_file, images, pngs):
  meta, examples = read_coco_panoptic(str(json_file), str(images), str(pngs))
  return meta, list(examples)


def test_sample_loads_with_all_segments_and_classes(sample_copy):
  json_file, images, pngs, data = sample_copy
  meta, examples = read_all(json_file, images, pngs)
  assert meta.num_classes == 133 and len(meta.thing_class_ids) == 80
  assert [e.image.shape for e in examples] == [(427, 640, 3), (360, 640, 3)]
  for example, annotation in zip(examples, data['annotations']):
    assert example.image.dtype == np.uint8
    assert example.panoptic.dtype == np.int32
    ids = read_id_map(str(pngs / annotation['file_name']))
    segments = annotation['segments_info']
    values = set(np.unique(example.panoptic).tolist()) - {255 * 1000}
    assert len(values) == len(segments)  # 18 and 32 distinct segments
    for info in segments:
      mask = ids == info['id']
      value = np.unique(example.panoptic[mask])
      assert len(value) == 1
      cls, instance = divmod(int(value[0]), 1000)
      assert meta.category_ids[cls] == info['category_id']
      if not meta.is_thing[cls] or info['iscrowd']:
        assert instance == 0
      else:
        assert instance >= 1
    assert (example.panoptic[ids == 0] == 255 * 1000).all()  # void
  assert [len(a['segments_info']) for a in data['annotations']] == [18, 32]


def rewrite(json_file, data):
  json_file.write_text(json.dumps(data))


def test_corrupt_and_truncated_files_name_the_file(sample_copy):
  json_file, images, pngs, data = sample_copy
  image = images / '000000142238.jpg'
  image.write_bytes(b'not a jpeg')
  with pytest.raises(ValueError, match='000000142238.jpg.*cannot be read'):
    read_all(json_file, images, pngs)
  shutil.copy(SAMPLE / 'input_images' / '000000142238.jpg', image)
  png = pngs / '000000439180.png'
  png.write_bytes(png.read_bytes()[:200])
  with pytest.raises(ValueError, match='000000439180.png.*cannot be read'):
    read_all(json_file, images, pngs)


def test_size_mismatch_names_both_files(sample_copy):
  json_file, images, pngs, _ = sample_copy
  image = Image.open(images / '000000142238.jpg')
  image.resize((320, 200)).save(images / '000000142238.jpg')
  with pytest.raises(ValueError, match='000000142238.png is 640x427 but its '
                     'image .*000000142238.jpg is 320x200'):
    read_all(json_file, images, pngs)


def test_json_png_disagreements_and_unknown_category(sample_copy):
  json_file, images, pngs, data = sample_copy
  broken = copy.deepcopy(data)
  dropped = broken['annotations'][0]['segments_info'].pop(3)
  rewrite(json_file, broken)
  with pytest.raises(ValueError, match=f"000000142238.png: segment ids "
                     f"\\[{dropped['id']}\\] are in the PNG but not in"):
    read_all(json_file, images, pngs)
  broken = copy.deepcopy(data)
  broken['annotations'][1]['segments_info'].append(
      {'id': 7, 'category_id': 1, 'iscrowd': 0})
  rewrite(json_file, broken)
  with pytest.raises(ValueError, match='000000439180.png: segment ids \\[7\\] '
                     'are in the JSON segments_info but not in the PNG'):
    read_all(json_file, images, pngs)
  broken = copy.deepcopy(data)
  broken['annotations'][0]['segments_info'][0]['category_id'] = 9999
  rewrite(json_file, broken)
  with pytest.raises(ValueError, match='000000142238.png: segment .* unknown '
                     'category_id 9999'):
    read_all(json_file, images, pngs)


def test_empty_or_missing_inputs(sample_copy, tmp_path):
  json_file, images, pngs, data = sample_copy
  rewrite(json_file, dict(data, annotations=[]))
  with pytest.raises(ValueError, match='no annotations'):
    read_all(json_file, images, pngs)
  with pytest.raises(FileNotFoundError, match='nope.json'):
    read_all(tmp_path / 'nope.json', images, pngs)
  rewrite(json_file, data)
  with pytest.raises(FileNotFoundError, match='000000142238.jpg'):
    read_all(json_file, tmp_path, pngs)


def test_a_json_without_the_coco_panoptic_keys_names_the_file(sample_copy):
  json_file, images, pngs, data = sample_copy
  no_segments = copy.deepcopy(data)
  del no_segments['annotations'][1]['segments_info']
  no_isthing = copy.deepcopy(data)
  del no_isthing['categories'][0]['isthing']
  for broken, reason in (
      ({k: v for k, v in data.items() if k != 'categories'},
       "an entry lacks the key 'categories'"),
      (no_segments, "an entry lacks the key 'segments_info'"),
      (no_isthing, "an entry lacks the key 'isthing'"),
      (dict(data, annotations={'a': 1}), 'string indices must be integers'),
      (dict(data, images=5), "'int' object is not iterable")):
    rewrite(json_file, broken)
    with pytest.raises(ValueError) as error:
      read_all(json_file, images, pngs)
    assert str(error.value).startswith(
        f'{json_file} is not a COCO panoptic JSON: '), error.value
    assert reason in str(error.value), error.value


def test_more_instances_than_the_label_divisor_allows_is_an_error():
  # Two persons with label_divisor 2: the second would be 0 * 2 + 2 = 2,
  # i.e. class 1 instance 0 (a crowd region of class 1). The reader stops,
  # naming the file, the class and the count; with divisor 3 both fit.
  from pdl_tf.data.readers import coco_panoptic  # pylint: disable=g-import-not-at-top
  categories = [{'id': 1, 'name': 'person', 'isthing': 1},
                {'id': 2, 'name': 'road', 'isthing': 0}]
  ids = np.array([[1, 1, 2, 3]])
  segments = [{'id': 1, 'category_id': 1}, {'id': 2, 'category_id': 1},
              {'id': 3, 'category_id': 2}]
  meta = coco_panoptic.metadata_from_categories(categories, label_divisor=2)
  with pytest.raises(ValueError, match="a.png: 2 instances of class 0 "
                     "\\('person'\\), but label_divisor 2 allows at most 1"):
    coco_panoptic.label_from_segments(ids, segments, meta, 'a.png')
  meta = coco_panoptic.metadata_from_categories(categories, label_divisor=3)
  np.testing.assert_array_equal(
      coco_panoptic.label_from_segments(ids, segments, meta, 'a.png'),
      [[1, 1, 2, 3]])
