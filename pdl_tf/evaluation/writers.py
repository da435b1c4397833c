"""Write predictions in COCO panoptic format (PNG + segments_info).

The files can be scored with ``pq_compute`` here or with the official COCO
panopticapi and cityscapesScripts (whose panoptic evaluation reads the same
format).
"""

import os

import numpy as np
from PIL import Image

from pdl_tf.labels.panoptic_format import id_map_to_rgb


def panoptic_to_segments(panoptic, category_ids, label_divisor=1000,
                         crowd_class_ids=(), key_range=None):
  """Label map (class * divisor + instance, negative = void) -> COCO ids.

  Args:
    panoptic: int [H, W], one segment per value.
    category_ids: sequence mapping class index -> dataset category id.
    label_divisor: the label encoding's divisor.
    crowd_class_ids: class indices (things) whose instance-0 segment is a
      crowd region (``iscrowd: 1``), as in ground truth; empty for
      predictions.
    key_range: with a ground-truth segment key map (segment_keys.py), its
      key range: a value's label is value % key_range.

  Returns:
    (ids uint32 [H, W] with 0 = void and segments numbered from 1,
     segments_info list of {id, category_id, iscrowd, area, bbox}).
  """
  panoptic = np.asarray(panoptic)
  ids = np.zeros(panoptic.shape, np.uint32)
  segments = []
  for value in np.unique(panoptic[panoptic >= 0]).tolist():
    label = value % key_range if key_range else value
    cls = label // label_divisor
    if cls >= len(category_ids):
      raise ValueError(f'panoptic value {value} has class {cls}, outside the '
                       f'{len(category_ids)} categories.')
    mask = panoptic == value
    ys, xs = np.nonzero(mask)
    segment_id = len(segments) + 1
    ids[mask] = segment_id
    segments.append({
        'id': segment_id, 'category_id': int(category_ids[cls]),
        'iscrowd': int(cls in crowd_class_ids and
                       label % label_divisor == 0),
        'area': int(mask.sum()),
        'bbox': [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                 int(ys.max() - ys.min() + 1)]})
  return ids, segments


def write_coco_panoptic(panoptic, image_id, file_name, folder, category_ids,
                        label_divisor=1000, crowd_class_ids=(),
                        key_range=None):
  """Writes ``folder/file_name`` (PNG) and returns its annotation dict.

  Arguments as ``panoptic_to_segments``. Collect the returned dicts as
  ``{'annotations': [...]}`` in a JSON file to obtain the predictions JSON
  of the COCO panoptic format.
  """
  ids, segments = panoptic_to_segments(panoptic, category_ids, label_divisor,
                                       crowd_class_ids, key_range)
  os.makedirs(folder, exist_ok=True)
  Image.fromarray(id_map_to_rgb(ids)).save(os.path.join(folder, file_name))
  return {'image_id': image_id, 'file_name': file_name,
          'segments_info': segments}
