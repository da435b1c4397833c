"""COCO instances JSON (and COCO-Stuff JSON) parsed and checked, without
TensorFlow: everything about an annotation that the JSON alone tells.

The ``coco_instances`` reader (``coco_instances.py``) rasterises what
``parse_split`` returns; a command's checks or an inspection tool can call
``parse_split`` before TensorFlow starts. Each JSON file is loaded once.

Categories (``split_categories``): an instances JSON category without an
``isthing`` key, or with isthing 1/true, is a thing; with isthing 0/false it
is a stuff category. A stuff JSON's categories are all stuff, except
COCO-Stuff's 'other' (id 183, name 'other'), which stands for all things
and is left out (its annotations are skipped). Class order: the
instances JSON's categories as listed (things and isthing-0 stuff), then
the stuff JSON's categories it does not list already (a stuff category may
be declared in both, with one name). ``pdl-data --format coco_instances``
lists every class in the instances JSON in class order, so what it writes
reads back with the same class indices; COCO's own files (things 1-90,
then COCO-Stuff's 92-182) give COCO's order.

Checked here (ValueError naming the JSON file and, for an annotation, its
id and the problem): missing or mistyped keys, duplicate ids, an unknown
image_id or category_id, iscrowd not 0/1, a polygon with fewer than 3
points (6 numbers) or an odd count, an empty polygon list, an RLE whose
size differs from its image's height/width, uncompressed RLE counts that
do not add up to height * width, an RLE with no foreground pixel. A
polygon that covers no pixel is found when the mask is rasterised.
"""

import dataclasses
import os
from typing import List, Optional

from pycocotools import mask as mask_api

from pdl_tf.labels.json_file import load_json

# The types of polygon coordinates in parsed JSON (bool excluded).
_NUMBERS = frozenset((int, float))
# COCO-Stuff's 'other' category: every thing pixel, as one stuff class.
OTHER_STUFF = (183, 'other')


@dataclasses.dataclass
class Segment:
  """One annotation: checked, not yet rasterised."""
  annotation_id: int
  category_id: int
  segmentation: object  # list of polygons or an RLE dict, as in the JSON
  iscrowd: bool
  source: str  # the JSON file, for messages


@dataclasses.dataclass
class ImageEntry:
  """One image of the instances JSON and its annotations (JSON order:
  the instances JSON's, then the stuff JSON's)."""
  image_id: int
  file_name: str
  height: int
  width: int
  segments: List[Segment]


@dataclasses.dataclass
class InstancesSplit:
  """A parsed split: categories in class order (dicts with id, name,
  isthing, color) and the images in the instances JSON's order."""
  categories: List[dict]
  images: List[ImageEntry]


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _entries(data, key, path, required=True):
  """data[key], a list of dicts, or raises naming the file."""
  if not isinstance(data, dict):
    raise ValueError(f'{path} is not a COCO instances JSON: it holds a '
                     f'{type(data).__name__}, not an object.')
  if key not in data and not required:
    return []
  entries = data.get(key)
  if not isinstance(entries, list) or not all(
      isinstance(e, dict) for e in entries):
    state = 'lacks the key' if key not in data else 'has no list of objects in'
    raise ValueError(f'{path} is not a COCO instances JSON: it {state} '
                     f'{key!r}.')
  return entries


def _field(entry, key, kind, path, what):
  """entry[key] checked to be an int ('int') or a non-empty str ('str')."""
  value = entry.get(key)
  good = _is_int(value) if kind == 'int' else (
      isinstance(value, str) and value != '')
  if not good:
    problem = 'lacks the key' if key not in entry else f'has {value!r} as'
    raise ValueError(f'{path}: {what} {problem} {key!r} (expected '
                     f'{"an int" if kind == "int" else "a non-empty string"}).')
  return value


def _entry_id(entry, path, noun):
  """entry['id'], an int; the message of a bad one shows the entry (its
  text is made only then: it is slow for 10^6 annotations)."""
  value = entry.get('id')
  return value if _is_int(value) else _field(entry, 'id', 'int', path,
                                             f'{noun} {entry!r:.80}')


