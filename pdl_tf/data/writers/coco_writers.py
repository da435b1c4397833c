"""Write a panoptic split in the COCO layouts other tools read.

``write_coco_panoptic`` writes what panopticapi, detectron2 and this
package's ``coco_panoptic`` reader read (``layouts.coco_panoptic_paths``):
``annotations/panoptic_<split>.json``, one PNG per image in
``annotations/panoptic_<split>/`` (segment id = R + 256 G + 256^2 B,
``evaluation.writers.panoptic_to_segments``) and the images in
``<split>/``.

``write_coco_instances`` writes the COCO detection layout
(``layouts.coco_instances_paths``): ``annotations/instances_<split>.json``
(one annotation per thing instance and per crowd region, iscrowd 1, masks
as compressed RLE), ``annotations/stuff_<split>.json`` (COCO-Stuff style:
one RLE annotation per stuff class present in an image) and the images.

Both write the decoded, upright pixels (EXIF orientation applied by the
readers, so no EXIF tag is left to honour) as PNG (lossless) or JPEG
(quality 95), named after the example's file stem (detectron2's COCO
panoptic loader takes the image of ``<stem>.png`` to be ``<stem>.jpg``:
JPEG for it). Category ids are the dataset's own
(``DatasetMetadata.category_ids``); image ids the dataset's own when every
example has a distinct non-negative int one, else 1..N. The instance
numbers of a label are not kept: a COCO file holds segments, and a reader
numbers a class's instances 1..k again (gaps left by a hidden instance
close up).
Everything is written into a staging folder, moved in place at the end, and
the JSON files are written last (temporary file + ``os.replace``): a failed
or interrupted run leaves no part of the split behind, and a folder that
already holds the split is refused.

Example:
  >>> meta, sources = sources.list_split('synthetic', '', 'train',
  ...                                    num_examples=8)
  >>> write_coco_panoptic(meta, sources, '/data/synthetic_coco', 'train')
"""

import json
import numbers
import os
import shutil

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from pdl_tf.data.writers import example_loop
from pdl_tf.data.formats import layouts
from pdl_tf.evaluation.writers import panoptic_to_segments
from pdl_tf.labels import segment_keys
from pdl_tf.labels.panoptic_format import id_map_to_rgb

IMAGE_FORMATS = {'png': '.png', 'jpeg': '.jpg'}
JPEG_QUALITY = 95


def label_segments(panoptic, meta, segment_map=None):
  """COCO id map and segments_info of a label in the package encoding.

  Args:
    panoptic: int [H, W], class * label_divisor + instance; void is class
      ``meta.ignore_label``; a thing class with instance 0 is a crowd.
    meta: DatasetMetadata.
    segment_map: the example's segment key map (segment_keys.py) or None:
      with it, segments that share a label value (several stuff segments
      or crowds of a class, as a COCO panoptic source lists them) are
      written apart, in listing order.

  Returns:
    (ids uint32 [H, W], 0 = void; segments_info list of {id, category_id
    (the dataset's), iscrowd, area, bbox [x, y, w, h]}).

  Raises:
    ValueError: a value of a class outside the metadata's (naming it).
  """
  values = np.asarray(panoptic if segment_map is None else segment_map)
  step = segment_keys.key_range(meta.label_divisor, meta.ignore_label)
  label = segment_keys.labels_of(values, meta.label_divisor,
                                 meta.ignore_label)
  void = label // meta.label_divisor == meta.ignore_label
  return panoptic_to_segments(np.where(void, -1, values),
                              meta.category_ids, meta.label_divisor,
                              crowd_class_ids=meta.thing_class_ids,
                              key_range=step)


def rle_of(mask):
  """Compressed COCO RLE of a bool [H, W] mask, counts as str (JSON)."""
  rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
  return {'size': [int(v) for v in rle['size']],
          'counts': rle['counts'].decode('ascii')}


def _stem(file_name):
  return os.path.splitext(os.path.basename(file_name))[0]


def _write_image(image, path, image_format):
  Image.fromarray(np.asarray(image, np.uint8)).save(
      path, **({'quality': JPEG_QUALITY} if image_format == 'jpeg' else {}))


def _write_json(path, data):
  """Writes ``path`` atomically (a temporary file, then os.replace)."""
  with open(path + '.incomplete', 'w', encoding='utf-8') as f:
    json.dump(data, f)
  os.replace(path + '.incomplete', path)


def image_ids(dataset_ids):
  """The dataset's own image ids when each is a distinct non-negative int,
  else 1..N: (list of int, True if the dataset's own)."""
  own = [i for i in dataset_ids if isinstance(i, numbers.Integral) and
         not isinstance(i, bool) and i >= 0]
  if len(own) == len(dataset_ids) and len(set(own)) == len(own):
    return [int(i) for i in own], True
  return list(range(1, len(dataset_ids) + 1)), False


