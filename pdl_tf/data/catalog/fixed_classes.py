"""The class lists of the datasets whose classes are fixed, without
TensorFlow or numpy (the commands read them before TensorFlow starts).

synthetic: the embedded demo dataset (``data/readers/synthetic.py``);
cityscapes: the 19 train ids of cityscapesScripts' labels.py; COCO
panoptic: the 133 categories of ``panoptic_coco_categories.json`` (next
to this module; TFDS ``coco/2017_panoptic`` numbers its labels in this
order).
"""

import importlib.resources
import json

from pdl_tf.data.catalog.metadata import DatasetMetadata
from pdl_tf.data.catalog.metadata import metadata_from_categories

SYNTHETIC_CLASS_NAMES = ('sky', 'grass', 'road', 'disk', 'square',
                         'triangle')
SYNTHETIC_THING_CLASS_IDS = (3, 4, 5)
SYNTHETIC_COLORS = ((70, 130, 180), (60, 160, 60), (128, 64, 128),
                    (220, 40, 40), (240, 200, 30), (40, 60, 220))

# Cityscapes: (train id, name, colour) by label id 0..33; label ids not
# listed are ignored.
CITYSCAPES_LABELS = {
    7: (0, 'road', (128, 64, 128)), 8: (1, 'sidewalk', (244, 35, 232)),
    11: (2, 'building', (70, 70, 70)), 12: (3, 'wall', (102, 102, 156)),
    13: (4, 'fence', (190, 153, 153)), 17: (5, 'pole', (153, 153, 153)),
    19: (6, 'traffic light', (250, 170, 30)),
    20: (7, 'traffic sign', (220, 220, 0)),
    21: (8, 'vegetation', (107, 142, 35)), 22: (9, 'terrain', (152, 251, 152)),
    23: (10, 'sky', (70, 130, 180)), 24: (11, 'person', (220, 20, 60)),
    25: (12, 'rider', (255, 0, 0)), 26: (13, 'car', (0, 0, 142)),
    27: (14, 'truck', (0, 0, 70)), 28: (15, 'bus', (0, 60, 100)),
    31: (16, 'train', (0, 80, 100)), 32: (17, 'motorcycle', (0, 0, 230)),
    33: (18, 'bicycle', (119, 11, 32)),
}
CITYSCAPES_THING_TRAIN_IDS = tuple(range(11, 19))


def synthetic_metadata(label_divisor=1000, ignore_label=255):
  """DatasetMetadata of the synthetic classes (category id = index)."""
  return DatasetMetadata(
      class_names=list(SYNTHETIC_CLASS_NAMES),
      category_ids=list(range(len(SYNTHETIC_CLASS_NAMES))),
      is_thing=[c in SYNTHETIC_THING_CLASS_IDS
                for c in range(len(SYNTHETIC_CLASS_NAMES))],
      colors=list(SYNTHETIC_COLORS), label_divisor=label_divisor,
      ignore_label=ignore_label)


def cityscapes_metadata(label_divisor=1000, ignore_label=255):
  """DatasetMetadata of the 19 Cityscapes train classes (category id =
  Cityscapes label id)."""
  by_train_id = sorted(CITYSCAPES_LABELS.items(), key=lambda item: item[1][0])
  return DatasetMetadata(
      class_names=[name for _, (_, name, _) in by_train_id],
      category_ids=[label_id for label_id, _ in by_train_id],
      is_thing=[train_id in CITYSCAPES_THING_TRAIN_IDS
                for _, (train_id, _, _) in by_train_id],
      colors=[color for _, (_, _, color) in by_train_id],
      label_divisor=label_divisor, ignore_label=ignore_label)


def coco_categories():
  """The 133 COCO panoptic categories (id, name, isthing, color), in the
  order of the class indices."""
  path = (importlib.resources.files('pdl_tf.data.catalog') /
          'panoptic_coco_categories.json')
  return json.loads(path.read_text())


def coco_metadata(label_divisor=1000, ignore_label=255):
  """DatasetMetadata of the 133 COCO panoptic categories."""
  return metadata_from_categories(coco_categories(), label_divisor,
                                  ignore_label)
