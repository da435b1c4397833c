"""The files pdl-predict writes for one image.

* ``STEM_panoptic.png``: COCO panoptic encoding (segment id = R + 256 G +
  256^2 B, 0 = void), segments numbered from 1;
* ``STEM_overlay.png``: the image with each segment's colour blended in;
* ``STEM.json``: ``{file_name, height, width, segments_info}`` where each
  segment has ``id``, ``category_id`` (the model's class index),
  ``category_name`` (when known), ``isthing``, ``score`` (things:
  objectness x class probability; stuff: null), ``area`` and ``bbox``.
"""

import json
import os

import numpy as np
from PIL import Image

from pdl_tf.evaluation.writers import panoptic_to_segments
from pdl_tf.panoptic_format import id_map_to_rgb
from pdl_tf.viz import overlay


class LabelDivisorMismatch(ValueError):
  """The label divisor given is not the one the model's panoptic ids use."""


def check_label_divisor(result, label_divisor):
  """Raises unless ``result``'s panoptic ids are class * label_divisor +
  instance id: the class of the instance slot for thing pixels, of the
  semantic map for stuff, void (-1) aside.

  Args:
    result: a backend's ``predict`` output (numpy): ``panoptic``,
      ``semantic``, ``instance`` [H, W] and ``instance_classes`` [K].
    label_divisor: the divisor the ids are to be read with.

  Raises:
    LabelDivisorMismatch: naming the divisor given and the one the ids were
      made with (when a pixel of a class above 0 shows it).
  """
  panoptic, instance = result['panoptic'], result['instance']
  slot_classes = np.concatenate([[0], result['instance_classes']])
  classes = np.where(instance > 0,
                     slot_classes[np.clip(instance, 0, len(slot_classes) - 1)],
                     result['semantic']).astype(np.int64)
  valid = panoptic >= 0
  if np.array_equal(panoptic[valid], classes[valid] * label_divisor +
                    instance[valid]):
    return
  shown = valid & (classes > 0)
  if not shown.any():
    raise LabelDivisorMismatch(
        f'label divisor {label_divisor} does not fit the model: its '
        f'panoptic ids are not class x {label_divisor} + instance.')
  first = np.argmax(shown.reshape(-1))
  used = int((panoptic.reshape(-1)[first] - instance.reshape(-1)[first]) //
             classes.reshape(-1)[first])
  raise LabelDivisorMismatch(
      f'label divisor {label_divisor} does not fit the model: its panoptic '
      f'ids are class x {used} + instance; give --label_divisor {used} or '
      'leave it out.')


def write_prediction(image, result, stem, folder, *, label_divisor,
                     class_names=None):
  """Writes the three files of one image; returns the JSON dict.

  Args:
    image: uint8 [H, W, 3], the input image.
    result: a backend's ``predict`` output (numpy, original size).
    stem: file name without extension.
    folder: output folder (created).
    label_divisor: panoptic = class * label_divisor + instance id.
    class_names: optional sequence of class names by class index.
  """
  panoptic, instance = result['panoptic'], result['instance']
  num_classes = int(panoptic.max()) // label_divisor + 1 if (
      panoptic.max() >= 0) else 0
  if class_names is not None:
    num_classes = max(num_classes, len(class_names))
  ids, segments = panoptic_to_segments(panoptic, range(num_classes),
                                       label_divisor)
  for segment in segments:
    mask = ids == segment['id']
    slot = int(instance[mask].max())  # 0 for stuff, the instance id else
    segment['isthing'] = slot > 0
    segment['score'] = (float(result['instance_scores'][slot - 1])
                        if slot > 0 else None)
    if class_names is not None:
      segment['category_name'] = class_names[segment['category_id']]
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