class _Staging:
  """A split's files, written under ``folder/.<split>.<format>.incomplete``
  and moved to their places by ``finish``; ``discard`` removes them."""

  def __init__(self, folder, split, output_format, image_format):
    if image_format not in IMAGE_FORMATS:
      raise ValueError(f'image_format must be one of {list(IMAGE_FORMATS)},'
                       f' got {image_format!r}.')
    layouts.refuse_coco_output(output_format, folder, split)
    self.folder, self.image_format = folder, image_format
    self.created = not os.path.isdir(folder)
    self.root = os.path.join(folder, f'.{split}.{output_format}.incomplete')
    if os.path.isdir(self.root):  # left by an interrupted run
      shutil.rmtree(self.root)
    os.makedirs(os.path.join(self.root, 'images'))
    self.stems = {}
    self.placed = []  # final paths written so far

  def image_name(self, source, example):
    """``<stem>.png|.jpg`` of an example; ValueError if another example
    already has its stem."""
    stem = _stem(example.file_name or source.name)
    if stem in self.stems:
      raise ValueError(f'{source.name} has the file stem {stem!r} of '
                       f'{self.stems[stem]}; file names must be unique.')
    self.stems[stem] = source.name
    return stem + IMAGE_FORMATS[self.image_format]

  def write_image(self, image, name):
    _write_image(image, os.path.join(self.root, 'images', name),
                 self.image_format)

  def finish(self, moves, jsons):
    """Moves {staged subfolder: final path}, then writes {path: data}."""
    for staged, final in moves.items():
      os.makedirs(os.path.dirname(final), exist_ok=True)
      os.replace(os.path.join(self.root, staged), final)
      self.placed.append(final)
    for path, data in jsons.items():
      os.makedirs(os.path.dirname(path), exist_ok=True)
      _write_json(path, data)
      self.placed.append(path)
    shutil.rmtree(self.root)

  def discard(self):
    """Removes the staging folder, whatever ``finish`` placed, and the
    folders left empty that this run created."""
    shutil.rmtree(self.root, ignore_errors=True)
    for path in self.placed:
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      elif os.path.lexists(path):
        os.remove(path)
    annotations = os.path.join(self.folder, 'annotations')
    for folder, ours in ((annotations, True), (self.folder, self.created)):
      if ours and os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def _info(split):
  return {'description': f'split {split!r}, written by pdl-data (pdl_tf)'}


def _categories(meta, keep, panoptic):
  """COCO ``categories`` of the classes ``keep(class index)`` accepts, in
  class order; panoptic ones with isthing and color."""
  result = []
  for cls, category_id in enumerate(meta.category_ids):
    if keep(cls):
      entry = {'id': int(category_id), 'name': meta.class_names[cls]}
      if panoptic:
        entry.update(isthing=int(meta.is_thing[cls]),
                     color=[int(c) for c in meta.colors[cls]])
      result.append(entry)
  return result


class _PanopticFormat:
  """COCO panoptic: a PNG and a segments_info list per image."""
  name = 'coco_panoptic'
  staged = ('images', 'panoptic')

  def __init__(self, meta, folder, split):
    self.meta, self.split = meta, split
    self.json_file, self.image_folder, self.png_folder = (
        layouts.coco_panoptic_paths(folder, split))

  def prepare(self, example):
    """(ids uint32 [H, W], segments_info) of the example's label."""
    return label_segments(example.panoptic, self.meta,
                          example.segment_key_map())

  def write(self, staging, stem, label):
    ids, segments = label
    Image.fromarray(id_map_to_rgb(ids)).save(
        os.path.join(staging.root, 'panoptic', stem + '.png'))
    return segments

  def assemble(self, images, records):
    """({staged folder: final}, {JSON path: data})."""
    annotations = [{'image_id': image['id'],
                    'file_name': _stem(image['file_name']) + '.png',
                    'segments_info': segments}
                   for image, segments in zip(images, records)]
    data = {'info': _info(self.split), 'licenses': [], 'images': images,
            'annotations': annotations,
            'categories': _categories(self.meta, lambda cls: True, True)}
    return ({'images': self.image_folder, 'panoptic': self.png_folder},
            {self.json_file: data})


