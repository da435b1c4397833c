"""Write predictions in the result formats of cityscapesScripts.

For image ``stem`` (e.g. ``frankfurt_000000_000294``):
  semantic/<stem>.png           uint8 Cityscapes *label ids* per pixel, for
                                evalPixelLevelSemanticLabeling;
  instance/<stem>_pred.txt      one line per instance, ``masks/<stem>_<k>.png
                                <label id> <score>``, for
                                evalInstanceLevelSemanticLabeling;
  instance/masks/<stem>_<k>.png uint8 mask (255 inside, 0 outside).
Panoptic results use the COCO panoptic format (``writers.py``), which
cityscapesScripts' evalPanopticSemanticLabeling reads.

Example:
  >>> write_cityscapes_results(stem, 'results/', semantic, instance_map,
  ...     classes, scores, label_ids=cityscapes.metadata().category_ids)
"""

import os

import numpy as np
from PIL import Image

from pdl_tf.evaluation.instances import predicted_instances


def write_cityscapes_results(stem, folder, semantic, instance_map,
                             instance_classes, instance_scores, label_ids):
  """Writes the semantic PNG and the instance list + masks of one image.

  Args:
    stem: image name without ``_leftImg8bit.png``.
    folder: results root (created).
    semantic: int [H, W] train ids (the merge's ``semantic``).
    instance_map: int [H, W], instance slot + 1 (0 = none).
    instance_classes: int [K] train id per slot (-1 = empty).
    instance_scores: float [K].
    label_ids: sequence, train id -> Cityscapes label id.

  Returns:
    the number of instances written.

  Raises:
    ValueError: a train id outside label_ids.
  """
  semantic = np.asarray(semantic)
  table = np.asarray(label_ids, np.int64)
  if semantic.min() < 0 or semantic.max() >= len(table):
    raise ValueError(f'{stem}: semantic train ids {semantic.min()}..'
                     f'{semantic.max()} outside 0..{len(table) - 1}.')
  os.makedirs(os.path.join(folder, 'semantic'), exist_ok=True)
  os.makedirs(os.path.join(folder, 'instance', 'masks'), exist_ok=True)
  Image.fromarray(table[semantic].astype(np.uint8)).save(
      os.path.join(folder, 'semantic', f'{stem}.png'))
  lines = []
  for cls, score, mask in predicted_instances(instance_map, instance_classes,
                                             instance_scores):
    if cls >= len(table):
      raise ValueError(f'{stem}: instance class {cls} outside 0..'
                       f'{len(table) - 1}.')
    name = f'masks/{stem}_{len(lines)}.png'
    Image.fromarray(mask.astype(np.uint8) * 255).save(
        os.path.join(folder, 'instance', name))
    lines.append(f'{name} {int(table[cls])} {score:.6f}')
  with open(os.path.join(folder, 'instance', f'{stem}_pred.txt'), 'w',
            encoding='utf-8') as f:
    f.write(''.join(line + '\n' for line in lines))
  return len(lines)
