"""PQ on the real COCO sample: identity, hand-derived perturbations, and the
streaming metric agreeing with pq_compute on the same data."""

import copy
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import COCO_SAMPLE
from helpers import require_coco_sample
from pdl_tf.evaluation import StreamingPanopticQuality
from pdl_tf.evaluation import pq_compute
from pdl_tf.labels.panoptic_format import id_map_to_rgb
from pdl_tf.labels.panoptic_format import read_id_map

SAMPLE = COCO_SAMPLE
IMAGE = '000000142238.png'  # 18 segments, one crowd


@pytest.fixture(scope='module')
def sample():
  require_coco_sample()
  gt = json.loads((SAMPLE / 'panoptic_examples.json').read_text())
  maps = {a['file_name']: read_id_map(str(SAMPLE / 'panoptic_examples' /
                                          a['file_name']))
          for a in gt['annotations']}
  return gt, maps


def write_prediction(tmp_path, gt, maps):
  """Writes id maps as COCO panoptic PNGs + JSON; returns pq_compute args."""
  folder = tmp_path / 'pred'
  folder.mkdir()
  for name, ids in maps.items():
    Image.fromarray(id_map_to_rgb(ids)).save(folder / name)
  path = tmp_path / 'pred.json'
  path.write_text(json.dumps({'annotations': gt['annotations']}))
  return (str(SAMPLE / 'panoptic_examples.json'), str(path),
          str(SAMPLE / 'panoptic_examples'), str(folder))


def segments(gt, name):
  return next(a for a in gt['annotations']
              if a['file_name'] == name)['segments_info']


def counted_categories(gt):
  """Categories with at least one non-crowd ground-truth segment."""
  return {s['category_id'] for a in gt['annotations']
          for s in a['segments_info'] if not s['iscrowd']}


def non_crowd_count(gt, category):
  return sum(1 for a in gt['annotations'] for s in a['segments_info']
             if s['category_id'] == category and not s['iscrowd'])


def unused_thing_category(gt):
  used = {s['category_id'] for a in gt['annotations']
          for s in a['segments_info']}
  return next(c['id'] for c in gt['categories']
              if c['isthing'] and c['id'] not in used)


def test_sample_loads_with_expected_segments(sample):
  gt, maps = sample
  counts = {a['file_name']: len(a['segments_info'])
            for a in gt['annotations']}
  assert counts == {'000000142238.png': 18, '000000439180.png': 32}
  for annotation in gt['annotations']:
    ids = set(np.unique(maps[annotation['file_name']]).tolist()) - {0}
    assert ids == {s['id'] for s in annotation['segments_info']}
    for s in annotation['segments_info']:  # JSON areas are pixel counts
      assert (maps[annotation['file_name']] == s['id']).sum() == s['area']


def test_ground_truth_against_itself_is_perfect(sample, tmp_path):
  gt, maps = sample
  result = pq_compute(*write_prediction(tmp_path, gt, maps), num_workers=2)
  n = len(counted_categories(gt))
  assert result['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': n}
  assert result['Things']['n'] + result['Stuff']['n'] == n


def test_removed_segment(sample, tmp_path):
  # Removing a non-crowd segment of category c (m non-crowd segments in all)
  # turns it into a false negative: PQ_c = (m - 1) / (m - 1 + 1/2), the other
  # n - 1 categories stay 1, so PQ_All = (n - 1 + PQ_c) / n.
  gt, maps = sample
  target = next(s for s in segments(gt, IMAGE) if not s['iscrowd'])
  pred_gt, pred_maps = copy.deepcopy(gt), copy.deepcopy(maps)
  pred_maps[IMAGE][pred_maps[IMAGE] == target['id']] = 0
  infos = segments(pred_gt, IMAGE)
  infos.remove(next(s for s in infos if s['id'] == target['id']))
  result = pq_compute(*write_prediction(tmp_path, pred_gt, pred_maps), 1)
  m = non_crowd_count(gt, target['category_id'])
  n = len(counted_categories(gt))
  pq_c = (m - 1) / (m - 1 + 0.5)
  assert result['per_class'][target['category_id']]['pq'] == pytest.approx(
      pq_c, abs=1e-12)
  assert result['All']['pq'] == pytest.approx((n - 1 + pq_c) / n, abs=1e-12)
  assert result['All']['n'] == n