class _InstancesFormat:
  """COCO detection: RLE annotations of things (instances_<split>.json)
  and of stuff classes (stuff_<split>.json)."""
  name = 'coco_instances'
  staged = ('images',)

  def __init__(self, meta, folder, split):
    self.meta, self.split = meta, split
    self.instances_file, self.stuff_file, self.image_folder = (
        layouts.coco_instances_paths(folder, split))

  def prepare(self, example):
    """([thing annotations], [stuff annotations]) without ids."""
    ids, segments = label_segments(example.panoptic, self.meta)
    things = set(self.meta.category_ids[c] for c in self.meta.thing_class_ids)
    result = ([], [])
    for segment in segments:
      result[segment['category_id'] not in things].append({
          'category_id': segment['category_id'],
          'segmentation': rle_of(ids == segment['id']),
          'area': segment['area'], 'bbox': segment['bbox'],
          'iscrowd': segment['iscrowd']})
    return result

  def write(self, staging, stem, label):
    del staging, stem
    return label

  def assemble(self, images, records):
    """({staged folder: final}, {JSON path: data})."""
    jsons = {}
    for kind, path in enumerate((self.instances_file, self.stuff_file)):
      annotations = []
      for image, record in zip(images, records):
        for annotation in record[kind]:
          annotations.append({'id': len(annotations) + 1,
                              'image_id': image['id'], **annotation})
      # The instances JSON lists every class (stuff as isthing 0), in class
      # order, so the reader keeps the class indices; the stuff JSON its
      # stuff classes.
      keep = ((lambda cls: True) if kind == 0 else
              (lambda cls: not self.meta.is_thing[cls]))
      jsons[path] = {'info': _info(self.split), 'licenses': [],
                     'images': images, 'annotations': annotations,
                     'categories': _categories(self.meta, keep, kind == 0)}
    return {'images': self.image_folder}, jsons


def _convert(layout, sources, folder, split, skip_bad, image_format,
             progress):
  """Both writers' loop; returns their summary dict."""
  if not sources:
    raise ValueError(f'split {split!r} has no examples to convert.')
  staging = _Staging(folder, split, layout.name, image_format)
  try:
    for name in layout.staged[1:]:
      os.makedirs(os.path.join(staging.root, name))
    skipped, images, records, dataset_ids = [], [], [], []

    def prepare(source, example):
      label = layout.prepare(example)
      return example, staging.image_name(source, example), label

    for _, (example, name, label) in example_loop.checked_examples(
        sources, prepare, skipped, skip_bad=skip_bad, desc=split,
        progress=progress):
      staging.write_image(example.image, name)
      records.append(layout.write(staging, _stem(name), label))
      images.append({'file_name': name,
                     'height': int(example.image.shape[0]),
                     'width': int(example.image.shape[1])})
      dataset_ids.append(example.image_id)
    if not images:
      raise ValueError(f'split {split!r}: every example is bad; nothing '
                       'written.')
    ids, own = image_ids(dataset_ids)
    images = [{'id': i, **image} for i, image in zip(ids, images)]
    moves, jsons = layout.assemble(images, records)
    staging.finish(moves, jsons)
  except BaseException:
    staging.discard()
    raise
  return {'num_examples': len(images), 'skipped': skipped,
          'files': list(jsons), 'dataset_image_ids': own}


def write_coco_panoptic(meta, sources, folder, split, *, skip_bad=False,
                        image_format='png', progress=True):
  """Writes one split in COCO panoptic format under ``folder``.

  Args:
    meta: DatasetMetadata of the dataset.
    sources: list of ExampleSource (coco_panoptic.ExampleSource).
    folder: output root (created if missing).
    split: split name (the folder and JSON names).
    skip_bad: skip and list bad examples instead of stopping at the first.
    image_format: 'png' (lossless) or 'jpeg' (quality 95).
    progress: show a tqdm progress bar (stderr).

  Returns:
    dict: ``num_examples`` written, ``skipped`` (list of {name, error}),
    ``files`` (the JSON files), ``dataset_image_ids`` (False: the images
    were numbered 1..N).

  Raises:
    FileExistsError: ``folder`` already holds the split.
    ValueError / OSError: no examples, a bad example (without skip_bad;
      the message names it) or every example bad. Nothing of the split is
      left behind.
  """
  return _convert(_PanopticFormat(meta, folder, split), sources, folder,
                  split, skip_bad, image_format, progress)


def write_coco_instances(meta, sources, folder, split, *, skip_bad=False,
                         image_format='png', progress=True):
  """Writes one split in the COCO detection layout (instances and stuff
  JSON, images) under ``folder``; arguments, result and errors as
  ``write_coco_panoptic``."""
  return _convert(_InstancesFormat(meta, folder, split), sources, folder,
                  split, skip_bad, image_format, progress)


WRITERS = {'coco_panoptic': write_coco_panoptic,
           'coco_instances': write_coco_instances}
