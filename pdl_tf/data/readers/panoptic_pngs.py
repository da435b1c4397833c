"""Reader for semantic + instance-id PNG pairs (``data.dataset:
panoptic_pngs``), Cityscapes-like labels in a plain layout.

Layout (``layouts.panoptic_pngs_split_files``)::

  root/classes.yaml (or classes.json)   the classes (classes_file.py)
  root/<split>/images/<stem>.<jpg|jpeg|png|bmp|gif|webp>
  root/<split>/semantic/<stem>.png      pixel = class id, 255 = unlabeled
  root/<split>/instance/<stem>.png      pixel = instance id, 0 = none

Both PNGs are one channel, 8 or 16 bit (gray or palette indices), in the
image's stored frame (or already upright: ``read_image_and_label``).

Labels (package encoding, class * label_divisor + instance): a semantic
value maps to its class index (the classes file's order); 255 is void. On a
thing class, instance value 0 is a crowd region (instance 0) and every other
value is one instance; the instances of a class are renumbered 1, 2, ... in
increasing order of their instance-PNG values (the values themselves may be
any numbers; the same value on two classes is two instances). On a stuff
class the instance value must be 0; on void pixels it is ignored.

Errors (ValueError or FileNotFoundError naming the file): an image without
its semantic or instance PNG or a PNG without its image (at listing), two
images with one stem, PNGs whose sizes differ, a semantic value not in the
classes file (with its pixel count), an instance id on a stuff class.

Example:
  >>> meta, sources = list_panoptic_pngs('/data/pairs', 'train')
"""

import collections
import functools
import os

import numpy as np

from pdl_tf.data.formats import classes_file
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers.coco_panoptic import check_instance_counts
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import metadata_from_categories
from pdl_tf.data.readers.coco_panoptic import PanopticExample
from pdl_tf.data.readers.coco_panoptic import read_image_and_label
from pdl_tf.labels.panoptic_format import read_index_png

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')


def _class_map(semantic, meta, path):
  """int32 [H, W] class indices of a semantic map, -1 where void."""
  index = {c: i for i, c in enumerate(meta.category_ids)}
  present, inverse, counts = np.unique(semantic, return_inverse=True,
                                       return_counts=True)
  table = np.full(len(present), -1, np.int32)
  for k, (value, count) in enumerate(zip(present.tolist(), counts.tolist())):
    if value == classes_file.UNLABELED:
      continue
    if value not in index:
      raise ValueError(f'{path}: value {value} ({count} pixels) is not a '
                       'class id of the classes file (255 = unlabeled).')
    table[k] = index[value]
  return table[inverse.reshape(-1)].reshape(semantic.shape)