def _categories(data, path, stuff_file):
  """Checked categories of one JSON: dicts with id, name, isthing, color."""
  out = []
  for entry in _entries(data, 'categories', path):
    category_id = _entry_id(entry, path, 'category')
    what = f'category {category_id}'
    name = _field(entry, 'name', 'str', path, what)
    if stuff_file and (category_id, name) == OTHER_STUFF:
      continue
    isthing = entry.get('isthing', 0 if stuff_file else 1)
    if isthing not in (0, 1):  # True/False compare equal to 1/0
      raise ValueError(f'{path}: {what} has isthing {isthing!r}; expected 0 '
                       'or 1.')
    if stuff_file and isthing:
      raise ValueError(f'{path}: {what} ({name!r}) has isthing 1, but a '
                       'stuff JSON holds stuff categories only.')
    color = entry.get('color', (0, 0, 0))
    if not (isinstance(color, (list, tuple)) and len(color) == 3 and all(
        _is_int(c) and 0 <= c <= 255 for c in color)):
      raise ValueError(f'{path}: {what} has color {color!r}; expected 3 '
                       'ints in 0..255.')
    out.append(dict(id=category_id, name=name, isthing=int(isthing),
                    color=tuple(color)))
  return out


def split_categories(instances, instances_file, stuff=None, stuff_file=''):
  """The categories in class order (module docstring; parsed JSON objects
  given).

  Raises:
    ValueError: a bad, repeated or conflicting category (file and id
      named), or a name given to two categories.
  """
  categories = _categories(instances, instances_file, stuff_file=False)
  by_id = {}
  for category in categories:
    if category['id'] in by_id:
      raise ValueError(f'{instances_file}: category ids repeat: '
                       f'{_repeated([c["id"] for c in categories])}.')
    by_id[category['id']] = category
  if stuff is not None:
    listed = set()
    for category in _categories(stuff, stuff_file, stuff_file=True):
      known = by_id.get(category['id'])
      if category['id'] in listed:
        raise ValueError(f'{stuff_file}: category {category["id"]} '
                         f'({category["name"]!r}) repeats in this file.')
      listed.add(category['id'])
      if known is None:
        by_id[category['id']] = category
        categories.append(category)
      elif known['isthing'] or known['name'] != category['name']:
        raise ValueError(
            f'{stuff_file}: category {category["id"]} ({category["name"]!r}) '
            f'is also a category of {instances_file} '
            f'({known["name"]!r}, isthing {known["isthing"]}); a stuff '
            'category may be in both files only as the same stuff class.')
  if not categories:
    raise ValueError(f'{instances_file}: no categories.')
  names = [c['name'] for c in categories]
  if len(set(names)) < len(names):
    raise ValueError(f'{instances_file}: category names repeat: '
                     f'{_repeated(names)} (each class needs its own name).')
  return categories


def read_split_categories(instances_file, stuff_file=None):
  """The categories of a split in class order (``split_categories``) from
  its JSON files, the annotations not checked: for reading the classes
  before TensorFlow starts (``layouts.coco_instances_split_files`` gives
  the files).

  Raises:
    FileNotFoundError: a JSON is missing. ValueError: a bad JSON or
    category (file named).
  """
  stuff = load_json(stuff_file, 'COCO stuff') if stuff_file else None
  return split_categories(load_json(instances_file, 'COCO instances'),
                          instances_file, stuff, stuff_file or '')


def _repeated(values):
  seen, repeated = set(), []
  for value in values:
    if value in seen and value not in repeated:
      repeated.append(value)
    seen.add(value)
  return repeated


def _images(data, path):
  """{image id: ImageEntry} of the instances JSON, in its order."""
  images, names = {}, {}
  for entry in _entries(data, 'images', path):
    image_id = _entry_id(entry, path, 'image')
    what = f'image {image_id}'
    if image_id in images:
      raise ValueError(f'{path}: image id {image_id} repeats.')
    file_name = _field(entry, 'file_name', 'str', path, what)
    height = _field(entry, 'height', 'int', path, what)
    width = _field(entry, 'width', 'int', path, what)
    if height < 1 or width < 1:
      raise ValueError(f'{path}: {what} ({file_name}) has size {width}x'
                       f'{height}; width and height must be >= 1.')
    if file_name in names:
      raise ValueError(f'{path}: images {names[file_name]} and {image_id} '
                       f'are both {file_name!r}; each image once.')
    names[file_name] = image_id
    images[image_id] = ImageEntry(image_id, file_name, height, width, [])
  return images


