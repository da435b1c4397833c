"""Class names by class index, for a dataset named in a config, without
reading the dataset where the names are fixed.

``pdl-predict`` writes them next to the class ids of each segment, from the
``params.yaml`` an export carries. No TensorFlow here.
"""

import importlib.resources
import json
import os

from pdl_tf.data import layouts


def coco_categories():
  """The 133 COCO panoptic categories (id, name, isthing, color), in the
  order of the class indices."""
  path = (importlib.resources.files('pdl_tf') / 'data' /
          'panoptic_coco_categories.json')
  return json.loads(path.read_text())


def class_names(dataset, path=''):
  """The class names of ``dataset`` by class index, or None if unknown.

  Args:
    dataset: ``data.dataset`` of a config.
    path: ``data.<split>.path`` (read only for ``tfrecord``: its
      metadata.json, if that folder is on this machine).

  Returns:
    A list of str, or None for datasets whose names live only in their
    annotation files (``mapillary_vistas``) or when the tfrecord folder is
    not here.
  """
  # pylint: disable=g-import-not-at-top
  if dataset == 'synthetic':
    from pdl_tf.data import synthetic
    return list(synthetic.CLASS_NAMES)
  if dataset == 'cityscapes':
    from pdl_tf.data import cityscapes
    return cityscapes.metadata().class_names
  if dataset in ('coco_panoptic', 'tfds_coco_panoptic'):
    return [category['name'] for category in coco_categories()]
  # pylint: enable=g-import-not-at-top
  if dataset == 'tfrecord' and path and os.path.isfile(
      os.path.join(path, layouts.TFRECORD_METADATA)):
    return layouts.tfrecord_class_names(path)
  return None
