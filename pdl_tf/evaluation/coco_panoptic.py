"""PQ on predictions in COCO panoptic format (JSON + PNG), like panopticapi.

Example:
  >>> result = pq_compute('gt.json', 'pred.json', 'gt_png/', 'pred_png/')
  >>> result['All']['pq'], result['Things']['n'], result['per_class'][1]
"""

import concurrent.futures
import os
import threading

import numpy as np

from pdl_tf.evaluation import panoptic_quality
from pdl_tf.evaluation.panoptic_quality import VOID_ID
from pdl_tf.labels.panoptic_format import check_areas
from pdl_tf.labels.json_file import load_json
from pdl_tf.labels.panoptic_format import parse_segments
from pdl_tf.labels.panoptic_format import read_id_map


def _segment_table(segments_info, categories, where, prediction):
  """One annotation's segments, checked (panoptic_format.parse_segments):
  (ids int64 [n + 1] sorted with void 0 first, category [n + 1], crowd
  bool [n + 1], rank [n + 1]: position in segments_info, {id: JSON area or
  None})."""
  segments = parse_segments(segments_info, categories, where, prediction)
  listed = list(segments)
  ids = np.array([VOID_ID] + sorted(listed), np.int64)
  rank = {segment_id: k for k, segment_id in enumerate(listed)}
  category = np.array([0] + [segments[i][0] for i in ids[1:].tolist()],
                      np.int64)
  crowd = np.array([False] + [segments[i][1] for i in ids[1:].tolist()])
  order = np.array([-1] + [rank[i] for i in ids[1:].tolist()], np.int64)
  return ids, category, crowd, order, {
      i: area for i, (_, _, area) in segments.items()}


_TABLES = threading.local()  # one id -> index table per thread


def _index_map(id_map, ids, areas, where):
  """Segment indices [H, W] (positions in ``ids``) of a PNG's id map.

  One look-up in a uint16 table over all 2^24 ids, kept per thread (32 MiB
  at most, only the pages of ids met so far resident) and cleared after
  each image; more than 65535 segments in one image fall back to a binary
  search.

  Raises:
    ValueError naming ``where``: ids of the PNG missing from segments_info.
  """
  if len(ids) < 1 << 16:
    table = getattr(_TABLES, 'table', None)
    if table is None:
      table = _TABLES.table = np.zeros(1 << 24, np.uint16)
    table[ids[1:]] = np.arange(1, len(ids), dtype=np.uint16)
    try:
      index = np.take(table, id_map)
    finally:
      table[ids[1:]] = 0
    unlisted = np.count_nonzero(index) != np.count_nonzero(id_map)
  else:
    index = np.searchsorted(ids, id_map)
    unlisted = not (np.take(ids, index, mode='clip') == id_map).all()
  if unlisted:
    present, counts = np.unique(id_map, return_counts=True)
    check_areas(areas, dict(zip(present.tolist(), counts.tolist())), where)
  return index


def _evaluate_image(gt_annotation, pred_annotation, gt_folder, pred_folder,
                    categories, crowd_rule):
  """One image pair's match_histogram result; checks every field."""
  gt_path = os.path.join(gt_folder, gt_annotation['file_name'])
  pred_path = os.path.join(pred_folder, pred_annotation['file_name'])
  gt_ids, gt_category, gt_crowd, gt_rank, gt_areas = _segment_table(
      gt_annotation['segments_info'], categories, gt_path, False)
  pred_ids, pred_category, _, _, pred_areas = _segment_table(
      pred_annotation['segments_info'], categories, pred_path, True)
  gt_map, pred_map = read_id_map(gt_path), read_id_map(pred_path)
  if gt_map.shape != pred_map.shape:
    raise ValueError(f'{pred_path}: ground truth {gt_path} is '
                     f'{gt_map.shape} and the prediction {pred_map.shape}.')
  histogram = panoptic_quality.pair_histogram(
      _index_map(gt_map, gt_ids, gt_areas, gt_path), len(gt_ids),
      _index_map(pred_map, pred_ids, pred_areas, pred_path), len(pred_ids))
  for ids, areas, counts, where in (
      (gt_ids, gt_areas, histogram.sum(1), gt_path),
      (pred_ids, pred_areas, histogram.sum(0), pred_path)):
    check_areas(areas, {i: n for i, n in zip(ids.tolist(), counts.tolist())
                        if n}, where)
  return panoptic_quality.match_histogram(
      histogram, gt_category, gt_crowd, pred_category, crowd_rule, gt_rank)


def check_categories(categories, where):
  """{category id: category} of a JSON ``categories`` list, or raises
  ValueError naming ``where``: an entry without an int id or with isthing
  other than 0 or 1, or an id listed twice."""
  result = {}
  for category in categories:
    category_id = category.get('id') if isinstance(category, dict) else None
    if not isinstance(category_id, int) or category.get('isthing') not in (
        0, 1):
      raise ValueError(f'{where}: category {category!r} needs an int id and '
                       'isthing 0 or 1.')
    if category_id in result:
      raise ValueError(f'{where}: category id {category_id} is listed twice.')
    result[category_id] = category
  return result


