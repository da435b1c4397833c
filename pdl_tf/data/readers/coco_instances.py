"""Reader for COCO *instances* JSON (``data.dataset: coco_instances``), the
format CVAT, Label Studio, Roboflow and labelme2coco export, with optional
stuff.

Layout (``layouts.coco_instances_split_files``)::

  root/annotations/instances_<split>.json   images, annotations, categories
  root/<split>/<file_name>                  the images
  root/annotations/stuff_<split>.json       optional: COCO-Stuff-style JSON
  root/annotations/stuff_<split>/<stem>.png optional: stuff PNGs (not both)

Classes (``instances_json``): instances JSON categories without ``isthing``
or with isthing 1 are things; with ``"isthing": 0`` they are stuff (their
annotations are stuff regions). A stuff JSON's categories are stuff, except
COCO-Stuff's 'other' (id 183), which is ignored. Class indices: the
instances JSON's categories as listed, then the stuff JSON's it does not
list already (``instances_json`` module docstring). ``DatasetMetadata.category_ids``
keeps the original ids, ``class_names`` the names, ``colors`` the ``color``
of each category ((0, 0, 0) where none is given).

Stuff PNGs: one per image, ``<file_name without its extension>.png``
(subfolders mirrored), 8 or 16 bit, one channel,
in the JSON's width x height; a pixel holds a stuff category id, which the
instances JSON must declare as a category with ``"isthing": 0``; 0 and 255
are unlabeled, and a thing category's id is taken as unlabeled too (things
come from the instances). Every image needs its PNG.

Labels (package encoding, class * label_divisor + instance): masks come from
``pycocotools.mask`` (polygons, compressed and uncompressed RLE).
Non-crowd things are numbered 1.. per class in the JSON's annotation order;
``iscrowd: 1`` annotations of a thing class are its instance 0 (crowd);
stuff is instance 0. Pixels no annotation covers are void (ignore_label *
label_divisor). An image without annotations is still an example (all void,
or all stuff from its PNG).

Overlaps, one rule: non-crowd things win over crowd regions, which win over
stuff; between annotations of the same kind the smallest (in pixels) wins,
and of two the same size the one with the higher annotation id. A stuff PNG
lies under every annotation. ``PanopticExample.stats['overlap_pixels']`` counts the
pixels claimed by more than one annotation of the JSON files.

The label is built in the JSON's width x height, the image's stored frame,
and turned with the image by its EXIF orientation
(``coco_panoptic.read_image_and_label``).

Example:
  >>> meta, sources = list_coco_instances('/data/mine', 'train')
  >>> example = sources[0].load(); example.stats['overlap_pixels']
"""

import functools
import os

import numpy as np
from pycocotools import mask as mask_api

from pdl_tf.data.formats import instances_json
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers.coco_panoptic import check_instance_counts
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import metadata_from_categories
from pdl_tf.data.readers.coco_panoptic import PanopticExample
from pdl_tf.data.readers.coco_panoptic import read_image_and_label
from pdl_tf.labels.panoptic_format import read_index_png

# Painting order: a later tier wins a pixel.
_STUFF, _CROWD, _THING = 0, 1, 2


def segment_rle(segment, height, width):
  """The compressed RLE of a checked Segment, as pycocotools' annToRLE."""
  segmentation = segment.segmentation
  if isinstance(segmentation, list):  # polygons: one RLE each, merged
    return mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
  if isinstance(segmentation['counts'], list):  # uncompressed
    return mask_api.frPyObjects(segmentation, height, width)
  return dict(segmentation, counts=segmentation['counts'].encode())


def _decode(rle, segment):
  """bool [H, W] of an RLE; pycocotools' refusal named by annotation."""
  try:
    return mask_api.decode(rle).astype(bool)
  except ValueError as e:
    raise ValueError(f'{segment.source}: annotation {segment.annotation_id}:'
                     f' {e}.') from e


def read_stuff_png(path, height, width, meta):
  """Class indices [H, W] (int32, -1 = unlabeled) of a stuff PNG.

  Raises:
    FileNotFoundError: no such file. ValueError: not a one-channel 8/16-bit
    PNG, a size other than width x height, or a value that is no declared
    category (the file, the value and its pixel count named).
  """
  values = read_index_png(path, 'stuff PNG')
  if values.shape != (height, width):
    raise ValueError(f'{path} is {values.shape[1]}x{values.shape[0]} but '
                     f'the JSON gives its image {width}x{height}.')
  present, inverse, counts = np.unique(values, return_inverse=True,
                                       return_counts=True)
  index = {c: i for i, c in enumerate(meta.category_ids)}
  table = np.full(len(present), -1, np.int32)
  for k, (value, count) in enumerate(zip(present.tolist(), counts.tolist())):
    if value in (0, 255) or (value in index and meta.is_thing[index[value]]):
      continue
    if value not in index:
      raise ValueError(f'{path}: value {value} ({count} pixels) is no '
                       'category of the instances JSON (stuff categories '
                       'are declared there with "isthing": 0).')
    table[k] = index[value]
  return table[inverse.reshape(-1)].reshape(values.shape)