def _polygons(segmentation, image, where):
  """Checks a list of polygons [[x0, y0, x1, y1, ...], ...]: finite
  coordinates within one image size of the image (pycocotools crashes the
  process on NaN or far-away points)."""
  if not segmentation:
    raise ValueError(f'{where}: segmentation is an empty polygon list.')
  for k, polygon in enumerate(segmentation):
    if not isinstance(polygon, list) or not set(map(type, polygon)) <= (
        _NUMBERS):
      raise ValueError(f'{where}: polygon {k} is not a list of numbers '
                       '[x0, y0, x1, y1, ...] (segmentation must be a list '
                       'of polygons or an RLE object).')
    if len(polygon) < 6:
      raise ValueError(f'{where}: polygon {k} has {len(polygon)} numbers; a '
                       'polygon needs at least 3 points (6 numbers).')
    if len(polygon) % 2:
      raise ValueError(f'{where}: polygon {k} has an odd count of numbers '
                       f'({len(polygon)}); expected x, y pairs.')
    xs, ys = polygon[0::2], polygon[1::2]
    if not (all(-image.width <= x <= 2 * image.width for x in xs) and
            all(-image.height <= y <= 2 * image.height for y in ys)):
      raise ValueError(
          f'{where}: polygon {k} has a point that is not a number or lies '
          f'far outside image {image.image_id} ({image.file_name}, '
          f'{image.width}x{image.height}): x must be in [-{image.width}, '
          f'{2 * image.width}], y in [-{image.height}, {2 * image.height}].')


def _rle(segmentation, image, where):
  """Checks an RLE object against its image's size; raises if empty."""
  size, counts = segmentation.get('size'), segmentation.get('counts')
  if size != [image.height, image.width]:
    raise ValueError(f'{where}: RLE size {size!r} differs from image '
                     f'{image.image_id} ({image.file_name}), which is '
                     f'[height, width] = [{image.height}, {image.width}].')
  if isinstance(counts, list):  # uncompressed: runs of 0s, 1s, 0s, ...
    if not all(_is_int(c) and c >= 0 for c in counts):
      raise ValueError(f'{where}: uncompressed RLE counts must be '
                       'non-negative ints.')
    if sum(counts) != image.height * image.width:
      raise ValueError(f'{where}: uncompressed RLE counts add up to '
                       f'{sum(counts)} pixels, but size {size} has '
                       f'{image.height * image.width}.')
    area = sum(counts[1::2])
  elif isinstance(counts, str) and counts:
    area = int(mask_api.area({'size': size, 'counts': counts.encode()}))
  else:
    raise ValueError(f'{where}: RLE counts must be a string (compressed) or '
                     f'a list of ints (uncompressed), got {counts!r:.40}.')
  if area == 0:
    raise ValueError(f'{where}: empty mask (the RLE has no foreground '
                     'pixel).')


def _segment(entry, path, images, categories, skipped):
  """A checked Segment of one annotation and its ImageEntry, or None for an
  annotation of a skipped category (COCO-Stuff 'other')."""
  annotation_id = _entry_id(entry, path, 'annotation')
  where = f'{path}: annotation {annotation_id}'
  image_id = _field(entry, 'image_id', 'int', path, f'annotation '
                    f'{annotation_id}')
  category_id = _field(entry, 'category_id', 'int', path,
                       f'annotation {annotation_id}')
  if category_id in skipped:
    return None, None
  if image_id not in images:
    raise ValueError(f'{where}: unknown image_id {image_id} (not in the '
                     "instances JSON's images).")
  if category_id not in categories:
    raise ValueError(f'{where}: unknown category_id {category_id}.')
  crowd = entry.get('iscrowd', 0)
  if crowd not in (0, 1):
    raise ValueError(f'{where}: iscrowd {crowd!r}; expected 0 or 1.')
  segmentation = entry.get('segmentation')
  image = images[image_id]
  if isinstance(segmentation, list):
    _polygons(segmentation, image, where)
  elif isinstance(segmentation, dict):
    _rle(segmentation, image, where)
  else:
    problem = ('lacks the key' if 'segmentation' not in entry else
               f'has {segmentation!r:.40} as')
    raise ValueError(f'{where}: {problem} segmentation (expected a list of '
                     'polygons or an RLE object).')
  return image, Segment(annotation_id, category_id, segmentation,
                        bool(crowd), path)


