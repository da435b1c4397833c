"""The files pdl-predict writes for one image.

* ``STEM_panoptic.png``: COCO panoptic encoding (segment id = R + 256 G +
  256^2 B, 0 = void), segments numbered from 1;
* ``STEM_overlay.png``: the image with each segment's colour blended in;
* ``STEM.json``: ``{file_name, height, width, segments_info}`` where each
  segment has ``id``, ``category_id`` (the dataset's own category id when
  the export names it, else the class index), ``class_index`` (the model's
  contiguous class), ``category_name`` (when known), ``isthing``,
  ``score`` (things:
  objectness x class probability; stuff: null), ``area`` and ``bbox``.
"""

import json
import os

from PIL import Image

from pdl_tf.evaluation.writers import panoptic_to_segments
from pdl_tf.panoptic_format import id_map_to_rgb
from pdl_tf.viz import overlay


def write_prediction(image, result, stem, folder, *, label_divisor,
                     class_names=None, category_ids=None):
  """Writes the three files of one image; returns the JSON dict.

  Args:
    image: uint8 [H, W, 3], the input image.
    result: a backend's ``predict`` output (numpy, original size).
    stem: file name without extension.
    folder: output folder (created).
    label_divisor: panoptic = class * label_divisor + instance id.
    class_names: optional sequence of class names by class index.
    category_ids: optional sequence of the dataset's category ids by class
      index (written as ``category_id``; the class index otherwise).
  """
  panoptic, instance = result['panoptic'], result['instance']
  num_classes = int(panoptic.max()) // label_divisor + 1 if (
      panoptic.max() >= 0) else 0
  if class_names is not None:
    num_classes = max(num_classes, len(class_names))
  ids, segments = panoptic_to_segments(panoptic, range(num_classes),
                                       label_divisor)
  for segment in segments:
    index = segment['class_index'] = segment['category_id']
    if category_ids is not None:
      segment['category_id'] = int(category_ids[index])
    mask = ids == segment['id']
    slot = int(instance[mask].max())  # 0 for stuff, the instance id else
    segment['isthing'] = slot > 0
    segment['score'] = (float(result['instance_scores'][slot - 1])
                        if slot > 0 else None)
    if class_names is not None:
      segment['category_name'] = class_names[index]
  os.makedirs(folder, exist_ok=True)
  Image.fromarray(id_map_to_rgb(ids)).save(
      os.path.join(folder, f'{stem}_panoptic.png'))
  Image.fromarray(overlay(image, ids)).save(
      os.path.join(folder, f'{stem}_overlay.png'))
  record = {'file_name': f'{stem}_panoptic.png', 'height': ids.shape[0],
            'width': ids.shape[1], 'segments_info': segments}
  with open(os.path.join(folder, f'{stem}.json'), 'w',
            encoding='utf-8') as f:
    json.dump(record, f, indent=1)
  return record
