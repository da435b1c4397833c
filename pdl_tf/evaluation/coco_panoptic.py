"""PQ on predictions in COCO panoptic format (JSON + PNG), like panopticapi.

Example:
  >>> result = pq_compute('gt.json', 'pred.json', 'gt_png/', 'pred_png/')
  >>> result['All']['pq'], result['Things']['n'], result['per_class'][1]
"""

import concurrent.futures
import os

from pdl_tf.evaluation import panoptic_quality
from pdl_tf.evaluation.panoptic_quality import Segment
from pdl_tf.panoptic_format import load_json
from pdl_tf.panoptic_format import parse_segments
from pdl_tf.panoptic_format import read_id_map


def segments_from_annotation(annotation, categories, where,
                             prediction=False):
  """{segment id: Segment} of one annotation (panoptic_format.parse_segments
  checks it; a ground truth's JSON areas are kept, to be checked against
  its PNG)."""
  return {segment_id: Segment(category, crowd, area)
          for segment_id, (category, crowd, area) in parse_segments(
              annotation['segments_info'], categories, where,
              prediction).items()}


def _evaluate_image(gt_annotation, pred_annotation, gt_folder, pred_folder,
                    categories):
  gt_path = os.path.join(gt_folder, gt_annotation['file_name'])
  pred_path = os.path.join(pred_folder, pred_annotation['file_name'])
  return panoptic_quality.match_image(
      read_id_map(gt_path),
      segments_from_annotation(gt_annotation, categories, gt_path),
      read_id_map(pred_path),
      segments_from_annotation(pred_annotation, categories, pred_path,
                               prediction=True),
      image=pred_path, gt_image=gt_path)


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
               num_workers=None):
  """PQ / SQ / RQ of COCO-format panoptic predictions.

  panopticapi's rules and numbers (panoptic_quality.py), except for several
  crowd segments of one category in one image, whose union is used (as by
  StreamingPanopticQuality). Areas are pixel counts of the PNGs; every field
  read from the ground-truth JSON is checked against its PNG first.

  Images are evaluated on a thread pool (PIL decoding and NumPy's sorting
  release the GIL), so it works from any caller: a script without a
  ``__main__`` guard, a notebook, a worker thread (a spawned process pool
  would re-import an unguarded calling script, again and again).

  Args:
    gt_json_file: ground-truth panoptic JSON (images, annotations,
      categories with isthing).
    pred_json_file: predictions JSON with an ``annotations`` list (one per
      ground-truth image, same image_id).
    gt_folder: folder of ground-truth PNGs.
    pred_folder: folder of predicted PNGs.
    num_workers: threads to use; default min(4, CPU cores); 1 = in the
      calling thread.

  Returns:
    {'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'},
     'per_class': {category_id: {'pq', 'sq', 'rq'}}}, values as fractions.

  Raises:
    FileNotFoundError, ValueError: naming the file, image and segment (a
    ground-truth JSON that disagrees with its PNG: an id missing on either
    side or listed twice, an area that is not the pixel count, an unknown
    category_id, an iscrowd other than 0 or 1).
  """
  gt = load_json(gt_json_file, 'Ground-truth')
  pred = load_json(pred_json_file, 'Prediction')
  categories = check_categories(
      gt.get('categories', []) if isinstance(gt, dict) else [], gt_json_file)
  pairs = _matched_annotations(gt, pred, gt_json_file, pred_json_file)
  num_workers = min(num_workers or min(4, os.cpu_count() or 1), len(pairs))
  evaluate = lambda pair: _evaluate_image(*pair, gt_folder, pred_folder,
                                          categories)
  if num_workers <= 1:
    stats = [evaluate(pair) for pair in pairs]
  else:
    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
      stats = list(pool.map(evaluate, pairs))
  total = panoptic_quality.PQStat()
  for stat in stats:
    total.merge(stat)
  return total.summary(categories)
