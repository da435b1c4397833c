"""Cityscapes gtFine instanceIds -> panoptic labels with the 19 train ids.

``*_gtFine_instanceIds.png`` stores label_id * 1000 + k for the pixels of
the k-th instance of a thing class, k counted from 0 (the first car is
26000, the second 26001), and the bare label_id (< 1000) for stuff and for
crowd ("group") regions: cityscapesScripts' conventions (its
createPanopticImgs marks a segment as crowd exactly when its id is < 1000,
and its instance evaluation treats ids >= 1000 as instances). In the package
encoding instance k becomes instance k + 1 (0 is crowd there). Train ids
follow cityscapesScripts' labels.py: 19 classes, things = person, rider,
car, truck, bus, train, motorcycle, bicycle (train ids 11..18); every other
label id is ignored (255).

Example:
  >>> meta, examples = read_cityscapes('/data/cityscapes', 'val')
"""

import functools
import glob
import os

import numpy as np
from PIL import Image

from pdl_tf.data.catalog import fixed_classes
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import load_all
from pdl_tf.data.readers.coco_panoptic import PanopticExample
from pdl_tf.data.readers.coco_panoptic import read_image_and_label

_LABELS = fixed_classes.CITYSCAPES_LABELS
NUM_LABEL_IDS = 34
THING_TRAIN_IDS = fixed_classes.CITYSCAPES_THING_TRAIN_IDS
metadata = fixed_classes.cityscapes_metadata


def train_id_table(ignore_label=255):
  """int32 [34]: label id -> train id (ignore_label where not trained)."""
  table = np.full(NUM_LABEL_IDS, ignore_label, np.int32)
  for label_id, (train_id, _, _) in _LABELS.items():
    table[label_id] = train_id
  return table


def panoptic_from_instance_ids(instance_ids, label_divisor=1000,
                               ignore_label=255, where='instanceIds map'):
  """Maps a gtFine instanceIds array to the package's panoptic encoding.

  Args:
    instance_ids: int [H, W] as stored in ``*_gtFine_instanceIds.png``:
      label_id * 1000 + k for instance k (from 0), label_id for stuff and
      crowd.
    label_divisor: the package encoding's divisor.
    ignore_label: train id of pixels not trained.
    where: the file, for error messages.

  Returns:
    int32 [H, W]: train_id * label_divisor + k + 1 for instance k of a
    trained thing class, train_id * label_divisor for stuff and crowd,
    ignore_label * label_divisor where the label is not trained.

  Raises:
    ValueError: a label id outside 0..33, or an instance k + 1 that reaches
      label_divisor (it would spill into the next class); the message names
      ``where``, the label id or the class and its instance count.
  """
  instance_ids = np.asarray(instance_ids, np.int64)
  is_instance = instance_ids >= 1000
  label_ids = np.where(is_instance, instance_ids // 1000, instance_ids)
  instances = np.where(is_instance, instance_ids % 1000 + 1, 0)
  bad = np.unique(label_ids[(label_ids < 0) | (label_ids >= NUM_LABEL_IDS)])
  if bad.size:
    raise ValueError(f'{where}: unknown Cityscapes label ids {bad.tolist()}.')
  train_ids = train_id_table(ignore_label)[label_ids]
  is_thing = np.isin(train_ids, THING_TRAIN_IDS)
  instances = np.where(is_thing, instances, 0)
  _check_instances(instance_ids, train_ids, instances, label_divisor, where)
  panoptic = train_ids * label_divisor + instances
  return panoptic.astype(np.int32)


def _check_instances(instance_ids, train_ids, instances, label_divisor,
                     where):
  """Raises if an instance number reaches label_divisor (names the class,
  the largest instanceIds value and the class's instance count)."""
  if instances.max(initial=0) < label_divisor:
    return
  over = instances >= label_divisor
  train_id = int(train_ids[over].min())
  of_class = instance_ids[(train_ids == train_id) & (instances > 0)]
  names = {t: name for t, name, _ in _LABELS.values()}
  raise ValueError(
      f'{where}: class {train_id} ({names[train_id]!r}) has '
      f'{np.unique(of_class).size} instances, ids up to {of_class.max()} '
      f'(instance {of_class.max() % 1000 + 1} in the package encoding); '
      f'label_divisor {label_divisor} allows instances 1..{label_divisor - 1}'
      ' per class; raise the label divisor (data.label_divisor, pdl-data '
      '--label_divisor).')


def _read_instance_ids(path):
  with Image.open(path) as label:
    return np.asarray(label, np.int64)


def _load_example(image_id, image_path, label_path, label_divisor,
                  ignore_label):
  """Reads one image and its instanceIds PNG: a PanopticExample."""
  if not os.path.isfile(label_path):
    raise ValueError(f'{image_path} has no label {label_path}.')
  image, instance_ids = read_image_and_label(image_path, _read_instance_ids,
                                             label_path)
  panoptic = panoptic_from_instance_ids(instance_ids, label_divisor,
                                        ignore_label, label_path)
  return PanopticExample(image_id, os.path.basename(image_path), image,
                         panoptic)


def list_cityscapes(root, split, label_divisor=1000, ignore_label=255):
  """Metadata and one ExampleSource per image of a split (nothing read).

  Expects ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``root/gtFine/<split>/<city>/*_gtFine_instanceIds.png``.

  Raises:
    FileNotFoundError: a split folder is missing, or holds no image
      (layouts.py).
    ValueError (from a source's ``load()``): a label missing or of another
      size (naming the file).
  """
  pattern = layouts.cityscapes_image_pattern(root, split)
  image_paths = sorted(glob.glob(pattern))
  sources = []
  for image_id, image_path in enumerate(image_paths):
    stem = os.path.basename(image_path)[:-len('_leftImg8bit.png')]
    city = os.path.basename(os.path.dirname(image_path))
    label_path = os.path.join(root, 'gtFine', split, city,
                              f'{stem}_gtFine_instanceIds.png')
    sources.append(ExampleSource(
        os.path.basename(image_path),
        functools.partial(_load_example, image_id, image_path, label_path,
                          label_divisor, ignore_label)))
  return metadata(label_divisor, ignore_label), sources


def read_cityscapes(root, split, label_divisor=1000, ignore_label=255):
  """Metadata and a lazy iterator of PanopticExample for one split."""
  meta, sources = list_cityscapes(root, split, label_divisor, ignore_label)
  return meta, load_all(sources)