def test_merged_pair(sample, tmp_path):
  # Two segments A (area a) > B (area b) of one thing category merged into A:
  # IoU(A, A+B) = a / (a + b) > 0.5 is a match, B is a false negative.
  # PQ_c = (m - 2 + a / (a + b)) / (m - 1 + 1/2) with m segments of c.
  gt, maps = sample
  by_category = {}
  for s in segments(gt, IMAGE):
    if not s['iscrowd']:
      by_category.setdefault(s['category_id'], []).append(s)
  pair = next(sorted(v, key=lambda s: -s['area'])[:2]
              for v in by_category.values() if len(v) >= 2)
  big, small = pair
  assert big['area'] > small['area']
  pred_gt, pred_maps = copy.deepcopy(gt), copy.deepcopy(maps)
  pred_maps[IMAGE][pred_maps[IMAGE] == small['id']] = big['id']
  infos = segments(pred_gt, IMAGE)
  infos.remove(next(s for s in infos if s['id'] == small['id']))
  result = pq_compute(*write_prediction(tmp_path, pred_gt, pred_maps), 1)
  m = non_crowd_count(gt, big['category_id'])
  iou = big['area'] / (big['area'] + small['area'])
  expected = (m - 2 + iou) / (m - 1 + 0.5)
  assert result['per_class'][big['category_id']]['pq'] == pytest.approx(
      expected, abs=1e-12)
  assert result['per_class'][big['category_id']]['sq'] == pytest.approx(
      (m - 2 + iou) / (m - 1), abs=1e-12)


def test_wrong_class(sample, tmp_path):
  # A segment predicted as an unused thing category c': its true category c
  # gets a false negative (PQ_c = (m-1)/(m-1/2)), c' a false positive
  # (PQ_c' = 0) and is counted, so PQ_All = (n - 1 + PQ_c) / (n + 1).
  gt, maps = sample
  target = next(s for s in segments(gt, IMAGE) if not s['iscrowd'])
  wrong = unused_thing_category(gt)
  pred_gt = copy.deepcopy(gt)
  next(s for s in segments(pred_gt, IMAGE)
       if s['id'] == target['id'])['category_id'] = wrong
  result = pq_compute(*write_prediction(tmp_path, pred_gt, maps), 1)
  m = non_crowd_count(gt, target['category_id'])
  n = len(counted_categories(gt))
  pq_c = (m - 1) / (m - 0.5)
  assert result['per_class'][wrong] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
  assert result['All']['pq'] == pytest.approx((n - 1 + pq_c) / (n + 1),
                                              abs=1e-12)
  assert result['All']['n'] == n + 1


def test_prediction_on_crowd(sample, tmp_path):
  # The crowd region predicted as its own category: unmatched (crowd is never
  # matched) but more than half on same-class crowd, so not a false positive:
  # PQ stays 1. Predicted as another category c': a false positive for c'.
  gt, maps = sample
  crowd = next(s for s in segments(gt, IMAGE) if s['iscrowd'])
  same = pq_compute(*write_prediction(tmp_path, gt, maps), 1)
  assert same['All']['pq'] == 1.0
  other = unused_thing_category(gt)
  pred_gt = copy.deepcopy(gt)
  next(s for s in segments(pred_gt, IMAGE)
       if s['id'] == crowd['id'])['category_id'] = other
  (tmp_path / 'b').mkdir()
  result = pq_compute(*write_prediction(tmp_path / 'b', pred_gt, maps), 1)
  n = len(counted_categories(gt))
  assert result['per_class'][other]['pq'] == 0.0
  assert result['All']['pq'] == pytest.approx(n / (n + 1), abs=1e-12)


def test_prediction_on_void(sample, tmp_path):
  # A predicted segment covering exactly the ground-truth void pixels is
  # ignored (all of it is on void): PQ stays 1 and no category is added.
  gt, maps = sample
  void = maps[IMAGE] == 0
  assert void.sum() > 0
  pred_gt, pred_maps = copy.deepcopy(gt), copy.deepcopy(maps)
  new_id = int(maps[IMAGE].max()) + 1
  pred_maps[IMAGE][void] = new_id
  segments(pred_gt, IMAGE).append(
      {'id': new_id, 'category_id': unused_thing_category(gt), 'iscrowd': 0,
       'area': int(void.sum()), 'bbox': [0, 0, 1, 1]})
  result = pq_compute(*write_prediction(tmp_path, pred_gt, pred_maps), 1)
  n = len(counted_categories(gt))
  assert result['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': n}


