"""PQ at dataset scale: the one histogram matching against a dict-and-loop
oracle, both paths (pq_compute on files, StreamingPanopticQuality on
segments) bit for bit, crowd_rule 'panopticapi' against panopticapi's own
code (cityscapesScripts' copy), the label-encoding producer, and the
pdl-pq command end to end."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pdl_tf.cli.shared import common
from pdl_tf.cli import pq as pq_command
from pdl_tf.evaluation import panoptic_quality
from pdl_tf.evaluation import pq_compute
from pdl_tf.evaluation import StreamingPanopticQuality
from pdl_tf.evaluation import streaming
from pdl_tf.labels.panoptic_format import id_map_to_rgb

# Categories 1, 2 things; 3, 4 stuff. Class index = category - 1.
CATEGORIES = [{'id': 1, 'name': 'person', 'isthing': 1},
              {'id': 2, 'name': 'car', 'isthing': 1},
              {'id': 3, 'name': 'road', 'isthing': 0},
              {'id': 4, 'name': 'sky', 'isthing': 0}]
THINGS = (0, 1)


# ------------------------------------------------------------- oracle ---
def oracle_image(gt_ids, gt_info, pred_ids, pred_info, crowd_rule):
  """panopticapi's pq_compute_single_core loop for one image, written out
  with dicts (areas counted here), plus the union rule. Returns {category:
  [iou list, tp, fp, fn]}."""
  gt_segms = {s['id']: s for s in gt_info}
  pred_segms = {s['id']: s for s in pred_info}
  area = lambda ids, i: int((ids == i).sum())
  pairs = collections.Counter(zip(gt_ids.ravel().tolist(),
                                  pred_ids.ravel().tolist()))
  stat = collections.defaultdict(lambda: [[], 0, 0, 0])
  gt_matched, pred_matched = set(), set()
  for (g, p), inter in sorted(pairs.items()):
    if g not in gt_segms or p not in pred_segms or gt_segms[g].get(
        'iscrowd', 0):
      continue
    if gt_segms[g]['category_id'] != pred_segms[p]['category_id']:
      continue
    union = (area(pred_ids, p) + area(gt_ids, g) - inter -
             pairs.get((0, p), 0))
    if inter / union > 0.5:
      stat[gt_segms[g]['category_id']][0].append(inter / union)
      stat[gt_segms[g]['category_id']][1] += 1
      gt_matched.add(g)
      pred_matched.add(p)
  crowds = collections.defaultdict(list)
  for g, info in gt_segms.items():
    if info.get('iscrowd', 0):
      crowds[info['category_id']].append(g)
    elif g not in gt_matched:
      stat[info['category_id']][3] += 1
  for p, info in pred_segms.items():
    if p in pred_matched:
      continue
    regions = crowds.get(info['category_id'], [])
    if crowd_rule == 'panopticapi':
      regions = regions[-1:]
    ignored = pairs.get((0, p), 0) + sum(pairs.get((g, p), 0)
                                         for g in regions)
    if ignored / area(pred_ids, p) <= 0.5:
      stat[info['category_id']][2] += 1
  return stat


def oracle_pq(images, crowd_rule):
  """All PQ / SQ / RQ of the oracle over [(gt ids, gt info, pred ids,
  pred info)], summing IoUs one by one as panopticapi."""
  total = collections.defaultdict(lambda: [0.0, 0, 0, 0])
  for image in images:
    for category, (ious, tp, fp, fn) in oracle_image(
        *image, crowd_rule).items():
      for iou in ious:
        total[category][0] += iou
      for k, value in ((1, tp), (2, fp), (3, fn)):
        total[category][k] += value
  pq = sq = rq = 0.0
  n = 0
  for category in (c['id'] for c in CATEGORIES):
    iou, tp, fp, fn = total.get(category, (0.0, 0, 0, 0))
    if tp + fp + fn == 0:
      continue
    n += 1
    pq += iou / (tp + 0.5 * fp + 0.5 * fn)
    sq += iou / tp if tp else 0.0
    rq += tp / (tp + 0.5 * fp + 0.5 * fn)
  return {'pq': pq / n, 'sq': sq / n, 'rq': rq / n, 'n': n}


# -------------------------------------------------------- files, paths ---
def info(segment_id, category, ids, iscrowd=0):
  return {'id': int(segment_id), 'category_id': int(category),
          'iscrowd': int(iscrowd), 'area': int((ids == segment_id).sum())}


def write_files(folder, name, maps, infos):
  """``folder/name.json`` and PNGs ``folder/name/<k>.png``."""
  png_folder = folder / name
  png_folder.mkdir(parents=True, exist_ok=True)
  annotations = []
  for k, (ids, segments) in enumerate(zip(maps, infos)):
    Image.fromarray(id_map_to_rgb(ids)).save(png_folder / f'{k}.png')
    annotations.append({'image_id': k, 'file_name': f'{k}.png',
                        'segments_info': segments})
  path = folder / f'{name}.json'
  path.write_text(json.dumps({'annotations': annotations,
                              'categories': CATEGORIES}))
  return str(path), str(png_folder)


def files_pq(tmp_path, images, crowd_rule, workers=1):
  gt_json, gt_folder = write_files(tmp_path, 'gt', [i[0] for i in images],
                                   [i[1] for i in images])
  pred_json, pred_folder = write_files(tmp_path, 'pred',
                                       [i[2] for i in images],
                                       [i[3] for i in images])
  return pq_compute(gt_json, pred_json, gt_folder, pred_folder, workers,
                    crowd_rule=crowd_rule)


def segment_arrays(ids, segments_info):
  """(index map, classes, crowd) of an id map, segments in id order (as
  pq_compute orders them), class = category - 1."""
  order = sorted(s['id'] for s in segments_info)
  by_id = {s['id']: s for s in segments_info}
  index = np.searchsorted(np.array([0] + order), ids)
  classes = np.array([0] + [by_id[i]['category_id'] - 1 for i in order])
  crowd = np.array([False] + [bool(by_id[i].get('iscrowd', 0))
                              for i in order])
  return index, classes, crowd


def streaming_pq(images, crowd_rule):
  """The streaming metric on segments (segment order = id order, as in
  files whose crowds are listed in id order)."""
  metric = StreamingPanopticQuality(len(CATEGORIES), THINGS,
                                    crowd_rule=crowd_rule)
  for gt_ids, gt_info, pred_ids, pred_info in images:
    gt_index, gt_classes, gt_crowd = segment_arrays(gt_ids, gt_info)
    pred_index, pred_classes, _ = segment_arrays(pred_ids, pred_info)
    metric.update_segments(gt_index, gt_classes, gt_crowd, pred_index,
                           pred_classes)
  return metric.result()


def reference_pq(tmp_path, images):
  """panopticapi's pq_compute_single_core (cityscapesScripts' copy) run in
  this process: (All, per-class)."""
  ref = pytest.importorskip(
      'cityscapesscripts.evaluation.evalPanopticSemanticLabeling')
  gt_json, gt_folder = write_files(tmp_path, 'rgt', [i[0] for i in images],
                                   [i[1] for i in images])
  pred_json, pred_folder = write_files(tmp_path, 'rpred',
                                       [i[2] for i in images],
                                       [i[3] for i in images])
  gt = json.loads(open(gt_json).read())
  pred = json.loads(open(pred_json).read())
  categories = {c['id']: c for c in gt['categories']}
  pairs = list(zip(gt['annotations'], pred['annotations']))
  stat = ref.pq_compute_single_core(0, pairs, gt_folder, pred_folder,
                                    categories)
  return stat.pq_average(categories, isthing=None)


# ------------------------------------------------- hand-made, 4 x 8 ----
# Ground truth: road (stuff) twice, ids 5 (cols 0-1) and 6 (cols 2-3);
# sky 7 on cols 4-7. Prediction: one road over cols 0-3, sky on 4-7.
TWO_ROADS = np.array([[5, 5, 6, 6, 7, 7, 7, 7]] * 4)
ONE_ROAD = np.array([[1, 1, 1, 1, 2, 2, 2, 2]] * 4)


def two_stuff_case():
  return [(TWO_ROADS, [info(5, 3, TWO_ROADS), info(6, 3, TWO_ROADS),
                       info(7, 4, TWO_ROADS)],
           ONE_ROAD, [info(1, 3, ONE_ROAD), info(2, 4, ONE_ROAD)])]


def test_two_stuff_segments_of_a_class_are_two_segments(tmp_path):
  # Road: the predicted road (16 px) against road 5 (8 px): IoU 8/16, not
  # > 0.5; the same for road 6: two FN and one FP, PQ 0. Sky IoU 1: PQ 1.
  # All PQ (0 + 1) / 2 = 0.5, SQ (0 + 1) / 2, RQ (0 + 1) / 2.
  images = two_stuff_case()
  expected = {'pq': 0.5, 'sq': 0.5, 'rq': 0.5, 'n': 2}
  for rule in panoptic_quality.CROWD_RULES:
    assert files_pq(tmp_path / rule, images, rule)['All'] == expected
    assert streaming_pq(images, rule)['All'] == expected
  assert oracle_pq(images, 'union') == expected
  reference, _ = reference_pq(tmp_path, images)
  assert reference == expected
  # The label encoding has one value for all road: one segment, IoU 1.
  metric = StreamingPanopticQuality(4, THINGS)
  metric.update(np.where(TWO_ROADS == 7, 3000, 2000),
                np.where(ONE_ROAD == 2, 3000, 2000))
  assert metric.result()['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 2}


# Two person crowds, 10 (cols 0-1) and 11 (cols 6-7), car 3 on cols 2-3,
# void on cols 4-5. Prediction: person 1 on cols 0-1, car 2 on cols 2-4,
# person 4 on col 5-7 (1 px-column of void + 2 of crowd 11).
CROWDS = np.array([[10, 10, 3, 3, 0, 0, 11, 11]] * 4)
CROWD_PRED = np.array([[1, 1, 2, 2, 2, 4, 4, 4]] * 4)


def crowd_case(order):
  gt_info = [info(i, 1, CROWDS, 1) for i in order] + [info(3, 2, CROWDS)]
  return [(CROWDS, gt_info, CROWD_PRED,
           [info(1, 1, CROWD_PRED), info(2, 2, CROWD_PRED),
            info(4, 1, CROWD_PRED)])]


@pytest.mark.parametrize('order', [(10, 11), (11, 10)])
def test_several_crowds_and_void_by_rule(tmp_path, order):
  # Car: IoU 8 / (12 + 8 - 8 - 4 on void) = 1: TP, PQ 1. Person 1 lies
  # 8/8 on crowd 10, person 4 is 4/12 on void + 8/12 on crowd 11.
  # union: both ignored; person not counted: PQ 1, n 1.
  # panopticapi, 11 listed last: person 1 (0/8 ignored) is a FP, person 4
  # ignored: person PQ 0, All (1 + 0) / 2. With 10 last: person 4 has 4/12
  # ignored: FP; person 1 ignored: the same numbers.
  images = crowd_case(order)
  union = {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1}
  last = {'pq': 0.5, 'sq': 0.5, 'rq': 0.5, 'n': 2}
  assert files_pq(tmp_path / 'u', images, 'union')['All'] == union
  assert files_pq(tmp_path / 'p', images, 'panopticapi')['All'] == last
  assert oracle_pq(images, 'union') == union
  assert oracle_pq(images, 'panopticapi') == last
  reference, _ = reference_pq(tmp_path, images)
  assert reference == last
  if order == (10, 11):  # streaming: listed order = index = id order
    assert streaming_pq(images, 'union')['All'] == union
    assert streaming_pq(images, 'panopticapi')['All'] == last


def test_panopticapi_rule_follows_the_listed_order(tmp_path):
  # Person 1 now lies on crowd 10 only if 10 is the one kept: with 11
  # listed last, person 1 (cols 0-1) is a FP; with 10 last it is ignored
  # and person 5 (cols 6-7, on crowd 11) is the FP. A car on cols 2-5.
  pred = np.array([[1, 1, 2, 2, 2, 2, 5, 5]] * 4)
  pred_info = [info(1, 1, pred), info(2, 2, pred), info(5, 1, pred)]
  results = {}
  for order in ((10, 11), (11, 10)):
    images = [(CROWDS, [info(i, 1, CROWDS, 1) for i in order] +
               [info(3, 2, CROWDS)], pred, pred_info)]
    ours = files_pq(tmp_path / str(order[0]), images, 'panopticapi')
    reference, per_class = reference_pq(tmp_path / f'r{order[0]}', images)
    assert ours['All'] == reference
    assert {c: ours['per_class'][c] for c in per_class} == per_class
    results[order] = ours['All']
  # Car: 8 px of ground truth, predicted 16 px of which 8 on void: IoU
  # 8 / (16 + 8 - 8 - 8) = 1. Person: one FP either way: (1 + 0) / 2.
  assert results[(10, 11)] == results[(11, 10)] == {
      'pq': 0.5, 'sq': 0.5, 'rq': 0.5, 'n': 2}


# ------------------------------------------------- seeded random set ---
def random_image(rng, height=24, width=32):
  """Blocks of 4x4 pixels in ~12 segments: categories with repeats (stuff
  and crowd twice or more), some void; the prediction is the ground truth
  shifted, relabelled in part, with new ids."""
  cells = rng.integers(0, 12, (height // 4, width // 4))
  cells = np.kron(cells, np.ones((4, 4), np.int64))
  gt_ids = rng.choice(np.arange(1, 5000), 12, replace=False)
  gt_ids[0] = 0  # void
  category = rng.integers(1, 5, 12)
  crowd = (category <= 2) & (rng.random(12) < 0.3)
  gt_map = gt_ids[cells]
  gt_info = [info(gt_ids[k], category[k], gt_map, crowd[k])
             for k in rng.permutation(np.arange(1, 12))
             if (gt_map == gt_ids[k]).any()]
  shifted = np.roll(cells, tuple(rng.integers(-2, 3, 2)), (0, 1))
  pred_ids = rng.choice(np.arange(1, 1 << 24), 12, replace=False)
  pred_ids[rng.random(12) < 0.1] = 0
  pred_category = np.where(rng.random(12) < 0.15, rng.integers(1, 5, 12),
                           category)
  pred_map = pred_ids[shifted]
  pred_info = [info(pred_ids[k], pred_category[k], pred_map)
               for k in range(12) if pred_ids[k] and
               (pred_map == pred_ids[k]).any() and
               pred_ids[k] not in pred_ids[:k]]
  return gt_map, gt_info, pred_map, pred_info


def test_seeded_set_oracle_reference_and_both_paths(tmp_path):
  rng = np.random.default_rng(7)
  images = [random_image(rng) for _ in range(30)]
  crowds = collections.Counter(
      (k, s['category_id']) for k, image in enumerate(images)
      for s in image[1] if s['iscrowd'])
  assert max(crowds.values()) >= 2  # several crowds of a category
  reference, per_class = reference_pq(tmp_path, images)
  for rule in panoptic_quality.CROWD_RULES:
    ours = files_pq(tmp_path / rule, images, rule, workers=2)
    assert ours['All'] == oracle_pq(images, rule)
    if rule == 'panopticapi':  # bit for bit, per class too
      assert ours['All'] == reference
      assert {c: ours['per_class'][c] for c in per_class} == per_class
  assert files_pq(tmp_path / 'x', images, 'union')['All'] != reference
  # The streaming metric on the same segments: the union rule (the crowd
  # kept by 'panopticapi' depends on the listed order, which segment
  # indices in id order do not keep).
  ours = files_pq(tmp_path / 's', images, 'union')
  result = streaming_pq(images, 'union')
  assert result['All'] == ours['All']
  for k, category in enumerate(c['id'] for c in CATEGORIES):
    assert result['per_class'][k] == ours['per_class'][category]


# ------------------------------------------ label encoding (producer) ---
@pytest.mark.parametrize('seed', range(4))
def test_label_segments_finds_every_value(seed):
  # Tiny segments (one pixel) that a sample of every 61st pixel misses,
  # void values, and a map with values < -1 (the sorting fallback).
  rng = np.random.default_rng(seed)
  panoptic = rng.choice([0, 1001, 1002, 3000, 255000, 255007], (40, 50))
  panoptic[rng.integers(0, 40, 5), rng.integers(0, 50, 5)] = [
      1003, 1004, 2001, 2002, 4000]
  index, classes, crowd = streaming.label_segments(panoptic, 1000, 255,
                                                   (1, 2))
  values = np.unique(panoptic[panoptic // 1000 != 255])
  assert np.array_equal(classes[1:], values // 1000)
  assert np.array_equal(crowd[1:], np.isin(values, [2000]))
  expected = np.searchsorted(values, panoptic) + 1
  assert np.array_equal(index, np.where(panoptic // 1000 == 255, 0,
                                        expected))
  pred = np.where(panoptic > 255000, -1, panoptic) - (seed == 3) * 5
  index, classes, _ = streaming.label_segments(pred, 1000)
  values = np.unique(pred[pred >= 0])
  assert np.array_equal(classes[1:], values // 1000)
  assert np.array_equal(index, np.where(pred < 0, 0, np.searchsorted(
      values, pred) + 1))


def test_update_segments_rejects_bad_input():
  metric = StreamingPanopticQuality(4, THINGS)
  index = np.zeros((2, 2), np.int64)
  with pytest.raises(ValueError, match='outside 0..1 of its class list'):
    metric.update_segments(index + 2, [0, 1], [False, False], index, [0])
  with pytest.raises(ValueError, match=r'classes \[9\] outside 0..3'):
    metric.update_segments(index + 1, [0, 9], [False, False], index, [0])
  with pytest.raises(ValueError, match='crowd_rule'):
    StreamingPanopticQuality(4, THINGS, crowd_rule='last')


# ----------------------------------------------------------- pdl-pq ---
def pq_files(tmp_path):
  images = crowd_case((10, 11))
  gt_json, gt_folder = write_files(tmp_path, 'gt', [images[0][0]],
                                   [images[0][1]])
  pred_json, pred_folder = write_files(tmp_path, 'pred', [images[0][2]],
                                       [images[0][3]])
  return ['--gt_json', gt_json, '--gt_folder', gt_folder, '--pred_json',
          pred_json, '--pred_folder', pred_folder]


def run_pq(argv):
  return common.run(pq_command.main, argv, pq_command.build_parser())


@pytest.mark.parametrize('rule, pq', [('union', 1.0), ('panopticapi', 0.5)])
def test_pdl_pq_end_to_end(tmp_path, capsys, rule, pq):
  output = tmp_path / 'out' / 'pq.json'
  assert run_pq(pq_files(tmp_path) + ['--crowd_rule', rule, '--output',
                                      str(output)]) == 0
  printed = capsys.readouterr().out
  assert f'crowd rule: {rule}' in printed
  assert 'person' in printed and 'car' in printed
  report = json.loads(output.read_text())
  assert report['crowd_rule'] == rule
  assert report['All']['pq'] == pq
  car = [row for row in report['per_class'] if row['category_id'] == 2][0]
  assert car == {'category_id': 2, 'name': 'car', 'isthing': 1, 'pq': 1.0,
                 'sq': 1.0, 'rq': 1.0}


def test_pdl_pq_bad_inputs_name_the_file(tmp_path, capsys):
  argv = pq_files(tmp_path)
  missing = list(argv)
  missing[1] = str(tmp_path / 'nope.json')
  assert run_pq(missing) == 2
  assert "--gt_json '" in capsys.readouterr().err
  # A predicted segment listed but missing from its PNG.
  data = json.loads(open(argv[5]).read())
  data['annotations'][0]['segments_info'].append(
      {'id': 77, 'category_id': 1})
  with open(argv[5], 'w') as f:
    json.dump(data, f)
  assert run_pq(argv) == 2
  err = capsys.readouterr().err
  assert 'pred/0.png: segment ids [77] are in the JSON segments_info but ' \
         'not in the PNG' in err, err
  # A predicted PNG that is not there.
  os.remove(os.path.join(argv[7], '0.png'))
  assert run_pq(argv) == 2
  assert "pred/0.png' does not exist" in capsys.readouterr().err


def test_pdl_pq_checks_before_reading_and_without_tensorflow(tmp_path):
  argv = pq_files(tmp_path)
  argv[3] = str(tmp_path / 'nofolder')
  run = subprocess.run(
      [sys.executable, '-c',
       'import sys; from pdl_tf.cli import pq; from pdl_tf.cli.shared import common; '
       'code = common.run(pq.main, sys.argv[1:], pq.build_parser()); '
       'print(code, "tensorflow" in sys.modules)'] + argv,
      capture_output=True, text=True, timeout=120, check=False,
      env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
  assert run.stdout.split() == ['2', 'False'], run.stderr
  assert "--gt_folder '" in run.stderr and 'does not exist' in run.stderr
