"""Class names by class index, for a dataset named in a config, without
reading the dataset where the names are fixed.

``pdl-predict`` writes them next to the class ids of each segment, from the
``params.yaml`` an export carries. No TensorFlow here.
"""

import importlib.resources
import json
import os

from pdl_tf.data import classes_file
from pdl_tf.data import layouts


def coco_categories():
  """The 133 COCO panoptic categories (id, name, isthing, color), in the
  order of the class indices."""
  path = (importlib.resources.files('pdl_tf') / 'data' /
          'panoptic_coco_categories.json')
  return json.loads(path.read_text())


def class_names(dataset, path='', split=''):
  """The class names of ``dataset`` by class index, or None if unknown.

  Args:
    dataset: ``data.dataset`` of a config.
    path: ``data.<split>.path``, read where the names live in the dataset's
      files and that folder is on this machine: a ``tfrecord`` folder's
      metadata.json, a ``panoptic_pngs`` classes file, a ``coco_instances``
      split's JSON files (with ``split``).
    split: ``data.<split>.split`` (for ``coco_instances``).

  Returns:
    A list of str, or None for ``mapillary_vistas`` (its names live only
    in its annotation files), for ``coco_instances`` without a split, or
    when the folder is not here.

  Raises:
    ValueError: a classes file or JSON that is there but malformed.
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
  if not path or not os.path.isdir(path):
    return None
  if dataset == 'tfrecord' and os.path.isfile(
      os.path.join(path, layouts.TFRECORD_METADATA)):
    return layouts.tfrecord_class_names(path)
  if dataset == 'panoptic_pngs':
    return [c['name'] for c in
            classes_file.read_classes(layouts.panoptic_pngs_classes_file(path))]
  if dataset == 'coco_instances' and split:
    return [c['name'] for c in _instances_categories(path, split)]
  return None


def _instances_categories(root, split):
  """The categories of a coco_instances split, in class order."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data import instances_json
  from pdl_tf.panoptic_format import load_json
  # pylint: enable=g-import-not-at-top
  json_file, _, stuff_file, _ = layouts.coco_instances_split_files(root,
                                                                   split)
  stuff = load_json(stuff_file, 'COCO stuff') if stuff_file else None
  return instances_json.split_categories(
      load_json(json_file, 'COCO instances'), json_file, stuff,
      stuff_file or '')