def label_from_pngs(semantic, instance, meta, semantic_path, instance_path):
  """Semantic + instance-id maps -> int32 label in the package encoding.

  Args:
    semantic: int [H, W] class ids (255 = void).
    instance: int [H, W] instance ids (0 = none).
    meta: DatasetMetadata (category_ids = the classes file's ids).
    semantic_path, instance_path: the files, for messages.

  Returns:
    int32 [H, W].

  Raises:
    ValueError: a value not in the classes file, an instance id on a stuff
    class, more instances of a class than the label divisor allows.
  """
  classes = _class_map(semantic, meta, semantic_path)
  instance = instance.astype(np.int64)
  is_thing = np.array(meta.is_thing + [False])  # [-1] -> void: not a thing
  thing = is_thing[classes]
  on_stuff = (classes >= 0) & ~thing & (instance != 0)
  if on_stuff.any():
    cls = int(classes[on_stuff][0])
    count = int(np.count_nonzero(on_stuff & (classes == cls)))
    raise ValueError(
        f'{instance_path}: {count} pixels of stuff class '
        f'{meta.category_ids[cls]} ({meta.class_names[cls]!r}) have an '
        f'instance id (e.g. {int(instance[on_stuff][0])}); stuff takes 0.')
  void = meta.ignore_label * meta.label_divisor
  label = np.where(classes >= 0, classes * meta.label_divisor, void)
  span = int(instance.max()) + 1
  keys = np.where(thing & (instance > 0), classes * span + instance, -1)
  present, inverse = np.unique(keys, return_inverse=True)
  values = np.zeros(len(present), np.int64)
  instances = collections.Counter()
  for k, key in enumerate(present.tolist()):  # sorted: class, then id
    if key >= 0:
      instances[key // span] += 1
      values[k] = key // span * meta.label_divisor + instances[key // span]
  check_instance_counts(instances, meta, instance_path)
  label = np.where(keys >= 0, values[inverse.reshape(-1)].reshape(
      keys.shape), label)
  return label.astype(np.int32)


def _read_pair(semantic_path, instance_path, meta):
  """The label of a semantic PNG and its instance PNG."""
  semantic = read_index_png(semantic_path, 'semantic PNG')
  instance = read_index_png(instance_path, 'instance PNG')
  if semantic.shape != instance.shape:
    raise ValueError(f'{semantic_path} is {semantic.shape[1]}x'
                     f'{semantic.shape[0]} but {instance_path} is '
                     f'{instance.shape[1]}x{instance.shape[0]}.')
  return label_from_pngs(semantic, instance, meta, semantic_path,
                         instance_path)


def _load_example(image_id, name, image_path, label_paths, meta):
  """Reads one image and its PNG pair: a PanopticExample."""
  semantic_path, instance_path = label_paths
  image, label = read_image_and_label(
      image_path, lambda path: _read_pair(path, instance_path, meta),
      semantic_path)
  return PanopticExample(image_id, name, image, label)


def _stems(folder, extensions):
  """{stem: file name} of the files in ``folder`` with ``extensions``.

  Raises:
    ValueError: two files share a stem.
  """
  stems = {}
  for name in sorted(os.listdir(folder)):
    stem, extension = os.path.splitext(name)
    if extension.lower() not in extensions:
      continue
    if stem in stems:
      raise ValueError(f'{folder}: {stems[stem]} and {name} share the stem '
                       f'{stem!r}; keep one.')
    stems[stem] = name
  return stems


def _pairs(image_folder, semantic_folder, instance_folder):
  """[(stem, image file)] sorted by stem, every file of each stem there.

  Raises:
    ValueError: a stem lacks its image, semantic or instance file.
  """
  images = _stems(image_folder, IMAGE_EXTENSIONS)
  folders = ((image_folder, images, '<stem>.jpg'),
             (semantic_folder, _stems(semantic_folder, ('.png',)),
              '<stem>.png'),
             (instance_folder, _stems(instance_folder, ('.png',)),
              '<stem>.png'))
  every = set().union(*(stems for _, stems, _ in folders))
  for stem in sorted(every):
    for folder, stems, pattern in folders:
      if stem not in stems:
        other = next(os.path.join(f, s[stem]) for f, s, _ in folders
                     if stem in s)
        raise ValueError(
            f'{other} has no pair file in {folder} (expected '
            f'{os.path.join(folder, pattern.replace("<stem>", stem))}).')
  return sorted(images.items())


def list_panoptic_pngs(root, split, label_divisor=1000, ignore_label=255):
  """Metadata (the classes file) and one ExampleSource per image, by stem.

  Raises:
    FileNotFoundError: a missing classes file or folder. ValueError: a bad
    classes file, a missing pair file, no images. A source's ``load()``
    raises for its own bad files.
  """
  classes, image_folder, semantic_folder, instance_folder = (
      layouts.panoptic_pngs_split_files(root, split))
  meta = metadata_from_categories(classes_file.read_classes(classes),
                                  label_divisor, ignore_label)
  pairs = _pairs(image_folder, semantic_folder, instance_folder)
  if not pairs:
    raise ValueError(f'{image_folder}: no images (expected '
                     f'{", ".join(IMAGE_EXTENSIONS)} files).')
  sources = [ExampleSource(name, functools.partial(
      _load_example, image_id, name, os.path.join(image_folder, name),
      (os.path.join(semantic_folder, stem + '.png'),
       os.path.join(instance_folder, stem + '.png')), meta))
             for image_id, (stem, name) in enumerate(pairs)]
  return meta, sources
