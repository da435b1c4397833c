"""Reader for datasets in COCO panoptic format (COCO, Mapillary Vistas, ...).

A dataset is a panoptic JSON (images, annotations with segments_info,
categories with isthing), a folder of panoptic PNGs and a folder of images.
Category ids are mapped to contiguous class ids in the order of the JSON's
``categories`` list; labels use the package encoding (class * label_divisor
+ instance; crowd = thing class with instance 0; void = ignore_label *
label_divisor).

Example:
  >>> meta, examples = read_coco_panoptic('panoptic_val2017.json',
  ...     'val2017/', 'panoptic_val2017/')
  >>> for example in examples: example.image, example.panoptic
  >>> meta, sources = list_coco_panoptic(...)   # one lazy loader per image
"""

import dataclasses
import functools
import os
from typing import Callable, Iterator, Optional

import numpy as np

from pdl_tf.labels import segment_keys
from pdl_tf.data.catalog.metadata import DatasetMetadata  # pylint: disable=unused-import
from pdl_tf.data.catalog.metadata import metadata_from_categories
from pdl_tf.data.decoding import image_decode
from pdl_tf.labels.panoptic_format import check_areas
from pdl_tf.labels.json_file import load_json
from pdl_tf.labels.panoptic_format import parse_segments
from pdl_tf.labels.panoptic_format import read_id_map


@dataclasses.dataclass
class PanopticExample:
  """One image and its label: uint8 [H, W, 3] and int32 [H, W].

  ``stats`` holds a reader's counts about the label, e.g. ``coco_instances``'
  'overlap_pixels' (pixels claimed by more than one annotation); empty for
  readers that count nothing. ``make_segment_keys``: where the reader
  knows segments that the label encoding merges (several stuff or crowd
  segments of a class, as COCO panoptic files list them), a function that
  returns their segment key map (or None when there are none);
  ``segment_key_map()`` calls it.
  """
  image_id: int
  file_name: str
  image: np.ndarray
  panoptic: np.ndarray
  stats: dict = dataclasses.field(default_factory=dict)
  make_segment_keys: Optional[Callable[[], Optional[np.ndarray]]] = None

  def segment_key_map(self):
    """The label's segment key map (segment_keys.py), int64 [H, W],
    computed on demand (only evaluation and the writers that keep segments
    apart need it); the label itself where the reader makes none."""
    keys = self.make_segment_keys() if self.make_segment_keys else None
    return self.panoptic if keys is None else keys


@dataclasses.dataclass
class ExampleSource:
  """One example, not yet read: its file name and a loader.

  ``load()`` reads and decodes the files and returns a PanopticExample, or
  raises (naming the file) if they are missing or bad.
  """
  name: str
  load: Callable[[], PanopticExample]
  image_id: object = None  # the dataset's image id, where it has one


def load_all(sources) -> Iterator[PanopticExample]:
  """Loads the sources one by one, lazily."""
  return (source.load() for source in sources)


def read_image(path):
  """uint8 RGB [H, W, 3], upright, decoded as the exported model decodes.

  Raises:
    FileNotFoundError: a missing file; image_decode.ImageDecodeError (a
    ValueError): a file that is not a decodable image (the message names
    the file, the reason first).
  """
  return image_decode.read_image_file(path)[0]


def read_image_and_label(image_path, read_label, label_path):
  """An image, upright, and its label turned the same way.

  Labels are taken to be in the image's stored frame (as COCO's JSON
  width/height and panopticapi are) and turned like the image, unless they
  already have its upright size: ``image_decode.upright_label_array``.

  Args:
    image_path: the image file.
    read_label: function(path) -> numpy label [h, w].
    label_path: the label file.

  Returns:
    (uint8 [H, W, 3], label [H, W]) in the upright frame.

  Raises:
    ValueError: the label's size fits neither frame of the image (names
    both files), or a file cannot be read.
  """
  image, orientation = image_decode.read_image_file(image_path)
  label = image_decode.upright_label_array(read_label(label_path),
                                           orientation, image.shape[:2])
  if label.shape[:2] != image.shape[:2]:
    turned = (f' upright (stored as {image.shape[0]}x{image.shape[1]} with '
              f'EXIF orientation {orientation})' if orientation >= 5 else '')
    raise ValueError(f'{label_path} is {label.shape[1]}x{label.shape[0]} '
                     f'but its image {image_path} is {image.shape[1]}x'
                     f'{image.shape[0]}{turned}.')
  return image, label


def check_instance_counts(counts, meta, where):
  """Raises if a class has more instances than the label divisor allows.

  Instance ids run 1..label_divisor - 1 (0 is crowd); one more would spill
  into the next class (class * divisor + divisor = (class + 1) * divisor).

  Args:
    counts: {class index: number of instances} of one image.
    meta: DatasetMetadata.
    where: the file, for the message.

  Raises:
    ValueError: naming ``where``, the class and its count.
  """
  for cls, count in sorted(counts.items()):
    if count >= meta.label_divisor:
      raise ValueError(
          f'{where}: {count} instances of class {cls} '
          f'({meta.class_names[cls]!r}), but label_divisor '
          f'{meta.label_divisor} allows at most {meta.label_divisor - 1} per '
          'class; raise the label divisor (data.label_divisor, pdl-data '
          '--label_divisor).')