def test_json_png_disagreement_names_file_and_segment(sample, tmp_path):
  gt, maps = sample
  pred_gt = copy.deepcopy(gt)
  dropped = segments(pred_gt, IMAGE).pop(0)
  with pytest.raises(ValueError, match=f"{IMAGE}.*{dropped['id']}.*in the "
                     'PNG but not in the JSON'):
    pq_compute(*write_prediction(tmp_path, pred_gt, maps), 1)
  pred_gt = copy.deepcopy(gt)
  segments(pred_gt, IMAGE).append({'id': 99, 'category_id': 1, 'iscrowd': 0})
  shutil.rmtree(tmp_path / 'pred')
  with pytest.raises(ValueError, match=f'{IMAGE}.*\\[99\\].*not in the PNG'):
    pq_compute(*write_prediction(tmp_path, pred_gt, maps), 1)


# ------------------------------------------------------------ streaming ---
def to_label_maps(gt, maps, void_value):
  """COCO id maps -> class * 1000 + instance maps (class = index of the
  category in gt['categories'], crowd = instance 0, void = void_value)."""
  index = {c['id']: i for i, c in enumerate(gt['categories'])}
  result = []
  for annotation in gt['annotations']:
    ids = maps[annotation['file_name']]
    label = np.full(ids.shape, void_value, np.int64)
    next_instance = {}
    for s in annotation['segments_info']:
      cls = index[s['category_id']]
      instance = 0
      if gt['categories'][cls]['isthing'] and not s['iscrowd']:
        instance = next_instance[cls] = next_instance.get(cls, 0) + 1
      label[ids == s['id']] = cls * 1000 + instance
    result.append(label)
  return result


def test_streaming_metric_matches_pq_compute(sample, tmp_path):
  gt, maps = sample
  target = next(s for s in segments(gt, IMAGE) if not s['iscrowd'])
  pred_gt = copy.deepcopy(gt)
  next(s for s in segments(pred_gt, IMAGE)
       if s['id'] == target['id'])['category_id'] = unused_thing_category(gt)
  expected = pq_compute(*write_prediction(tmp_path, pred_gt, maps), 1)
  things = [i for i, c in enumerate(gt['categories']) if c['isthing']]
  metric = StreamingPanopticQuality(len(gt['categories']), things,
                                    label_divisor=1000, ignore_label=255)
  for gt_map, pred_map in zip(to_label_maps(gt, maps, 255 * 1000),
                              to_label_maps(pred_gt, maps, -1)):
    metric.update(gt_map, pred_map)
  result = metric.result()
  for split in ('All', 'Things', 'Stuff'):
    for key in ('pq', 'sq', 'rq', 'n'):
      assert result[split][key] == pytest.approx(expected[split][key],
                                                 abs=1e-12), (split, key)
  for i, category in enumerate(gt['categories']):
    assert result['per_class'][i] == pytest.approx(
        expected['per_class'][category['id']], abs=1e-12)


def test_writer_round_trip_scores_perfectly(sample, tmp_path):
  # Label maps of the ground truth (crowd as instance 0, void as -1) written
  # by the COCO writer score PQ 1 against the ground truth.
  from pdl_tf.evaluation import writers  # pylint: disable=g-import-not-at-top
  gt, maps = sample
  category_ids = [c['id'] for c in gt['categories']]
  annotations = []
  for annotation, label in zip(gt['annotations'],
                               to_label_maps(gt, maps, -1)):
    annotations.append(writers.write_coco_panoptic(
        label, annotation['image_id'], annotation['file_name'],
        str(tmp_path / 'pred'), category_ids))
  (tmp_path / 'pred.json').write_text(json.dumps(
      {'annotations': annotations}))
  result = pq_compute(str(SAMPLE / 'panoptic_examples.json'),
                      str(tmp_path / 'pred.json'),
                      str(SAMPLE / 'panoptic_examples'),
                      str(tmp_path / 'pred'), num_workers=1)
  assert result['All']['pq'] == 1.0
  assert result['All']['n'] == len(counted_categories(gt))


def test_panoptic_to_segments_marks_thing_instance_0_as_crowd():
  # Class 1 is a thing: 1000 (instance 0) is a crowd region, 1001 an
  # instance; class 0 (stuff, 0) is never crowd; -1 is void (id 0).
  from pdl_tf.evaluation.writers import panoptic_to_segments  # pylint: disable=g-import-not-at-top
  panoptic = np.array([[0, 1000], [1001, -1]])
  ids, segments = panoptic_to_segments(panoptic, [7, 9], 1000,
                                       crowd_class_ids={1})
  np.testing.assert_array_equal(ids, [[1, 2], [3, 0]])
  assert [(s['category_id'], s['iscrowd']) for s in segments] == [
      (7, 0), (9, 1), (9, 0)]
  _, predicted = panoptic_to_segments(panoptic, [7, 9], 1000)
  assert not any(s['iscrowd'] for s in predicted)
