"""Save ground truth and predictions side by side in COCO panoptic format.

``pdl-eval --save_predictions DIR`` writes, per evaluated image, DIR/gt/<n>.png
and DIR/predictions/<n>.png (COCO id encoding), and at the end
DIR/gt.json and DIR/predictions.json with the same images and a category
list: the dataset's own category ids, names, file names and image ids
where they are given (else the contiguous class index, its number as the
name, and images numbered from 1 in evaluation order); isthing from the
thing classes. PNGs are named after the images (``<stem>.png``). ``pq_compute`` or panopticapi's pq_compute on the pair gives
the same PQ as the evaluation loop (tested). Crowd regions (thing class,
instance 0) are ground-truth segments with ``iscrowd: 1``; ignore pixels
are void (id 0).

Example:
  >>> writer = PanopticPairWriter('preds/', num_classes=19,
  ...                             thing_class_ids=range(11, 19))
  >>> writer.add('frankfurt_000000_000294_leftImg8bit.png', gt, prediction)
  >>> writer.close()
  >>> pq_compute(*writer.pq_compute_arguments())
"""

import json
import os

import numpy as np

from pdl_tf.labels import segment_keys
from pdl_tf.evaluation.writers import write_coco_panoptic


class PanopticPairWriter:
  """Accumulates (ground truth, prediction) pairs; ``close()`` writes JSON."""

  def __init__(self, folder, num_classes, thing_class_ids, label_divisor=1000,
               ignore_label=255, *, class_names=(), category_ids=(),
               image_ids=None):
    """Args: as the module docstring; ``class_names`` and ``category_ids``
    by class index (empty: the index), ``image_ids`` {file name: image id}
    (None or missing: numbered from 1)."""
    self._folder = folder
    self._things = frozenset(int(c) for c in thing_class_ids)
    self._classes = [int(i) for i in category_ids] or list(range(num_classes))
    self._names = list(class_names) or [str(c) for c in range(num_classes)]
    self._image_ids = dict(image_ids or {})
    self._pngs = set()
    self._divisor = label_divisor
    self._ignore = ignore_label
    self._images, self._gt, self._predictions = [], [], []

  def add(self, file_name, ground_truth, prediction):
    """Writes one image's two PNGs.

    Args:
      file_name: the image's file name (kept in the JSON 'images' list).
      ground_truth: int [H, W], class * divisor + instance, ignore as
        ignore_label * divisor; or its segment key map (segment_keys.py),
        whose segments are written apart.
      prediction: int [H, W], the merge's panoptic map (void < 0).
    """
    ground_truth = np.asarray(ground_truth, np.int64)
    image_id = self._image_ids.get(file_name, len(self._images) + 1)
    stem = os.path.splitext(os.path.basename(file_name))[0]
    png, count = f'{stem}.png', 1
    while png in self._pngs:  # images of one name in different folders
      count += 1
      png = f'{stem}_{count}.png'
    self._pngs.add(png)
    height, width = ground_truth.shape
    self._images.append({'id': image_id, 'file_name': file_name,
                         'height': height, 'width': width})
    label = segment_keys.labels_of(ground_truth, self._divisor, self._ignore)
    void = label // self._divisor == self._ignore
    self._gt.append(write_coco_panoptic(
        np.where(void, -1, ground_truth), image_id, png,
        os.path.join(self._folder, 'gt'), self._classes, self._divisor,
        crowd_class_ids=self._things,
        key_range=segment_keys.key_range(self._divisor, self._ignore)))
    self._predictions.append(write_coco_panoptic(
        prediction, image_id, png, os.path.join(self._folder, 'predictions'),
        self._classes, self._divisor))

  def close(self):
    """Writes gt.json and predictions.json."""
    categories = [{'id': category, 'name': name,
                   'isthing': int(index in self._things)}
                  for index, (category, name) in enumerate(
                      zip(self._classes, self._names))]
    for name, annotations in (('gt', self._gt),
                              ('predictions', self._predictions)):
      with open(os.path.join(self._folder, f'{name}.json'), 'w',
                encoding='utf-8') as f:
        json.dump({'images': self._images, 'annotations': annotations,
                   'categories': categories}, f)

  def pq_compute_arguments(self):
    """(gt json, predictions json, gt folder, predictions folder)."""
    join = lambda name: os.path.join(self._folder, name)
    return (join('gt.json'), join('predictions.json'), join('gt'),
            join('predictions'))
