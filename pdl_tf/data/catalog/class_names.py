"""Class names (and colours) of the datasets whose classes are fixed, by
class index.

``pdl-predict`` names the segments of an export whose params.yaml predates
``data.class_names`` with these. No TensorFlow here.
"""

from pdl_tf.data.catalog import fixed_classes


def class_names(dataset):
  """The class names of a dataset whose classes are fixed, by class index,
  or None for any other (their names live in their annotation files, and
  reach an export's params.yaml as ``data.class_names`` from the training
  data).

  Args:
    dataset: ``data.dataset`` of a config.

  Returns:
    A list of str or None.
  """
  if dataset == 'synthetic':
    return list(fixed_classes.SYNTHETIC_CLASS_NAMES)
  if dataset == 'cityscapes':
    return fixed_classes.cityscapes_metadata().class_names
  if dataset == 'tfds_coco_panoptic':
    return [category['name'] for category in fixed_classes.coco_categories()]
  return None


def class_colors(dataset):
  """The class colours ('#rrggbb') of a dataset whose classes are fixed, by
  class index, or None for any other (theirs reach an export's params.yaml
  as ``data.class_colors``)."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.data.catalog import dataset_classes
  if dataset not in dataset_classes.FIXED_DATASETS:
    return None
  return list(dataset_classes.dataset_colors(
      dataset_classes.read_metadata(dataset, '', '')))