def _add_segments(data, path, images, categories, skipped=(),
                  problems=None):
  """Appends the checked annotations of one JSON to their images; a bad
  one raises, or with a ``problems`` list is left out and its message
  appended there."""
  seen = set()
  for entry in _entries(data, 'annotations', path):
    try:
      image, segment = _segment(entry, path, images, categories, skipped)
      if segment is not None and segment.annotation_id in seen:
        raise ValueError(f'{path}: annotation id {segment.annotation_id} '
                         'repeats.')
    except ValueError as e:
      if problems is None:
        raise
      problems.append(str(e))
      continue
    if segment is None:
      continue
    seen.add(segment.annotation_id)
    image.segments.append(segment)


def parse_split(instances_file, stuff_file=None, stuff_folder=None,
                problems=None):
  """Loads and checks one split: categories and images with annotations.

  Args:
    instances_file: the COCO instances JSON.
    stuff_file: a COCO-Stuff-style JSON of stuff annotations, or None.
    stuff_folder: the folder of stuff PNGs, or None; with it the stuff
      classes are the instances JSON's isthing 0 categories (at least one;
      ids 1..65534 but 255), and no annotation may be of a stuff class.
    problems: None: a bad annotation raises; a list: bad annotations are
      left out and their messages appended (``pdl-data --inspect`` lists
      them all).

  Returns:
    InstancesSplit.

  Raises:
    FileNotFoundError: a JSON is missing. ValueError: a bad JSON, category,
    image or annotation (see the module docstring), the file named.
  """
  instances = load_json(instances_file, 'COCO instances')
  stuff = load_json(stuff_file, 'COCO stuff') if stuff_file else None
  categories = split_categories(instances, instances_file, stuff,
                                stuff_file or '')
  by_id = {c['id']: c for c in categories}
  images = _images(instances, instances_file)
  _add_segments(instances, instances_file, images, by_id, problems=problems)
  if stuff is not None:  # 'other' annotations skipped where it is declared
    other = any(isinstance(c, dict) and (c.get('id'), c.get('name')) ==
                OTHER_STUFF for c in stuff['categories'])
    _add_segments(stuff, stuff_file, images, by_id,
                  skipped=(OTHER_STUFF[0],) if other else (),
                  problems=problems)
  if stuff_folder is not None:
    _check_png_stuff(categories, images, instances_file, stuff_folder)
  return InstancesSplit(categories, list(images.values()))


def _check_png_stuff(categories, images, instances_file, stuff_folder):
  """Stuff classes declared for the PNG folder, none annotated in JSON."""
  stuff = [c for c in categories if not c['isthing']]
  if not stuff:
    raise ValueError(
        f'{instances_file}: the stuff PNGs in {stuff_folder} need their '
        'stuff categories declared in this JSON, as categories with '
        '"isthing": 0 (id = the pixel value).')
  for category in stuff:
    if not 0 < category['id'] < 65535 or category['id'] == 255:
      raise ValueError(
          f'{instances_file}: stuff category {category["id"]} '
          f'({category["name"]!r}) cannot be a stuff PNG value: 0 and 255 '
          'are unlabeled, PNGs hold at most 16 bits.')
  stuff_ids = {c['id'] for c in stuff}
  for image in images.values():
    for segment in image.segments:
      if segment.category_id in stuff_ids:
        raise ValueError(
            f'{segment.source}: annotation {segment.annotation_id}: category '
            f'{segment.category_id} is a stuff class, which comes from the '
            f'stuff PNGs in {stuff_folder} when that folder exists.')


def stuff_png_path(stuff_folder, file_name):
  """The stuff PNG of an image: <stuff folder>/<file_name without its
  extension>.png (an image in a subfolder has its PNG in the same
  subfolder, so two images of one name in two folders keep theirs)."""
  return os.path.join(stuff_folder, os.path.splitext(file_name)[0] + '.png')


def first_missing(folder, names) -> Optional[int]:
  """The index of the first of ``names`` (paths relative to ``folder``)
  that is not there, or None; one directory listing per folder."""
  listings = {}
  for k, name in enumerate(names):
    path = os.path.join(folder, name)
    parent, base = os.path.split(path)
    if parent not in listings:
      listings[parent] = set(os.listdir(parent)) if os.path.isdir(
          parent) else set()
    if base not in listings[parent]:
      return k
  return None