def _annotations(data, json_file):
  """The JSON's annotations, each with image_id, file_name, segments_info."""
  annotations = data.get('annotations') if isinstance(data, dict) else None
  if not isinstance(annotations, list):
    raise ValueError(f'{json_file}: no "annotations" list.')
  for index, annotation in enumerate(annotations):
    if not isinstance(annotation, dict) or not {
        'image_id', 'file_name', 'segments_info'} <= set(annotation):
      raise ValueError(f'{json_file}: annotations[{index}] needs image_id, '
                       'file_name and segments_info.')
  return annotations


def _matched_annotations(gt, pred, gt_json_file, pred_json_file):
  """[(gt annotation, its prediction)], or raises naming the JSON file."""
  predictions = {}
  for annotation in _annotations(pred, pred_json_file):
    if annotation['image_id'] in predictions:
      raise ValueError(f'{pred_json_file}: two annotations for image_id '
                       f'{annotation["image_id"]}.')
    predictions[annotation['image_id']] = annotation
  pairs, seen = [], set()
  for annotation in _annotations(gt, gt_json_file):
    image_id = annotation['image_id']
    if image_id in seen:
      raise ValueError(f'{gt_json_file}: two annotations for image_id '
                       f'{image_id}.')
    seen.add(image_id)
    if image_id not in predictions:
      raise ValueError(f'{pred_json_file}: no prediction for image_id '
                       f'{image_id}.')
    pairs.append((annotation, predictions[image_id]))
  return pairs


def pq_compute(gt_json_file, pred_json_file, gt_folder, pred_folder,
               num_workers=None, crowd_rule='union', progress=None):
  """PQ / SQ / RQ of COCO-format panoptic predictions.

  panopticapi's rules and numbers (panoptic_quality.py); with several
  crowd segments of one category in one image, their union
  (``crowd_rule='union'``, as StreamingPanopticQuality) or panopticapi's
  last-listed one (``'panopticapi'``: its numbers bit for bit). Areas are
  pixel counts of the PNGs; every field read from the ground-truth JSON is
  checked against its PNG first, and every predicted segment against its
  PNG.

  Images are evaluated on a thread pool (PIL decoding and NumPy release the
  GIL), so it works from any caller: a script without a ``__main__`` guard,
  a notebook, a worker thread. The result does not depend on the number of
  workers (images are added in the ground truth's order). Memory: the JSONs
  plus one image pair per worker.

  Args:
    gt_json_file: ground-truth panoptic JSON (images, annotations,
      categories with isthing).
    pred_json_file: predictions JSON with an ``annotations`` list (one per
      ground-truth image, same image_id).
    gt_folder: folder of ground-truth PNGs.
    pred_folder: folder of predicted PNGs.
    num_workers: threads to use; default min(4, CPU cores); 1 = in the
      calling thread.
    crowd_rule: 'union' or 'panopticapi'.
    progress: optional callable(iterable, total) -> iterable wrapping the
      per-image results (e.g. a tqdm progress bar).

  Returns:
    {'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'},
     'per_class': {category_id: {'pq', 'sq', 'rq'}}}, values as fractions.

  Raises:
    FileNotFoundError, ValueError: naming the file, image and segment (a
    JSON that disagrees with its PNG: an id missing on either side or
    listed twice, a ground-truth area that is not the pixel count, an
    unknown category_id, an iscrowd other than 0 or 1), or an unknown
    crowd_rule.
  """
  panoptic_quality.check_crowd_rule(crowd_rule)
  gt = load_json(gt_json_file, 'Ground-truth')
  pred = load_json(pred_json_file, 'Prediction')
  categories = check_categories(
      gt.get('categories', []) if isinstance(gt, dict) else [], gt_json_file)
  pairs = _matched_annotations(gt, pred, gt_json_file, pred_json_file)
  num_workers = min(num_workers or min(4, os.cpu_count() or 1), len(pairs))
  evaluate = lambda pair: _evaluate_image(*pair, gt_folder, pred_folder,
                                          categories, crowd_rule)
  total = panoptic_quality.PQStat(categories)
  with concurrent.futures.ThreadPoolExecutor(max(num_workers, 1)) as pool:
    results = (map(evaluate, pairs) if num_workers <= 1 else
               _in_order(pool, evaluate, pairs, 4 * num_workers))
    for result in (progress(results, len(pairs)) if progress else results):
      total.add(*result)
  return total.summary(categories)


def _in_order(pool, function, items, ahead):
  """function(item) for each item, computed on ``pool`` at most ``ahead``
  items ahead of the consumer, yielded in order."""
  pending = []
  for item in items:
    pending.append(pool.submit(function, item))
    if len(pending) >= ahead:
      yield pending.pop(0).result()
  for future in pending:
    yield future.result()
