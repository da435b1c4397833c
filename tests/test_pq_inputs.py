"""PQ on hand-made COCO-format files: several crowd segments of a class,
ground-truth JSON fields checked against the PNG, and pq_compute called from
a script without a __main__ guard. Every value is worked out by hand."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from pdl_tf.data.readers import coco_panoptic
from pdl_tf.evaluation import pq_compute
from pdl_tf.evaluation import StreamingPanopticQuality
from pdl_tf.labels.panoptic_format import id_map_to_rgb
from pdl_tf.labels.panoptic_format import read_id_map

# Class index 0 = person (thing, category 1), 1 = road (stuff, category 2).
CATEGORIES = [{'id': 1, 'name': 'person', 'isthing': 1},
              {'id': 2, 'name': 'road', 'isthing': 0}]


def write_panoptic(folder, name, images):
  """Writes ``folder/name.json`` and PNGs ``folder/name/<k>.png``.

  Args:
    images: [(id map int [H, W], segments_info)].

  Returns:
    (json path, png folder) as strings.
  """
  png_folder = folder / name
  png_folder.mkdir(parents=True, exist_ok=True)
  annotations = []
  for k, (ids, segments) in enumerate(images):
    Image.fromarray(id_map_to_rgb(ids)).save(png_folder / f'{k}.png')
    annotations.append({'image_id': k, 'file_name': f'{k}.png',
                        'segments_info': segments})
  path = folder / f'{name}.json'
  path.write_text(json.dumps({
      'images': [{'id': k, 'file_name': f'{k}.jpg'}
                 for k in range(len(images))],
      'annotations': annotations, 'categories': CATEGORIES}))
  return str(path), str(png_folder)


def segment(segment_id, category, ids, iscrowd=0):
  return {'id': segment_id, 'category_id': category, 'iscrowd': iscrowd,
          'area': int((ids == segment_id).sum())}


# ------------------------------------------- two crowd segments, 4 x 8 ---
# Ground truth: person crowd 10 on columns 0-1, person crowd 11 on columns
# 6-7, road (5) on columns 2-5. Prediction: a person (1) on columns 0-1,
# road (2) on columns 2-5, void on 6-7.
GT_IDS = np.array([[10, 10, 5, 5, 5, 5, 11, 11]] * 4)
PRED_IDS = np.array([[1, 1, 2, 2, 2, 2, 0, 0]] * 4)


def crowd_case(tmp_path, crowd_order=(10, 11), pred_ids=PRED_IDS):
  gt_segments = [segment(i, 1, GT_IDS, iscrowd=1) for i in crowd_order]
  gt_segments.append(segment(5, 2, GT_IDS))
  pred_segments = [segment(i, c, pred_ids) for i, c in ((1, 1), (2, 2))]
  return (*write_panoptic(tmp_path, 'gt', [(GT_IDS, gt_segments)]),
          *write_panoptic(tmp_path, 'pred', [(pred_ids, pred_segments)]))


def files_pq(gt_json, gt_folder, pred_json, pred_folder):
  return pq_compute(gt_json, pred_json, gt_folder, pred_folder,
                    num_workers=1)


def streaming_pq(gt_json, gt_folder, pred_ids):
  """What pdl-eval reports: the reader's label map against the prediction
  in the package encoding (person 1, road 1000, void -1)."""
  data = json.loads(open(gt_json).read())
  meta = coco_panoptic.metadata_from_categories(data['categories'])
  annotation = data['annotations'][0]
  png = os.path.join(gt_folder, annotation['file_name'])
  gt_label = coco_panoptic.label_from_segments(
      read_id_map(png), annotation['segments_info'], meta, png)
  pred_label = np.select([pred_ids == 1, pred_ids == 2], [1, 1000], -1)
  metric = StreamingPanopticQuality(2, meta.thing_class_ids)
  metric.update(gt_label, pred_label)
  return metric.result()


@pytest.mark.parametrize('crowd_order', [(10, 11), (11, 10)])
def test_two_crowd_segments_of_a_class_give_one_number(tmp_path,
                                                       crowd_order):
  # Union rule: the predicted person lies 8/8 on the person crowd (10 or 11,
  # either one counts), so it is no false positive; person has no TP, FP or
  # FN and is not counted. Road: IoU 16/16. PQ = SQ = RQ = 1, n = 1.
  # (panopticapi keeps only the crowd segment listed last: with (10, 11) it
  # would count the person as a false positive, PQ (0 + 1) / 2 = 0.5.)
  gt_json, gt_folder, pred_json, pred_folder = crowd_case(tmp_path,
                                                          crowd_order)
  expected = {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1}
  for result in (files_pq(gt_json, gt_folder, pred_json, pred_folder),
                 streaming_pq(gt_json, gt_folder, PRED_IDS)):
    assert result['All'] == expected
    assert result['Stuff'] == expected
    assert result['Things']['n'] == 0


def test_a_prediction_spanning_two_crowd_segments_is_ignored(tmp_path):
  # One predicted person over columns 0-1 and 6-7 (16 px): 8 px on crowd 10
  # and 8 on crowd 11, 16/16 > 1/2 on the union: ignored (on crowd 11 alone,
  # 8/16, it would be a false positive). Road IoU 1: PQ 1, n = 1.
  pred_ids = np.array([[1, 1, 2, 2, 2, 2, 1, 1]] * 4)
  gt_json, gt_folder, pred_json, pred_folder = crowd_case(
      tmp_path, pred_ids=pred_ids)
  for result in (files_pq(gt_json, gt_folder, pred_json, pred_folder),
                 streaming_pq(gt_json, gt_folder, pred_ids)):
    assert result['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1}


# ------------------------------------ ground-truth JSON against the PNG ---
FULL = np.full((4, 4), 3)


def area_case(tmp_path, mutate):
  """A 4x4 ground truth, one road segment (id 3, 16 px), a perfect
  prediction; ``mutate(gt segments_info, data)`` breaks the JSON."""
  gt_json, gt_folder = write_panoptic(tmp_path, 'gt',
                                      [(FULL, [segment(3, 2, FULL)])])
  pred_json, pred_folder = write_panoptic(tmp_path, 'pred',
                                          [(FULL, [segment(3, 2, FULL)])])
  data = json.loads(open(gt_json).read())
  mutate(data['annotations'][0]['segments_info'], data)
  with open(gt_json, 'w') as f:
    json.dump(data, f)
  return gt_json, pred_json, gt_folder, pred_folder


def test_perfect_4x4_prediction_scores_1(tmp_path):
  result = pq_compute(*area_case(tmp_path, lambda s, d: None))
  assert result['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1}


def _set(key, value):
  def mutate(segments, data):
    del data
    segments[0][key] = value
  return mutate


BROKEN = {
    # The case: area 4 for a 16-pixel segment gave PQ = SQ = 4.0.
    'area': (_set('area', 4),
             'gt/0.png: segment 3 has JSON area 4 but covers 16 pixels'),
    'category': (_set('category_id', 7),
                 'gt/0.png: segment 3 has unknown category_id 7'),
    'iscrowd': (_set('iscrowd', 'no'),
                "gt/0.png: segment 3 has iscrowd 'no'; expected 0 or 1"),
    'id in PNG only': (_set('id', 4),
                       'gt/0.png: segment ids \\[3\\] are in the PNG but '
                       'not in the JSON'),
    'id in JSON only': (
        lambda s, d: s.append({'id': 9, 'category_id': 1, 'iscrowd': 0}),
        'gt/0.png: segment ids \\[9\\] are in the JSON segments_info but '
        'not in the PNG'),
    'id twice': (lambda s, d: s.append(dict(s[0])),
                 'gt/0.png: segment id 3 is listed twice'),
    'id 0': (lambda s, d: s.append({'id': 0, 'category_id': 2}),
             'gt/0.png: segments_info\\[1\\] has id 0'),
    'annotation keys': (
        lambda s, d: d['annotations'][0].pop('segments_info'),
        'gt.json: annotations\\[0\\] needs image_id, file_name and '
        'segments_info'),
    'isthing': (lambda s, d: d['categories'][0].update(isthing='yes'),
                "gt.json: category .*'person'.* needs an int id and "
                'isthing 0 or 1'),
}


@pytest.mark.parametrize('name', sorted(BROKEN))
def test_json_disagreeing_with_png_is_an_error(tmp_path, name):
  mutate, message = BROKEN[name]
  with pytest.raises(ValueError, match=message):
    pq_compute(*area_case(tmp_path, mutate), num_workers=1)


def test_reader_checks_the_same_fields(tmp_path):
  # The COCO-format reader (training and pdl-eval) applies the same checks.
  meta = coco_panoptic.metadata_from_categories(CATEGORIES)
  for name in ('area', 'iscrowd', 'id twice'):
    segments = [segment(3, 2, FULL)]
    BROKEN[name][0](segments, {'categories': []})
    with pytest.raises(ValueError, match=BROKEN[name][1].replace('gt/', '')):
      coco_panoptic.label_from_segments(FULL, segments, meta, '0.png')


# ------------------------------------------------ any calling context ---
def two_images(tmp_path):
  """Two 4x8 ground-truth images (so that a pool has work to share)."""
  return write_panoptic(tmp_path, 'gt', [
      (GT_IDS, [segment(10, 1, GT_IDS, 1), segment(11, 1, GT_IDS, 1),
                segment(5, 2, GT_IDS)]),
      (PRED_IDS + 20 * (PRED_IDS > 0),
       [segment(21, 1, PRED_IDS + 20), segment(22, 2, PRED_IDS + 20)])])


def test_pq_compute_from_a_script_without_main_guard(tmp_path):
  gt_json, gt_folder = two_images(tmp_path)
  script = tmp_path / 'unguarded.py'
  script.write_text(textwrap.dedent(f'''\
      from pdl_tf.evaluation import pq_compute
      result = pq_compute({gt_json!r}, {gt_json!r}, {gt_folder!r}, {gt_folder!r}, num_workers=2)
      print('PQ', result['All']['pq'], result['All']['n'])
      '''))
  run = subprocess.run([sys.executable, str(script)], capture_output=True,
                       text=True, timeout=120, check=False,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                           sys.path)))
  assert run.returncode == 0, run.stderr
  assert run.stdout.strip() == 'PQ 1.0 2'


def test_workers_give_the_numbers_of_one_thread(tmp_path):
  gt_json, gt_folder = two_images(tmp_path)
  _, _, pred_json, pred_folder = crowd_case(tmp_path / 'other')
  data = json.loads(open(pred_json).read())
  data['annotations'].append(dict(data['annotations'][0], image_id=1))
  with open(pred_json, 'w') as f:
    json.dump(data, f)
  one = pq_compute(gt_json, pred_json, gt_folder, pred_folder, num_workers=1)
  two = pq_compute(gt_json, pred_json, gt_folder, pred_folder, num_workers=2)
  assert one == two
  # Image 0: road TP (IoU 1), person ignored on crowd. Image 1: person
  # 21 (8 px, cols 0-1) vs predicted person 8 px there: TP IoU 1; road the
  # same. PQ 1 for both classes.
  assert one['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 2}


# --------------------------------------------- the reference's own code ---
def reference_all(gt_json, gt_folder, pred_json, pred_folder):
  """'All' and per-class results of the reference rules: panopticapi's
  pq_compute as cityscapesScripts ships it (evalPanopticSemanticLabeling),
  its single-core function run in this process."""
  from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as ref  # pylint: disable=g-import-not-at-top
  gt = json.loads(open(gt_json).read())
  pred = json.loads(open(pred_json).read())
  categories = {c['id']: c for c in gt['categories']}
  predictions = {a['image_id']: a for a in pred['annotations']}
  pairs = [(a, predictions[a['image_id']]) for a in gt['annotations']]
  stat = ref.pq_compute_single_core(0, pairs, gt_folder, pred_folder,
                                    categories)
  return stat.pq_average(categories, isthing=None)


def test_reference_keeps_only_the_crowd_segment_listed_last(tmp_path):
  # What README says of the reference on the 4x8 case: PQ 0.5 (n = 2) with
  # crowd 11 (columns 6-7) listed last, 1.0 (n = 1) with crowd 10 last;
  # pdl_tf gives 1.0 for both orders (test above).
  for order, expected in (((10, 11), (0.5, 2)), ((11, 10), (1.0, 1))):
    gt_json, gt_folder, pred_json, pred_folder = crowd_case(
        tmp_path / str(order[0]), order)
    result, _ = reference_all(gt_json, gt_folder, pred_json, pred_folder)
    assert (result['pq'], result['n']) == expected


def test_pq_compute_matches_the_reference_on_synthetic_scenes(tmp_path):
  # Scenes with at most one crowd region per class: pq_compute, the
  # streaming metric and the reference give the same numbers. Predictions:
  # the ground truth shifted 2 px right, crowds as instances, one class's
  # first instance relabelled, void as -1.
  from pdl_tf.data.readers import synthetic  # pylint: disable=g-import-not-at-top
  from pdl_tf.evaluation.pair_writer import PanopticPairWriter  # pylint: disable=g-import-not-at-top
  things = synthetic.THING_CLASS_IDS
  writer = PanopticPairWriter(str(tmp_path), 6, things)
  metric = StreamingPanopticQuality(6, things)
  for seed in range(8):
    _, gt = synthetic.make_scene(seed, 64, 64)
    pred = np.where(np.isin(gt, [c * 1000 for c in things]), gt + 99, gt)
    pred = np.where(pred == 3001, 4050, pred)
    pred = np.roll(np.where(gt // 1000 == 255, -1, pred), 2, axis=1)
    writer.add(f'{seed}.png', gt, pred)
    metric.update(gt, pred)
  writer.close()
  gt_json, pred_json, gt_folder, pred_folder = writer.pq_compute_arguments()
  ours = pq_compute(gt_json, pred_json, gt_folder, pred_folder, 2)
  reference, per_class = reference_all(gt_json, gt_folder, pred_json,
                                       pred_folder)
  assert 0.3 < reference['pq'] < 0.95  # a mix of matches and misses
  assert ours['All'] == pytest.approx(reference, abs=1e-12)
  assert metric.result()['All'] == pytest.approx(reference, abs=1e-12)
  for category, values in per_class.items():
    assert ours['per_class'][category] == pytest.approx(values, abs=1e-12)