def label_from_segments(ids, segments_info, meta, where):
  """COCO id map + segments_info -> int32 label map in the package encoding.

  Thing instances are numbered from 1 per class in segments_info order;
  crowd segments of a thing class become its instance 0 (one region).

  Raises:
    ValueError: as ``label_and_keys``.
  """
  return label_and_keys(ids, segments_info, meta, where)[0]


def label_and_keys(ids, segments_info, meta, where):
  """The label map and, where the encoding merges segments, their keys.

  Args:
    ids: int [H, W], the COCO segment ids of the panoptic PNG (0 = void).
    segments_info: the annotation's list of segment dicts.
    meta: DatasetMetadata of the split.
    where: the PNG, for messages.

  Returns:
    (label int32 [H, W], keys int64 [H, W] or None): ``keys`` is the
    segment key map (segment_keys.py) when two segments share a label
    value (stuff of one class, crowd of one class), else None (the label
    is its own key map).

  Raises:
    ValueError: a bad segments_info or one disagreeing with the PNG
      (``panoptic_format.parse_segments`` and ``check_areas``), or more
      instances of a class than the label divisor allows; the message names
      ``where`` and the segment or class.
  """
  index = {category: i for i, category in enumerate(meta.category_ids)}
  segments = parse_segments(segments_info, index, where)
  present, inverse, counts = np.unique(ids, return_inverse=True,
                                       return_counts=True)
  check_areas({i: area for i, (_, _, area) in segments.items()},
              dict(zip(present.tolist(), counts.tolist())), where)
  values = {0: meta.ignore_label * meta.label_divisor}
  instances = {}
  for segment_id, (category, crowd, _) in segments.items():
    cls = index[category]
    instance = 0
    if meta.is_thing[cls] and not crowd:
      instance = instances[cls] = instances.get(cls, 0) + 1
    values[segment_id] = cls * meta.label_divisor + instance
  check_instance_counts(instances, meta, where)
  inverse = inverse.reshape(-1)
  table = np.array([values[i] for i in present.tolist()], np.int32)
  label = table[inverse].reshape(ids.shape)
  listed = list(segments)
  if len(set(values[i] for i in listed)) == len(listed):
    return label, None
  keys = dict(zip(listed, segment_keys.keys_of(
      [values[i] for i in listed], meta.label_divisor, meta.ignore_label)))
  keys[0] = values[0]
  table = np.array([keys.get(i, values[0]) for i in present.tolist()],
                   np.int64)
  return label, table[inverse].reshape(ids.shape)


def _load_example(image_id, image_name, image_path, label_path,
                  segments_info, meta):
  """Reads one image and its panoptic PNG: a PanopticExample."""
  image, ids = read_image_and_label(image_path, read_id_map, label_path)
  panoptic = label_from_segments(ids, segments_info, meta, label_path)
  keys = lambda: label_and_keys(ids, segments_info, meta, label_path)[1]
  return PanopticExample(image_id, image_name, image, panoptic,
                         make_segment_keys=keys)


def list_coco_panoptic(json_file, image_folder, panoptic_folder,
                       label_divisor=1000, ignore_label=255):
  """Metadata and one ExampleSource per annotation (nothing read yet).

  Raises:
    ValueError: an unreadable JSON, one without the COCO panoptic keys
      (categories with id, name, isthing; annotations with image_id,
      file_name, segments_info) or an empty annotation list (at once); a
      source's ``load()`` raises for its own missing or bad files.
  """
  data = load_json(json_file, 'Panoptic')
  try:
    meta = metadata_from_categories(data['categories'], label_divisor,
                                    ignore_label)
    images = {image['id']: image for image in data.get('images', [])}
    annotations = data.get('annotations', [])
    if not annotations:
      raise ValueError(f'{json_file}: no annotations (empty image list).')
    sources = []
    for annotation in annotations:
      image_id = annotation['image_id']
      image_name = images.get(image_id, {}).get(
          'file_name', os.path.splitext(annotation['file_name'])[0] + '.jpg')
      sources.append(ExampleSource(image_name, functools.partial(
          _load_example, image_id, image_name,
          os.path.join(image_folder, image_name),
          os.path.join(panoptic_folder, annotation['file_name']),
          annotation['segments_info'], meta), image_id))
  except KeyError as e:
    raise ValueError(f'{json_file} is not a COCO panoptic JSON: an entry '
                     f'lacks the key {e}.') from e
  except (TypeError, AttributeError) as e:
    raise ValueError(f'{json_file} is not a COCO panoptic JSON: {e}.') from e
  return meta, sources


def read_coco_panoptic(json_file, image_folder, panoptic_folder,
                       label_divisor=1000, ignore_label=255):
  """Metadata and a lazy iterator of PanopticExample, one per annotation.

  Raises (while iterating, naming the file): missing or corrupt image/PNG,
  an image and label of different sizes, JSON/PNG segment disagreements,
  unknown categories; an empty annotation list raises at once.
  """
  meta, sources = list_coco_panoptic(json_file, image_folder,
                                     panoptic_folder, label_divisor,
                                     ignore_label)
  return meta, load_all(sources)
