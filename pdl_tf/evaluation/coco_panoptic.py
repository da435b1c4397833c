"""PQ on predictions in COCO panoptic format (JSON + PNG), like panopticapi.

Example:
  >>> result = pq_compute('gt.json', 'pred.json', 'gt_png/', 'pred_png/')
  >>> result['All']['pq'], result['Things']['n'], result['per_class'][1]
"""

import multiprocessing
import os

from pdl_tf.evaluation import panoptic_quality
from pdl_tf.evaluation.panoptic_quality import Segment
from pdl_tf.panoptic_format import load_json
from pdl_tf.panoptic_format import read_id_map


def segments_from_annotation(annotation, categories, where):
  """{segment id: Segment} of one annotation; unknown categories raise."""
  segments = {}
  for info in annotation['segments_info']:
    if info['category_id'] not in categories:
      raise ValueError(f'{where}: segment {info["id"]} has unknown '
                       f'category_id {info["category_id"]}.')
    segments[info['id']] = Segment(info['category_id'],
                                   bool(info.get('iscrowd', 0)),
                                   int(info.get('area', 0)))
  return segments


def _evaluate_image(job):
  gt_annotation, pred_annotation, gt_folder, pred_folder, categories = job
  gt_path = os.path.join(gt_folder, gt_annotation['file_name'])
  pred_path = os.path.join(pred_folder, pred_annotation['file_name'])
  return panoptic_quality.match_image(
      read_id_map(gt_path),
      segments_from_annotation(gt_annotation, categories, gt_path),
      read_id_map(pred_path),
      segments_from_annotation(pred_annotation, categories, pred_path),
      image=pred_path)


def pq_compute(gt_json_file, pred_json_file, gt_folder, pred_folder,
               num_workers=None):
  """PQ / SQ / RQ of COCO-format panoptic predictions.

  Same rules and numbers as the COCO panopticapi ``pq_compute`` (ground-truth
  areas from the JSON, predicted areas from the PNGs).

  Args:
    gt_json_file: ground-truth panoptic JSON (images, annotations,
      categories with isthing).
    pred_json_file: predictions JSON with an ``annotations`` list (one per
      ground-truth image, same image_id).
    gt_folder: folder of ground-truth PNGs.
    pred_folder: folder of predicted PNGs.
    num_workers: processes to use; default all CPU cores, 1 = in process.

  Returns:
    {'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'},
     'per_class': {category_id: {'pq', 'sq', 'rq'}}}, values as fractions.

  Raises:
    FileNotFoundError, ValueError: naming the file, image and segment.
  """
  gt = load_json(gt_json_file, 'Ground-truth')
  pred = load_json(pred_json_file, 'Prediction')
  categories = {c['id']: c for c in gt['categories']}
  predictions = {a['image_id']: a for a in pred.get('annotations', [])}
  jobs = []
  for annotation in gt['annotations']:
    if annotation['image_id'] not in predictions:
      raise ValueError(f'{pred_json_file}: no prediction for image_id '
                       f'{annotation["image_id"]}.')
    jobs.append((annotation, predictions[annotation['image_id']], gt_folder,
                 pred_folder, categories))
  num_workers = min(num_workers or os.cpu_count() or 1, len(jobs))
  if num_workers <= 1:
    stats = [_evaluate_image(job) for job in jobs]
  else:
    with multiprocessing.get_context('spawn').Pool(num_workers) as pool:
      stats = pool.map(_evaluate_image, jobs)
  total = panoptic_quality.PQStat()
  for stat in stats:
    total.merge(stat)
  return total.summary(categories)
