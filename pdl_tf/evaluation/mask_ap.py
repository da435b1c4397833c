"""COCO mask AP of Panoptic-DeepLab instances, through COCOeval.

Ground truth comes from panoptic labels: each thing segment with an
instance id is one instance; a thing segment with instance 0 is a crowd
region (``iscrowd=1``: COCOeval does not count detections matched to it as
false positives). Predictions are the merge's instances: slot ``k`` has
mask ``instance == k + 1``, class ``instance_classes[k]`` and score
``instance_scores[k]`` (heatmap at the center x mean class probability).
Contiguous class ids serve as COCO category ids; only thing classes are
evaluated. Masks are encoded as RLE by pycocotools; COCOeval is hotcoco's
(a Rust implementation of pycocotools' COCOeval, its API and its numbers:
identical to pycocotools' on every statistic of 2000 seeded COCO-size
images and 20x faster, bench/README.md; tests/test_mask_ap.py checks it
against pycocotools' own COCOeval).

Example:
  >>> ap = StreamingMaskAP(thing_class_ids=range(11, 19))
  >>> ap.update(gt_panoptic, instance_map, instance_classes, instance_scores)
  >>> ap.result()['ap']
"""

import contextlib
import io

import hotcoco
import numpy as np
from pycocotools import mask as mask_api

from pdl_tf.evaluation.instances import predicted_instances


def _encode(mask):
  """COCO RLE of a boolean [H, W] mask, JSON-ready counts."""
  rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
  rle['counts'] = rle['counts'].decode('ascii')
  return rle


class StreamingMaskAP:
  """Accumulates instances image by image; ``result()`` runs COCOeval."""

  def __init__(self, thing_class_ids, label_divisor=1000):
    self._things = sorted(int(c) for c in thing_class_ids)
    if not self._things:
      raise ValueError('thing_class_ids is empty: mask AP needs things.')
    self._divisor = label_divisor
    self._images, self._gt, self._dt = [], [], []

  def update(self, gt_panoptic, instance_map, instance_classes,
             instance_scores):
    """Adds one image.

    Args:
      gt_panoptic: int [H, W] ground truth, class * divisor + instance.
      instance_map: int [H, W], predicted slot + 1 (0 = none).
      instance_classes: int [K], class of each slot (-1 = empty).
      instance_scores: float [K].
    """
    gt_panoptic = np.asarray(gt_panoptic)
    instance_map = np.asarray(instance_map)
    if gt_panoptic.shape != instance_map.shape:
      raise ValueError(f'ground truth {gt_panoptic.shape} and instance map '
                       f'{instance_map.shape} differ in shape.')
    image_id = len(self._images) + 1
    height, width = gt_panoptic.shape
    self._images.append({'id': image_id, 'height': height, 'width': width})
    for value in np.unique(gt_panoptic):
      cls, instance = divmod(int(value), self._divisor)
      if cls not in self._things:
        continue
      mask = gt_panoptic == value
      rle = _encode(mask)
      self._gt.append({
          'id': len(self._gt) + 1, 'image_id': image_id, 'category_id': cls,
          'segmentation': rle, 'area': float(mask.sum()),
          'bbox': mask_api.toBbox(rle).tolist(),
          'iscrowd': int(instance == 0)})
    for cls, score, mask in predicted_instances(
        instance_map, instance_classes, instance_scores):
      if cls not in self._things:  # COCOeval never matches them
        continue
      self._dt.append({'image_id': image_id, 'category_id': cls,
                       'segmentation': _encode(mask), 'score': score})

  def result(self):
    """{'ap', 'ap50', 'ap75'} as fractions (COCOeval's stats[0:3]).

    None where undefined (no ground-truth instance at all); 0.0 when there
    are ground-truth instances but no prediction.
    """
    if not any(not g['iscrowd'] for g in self._gt):
      return {'ap': None, 'ap50': None, 'ap75': None}
    if not self._dt:
      return {'ap': 0.0, 'ap50': 0.0, 'ap75': 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
      ground_truth = hotcoco.COCO({
          'images': self._images, 'annotations': self._gt,
          'categories': [{'id': c, 'name': str(c)} for c in self._things]})
      detections = ground_truth.loadRes(self._dt)
      evaluator = hotcoco.COCOeval(ground_truth, detections, 'segm')
      evaluator.evaluate()
      evaluator.accumulate()
      evaluator.summarize()
    stats = [float(s) if s >= 0 else None for s in evaluator.stats[:3]]
    return dict(zip(('ap', 'ap50', 'ap75'), stats))