def _painting(entry, meta, where):
  """(tier, -area, annotation id, position, label value, rle, segment) per
  annotation, in painting order (each wins over those before it), checking
  for empty masks and instance counts."""
  index = {c: i for i, c in enumerate(meta.category_ids)}
  instances, painting = {}, []
  for order, segment in enumerate(entry.segments):
    rle = segment_rle(segment, entry.height, entry.width)
    area = int(mask_api.area(rle))
    if area == 0:
      raise ValueError(f'{segment.source}: annotation '
                       f'{segment.annotation_id}: empty mask (it covers no '
                       f'pixel of the {entry.width}x{entry.height} image).')
    cls = index[segment.category_id]
    tier, instance = _STUFF, 0
    if meta.is_thing[cls] and segment.iscrowd:
      tier = _CROWD
    elif meta.is_thing[cls]:
      tier, instance = _THING, instances.get(cls, 0) + 1
      instances[cls] = instance
    painting.append((tier, -area, segment.annotation_id, order,
                     cls * meta.label_divisor + instance, rle, segment))
  check_instance_counts(instances, meta, where)
  return sorted(painting, key=lambda p: p[:4])


def panoptic_label(entry, meta, stuff_classes=None, where=''):
  """The label of one image in its JSON frame, and its overlap count.

  Args:
    entry: instances_json.ImageEntry.
    meta: DatasetMetadata of the split.
    stuff_classes: int32 [H, W] class indices of a stuff PNG (-1 =
      unlabeled), or None.
    where: the image, for messages.

  Returns:
    (int32 [height, width] label, int pixels claimed by more than one
    annotation).

  Raises:
    ValueError: an empty mask or an RLE pycocotools refuses (file and
    annotation id named), more instances than the label divisor allows.
  """
  void = meta.ignore_label * meta.label_divisor
  label = np.full((entry.height, entry.width), void, np.int32)
  if stuff_classes is not None:
    label = np.where(stuff_classes >= 0,
                     stuff_classes * meta.label_divisor, void).astype(np.int32)
  claims = np.zeros((entry.height, entry.width), np.int32)
  for *_, value, rle, segment in _painting(entry, meta, where):
    mask = _decode(rle, segment)
    label[mask] = value
    claims += mask
  return label, int(np.count_nonzero(claims > 1))


def _load_example(entry, image_folder, stuff_folder, meta, json_file):
  """Reads one image and rasterises its annotations: a PanopticExample."""
  where = f'{json_file}: image {entry.image_id} ({entry.file_name})'
  stats = {}

  def read_label(_):
    stuff = None
    if stuff_folder is not None:
      stuff = read_stuff_png(
          instances_json.stuff_png_path(stuff_folder, entry.file_name),
          entry.height, entry.width, meta)
    label, stats['overlap_pixels'] = panoptic_label(entry, meta, stuff,
                                                    where)
    return label

  image, label = read_image_and_label(
      os.path.join(image_folder, entry.file_name), read_label,
      f'the label of {where}')
  return PanopticExample(entry.image_id, entry.file_name, image, label,
                         stats)


def list_coco_instances(root, split, label_divisor=1000, ignore_label=255,
                        problems=None):
  """Metadata and one ExampleSource per image of the instances JSON.

  ``problems``: None, or a list that collects the bad annotations'
  messages instead of raising at the first (``instances_json.parse_split``).

  Raises:
    FileNotFoundError: a missing JSON or image folder.
    ValueError: a bad JSON or annotation (``instances_json.parse_split``),
      an image file or stuff PNG that does not exist, an empty image list,
      too many categories for ignore_label. A source's ``load()`` raises
      for an empty polygon mask, a bad image or stuff PNG.
  """
  json_file, image_folder, stuff_file, stuff_folder = (
      layouts.coco_instances_split_files(root, split))
  parsed = instances_json.parse_split(json_file, stuff_file, stuff_folder,
                                     problems)
  if not parsed.images:
    raise ValueError(f'{json_file}: no images.')
  meta = metadata_from_categories(parsed.categories, label_divisor,
                                  ignore_label)
  names = [image.file_name for image in parsed.images]
  k = instances_json.first_missing(image_folder, names)
  if k is not None:
    raise ValueError(f'{json_file}: image {parsed.images[k].image_id}: the '
                     'image file '
                     f'{os.path.join(image_folder, names[k])!r} does not '
                     'exist.')
  if stuff_folder is not None:
    pngs = [instances_json.stuff_png_path(stuff_folder, n) for n in names]
    k = instances_json.first_missing(stuff_folder, pngs)
    if k is not None:
      raise ValueError(f'{json_file}: image {parsed.images[k].image_id} '
                       f'({names[k]}) has no stuff PNG: {pngs[k]!r} does '
                       'not exist.')
  sources = [ExampleSource(entry.file_name, functools.partial(
      _load_example, entry, image_folder, stuff_folder, meta, json_file),
                           entry.image_id) for entry in parsed.images]
  return meta, sources
