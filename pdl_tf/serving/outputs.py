"""The files pdl-predict writes for one image.

* ``STEM_panoptic.png``: COCO panoptic encoding (segment id = R + 256 G +
  256^2 B, 0 = void), segments numbered from 1;
* ``STEM_overlay.png``: the image with each segment's colour blended in
  (its class's colour, a shade of it per instance; outlined), with
  ``labels``: class names (and scores) on the segments and a legend of the
  classes present on the right (``pdl_tf.viz``);
* ``STEM_side_by_side.png`` (with ``side_by_side``): the image | the
  overlay;
* ``STEM.json``: ``{file_name, height, width, segments_info}`` where each
  segment has ``id``, ``category_id`` (the dataset's own category id when
  the export names it, else the class index), ``class_index`` (the model's
  contiguous class), ``category_name`` (when known), ``isthing``,
  ``score`` (things:
  objectness x class probability; stuff: null), ``area`` and ``bbox``.
"""

import io
import json
import os

import numpy as np
from PIL import Image

from pdl_tf import atomic_write
from pdl_tf.evaluation.writers import panoptic_to_segments
from pdl_tf.labels.panoptic_format import id_map_to_rgb
from pdl_tf import viz


class LabelDivisorMismatch(ValueError):
  """The label divisor given is not the one the model's panoptic ids use."""


def check_label_divisor(result, label_divisor):
  """Raises unless ``result``'s panoptic ids read as class * label_divisor
  + k: the class of the pixel's instance slot for thing pixels (k >= 1),
  of the semantic map for stuff (k = 0); void (-1) aside.

  Args:
    result: a backend's ``predict`` output (numpy): ``panoptic``,
      ``semantic``, ``instance`` [H, W] and ``instance_classes`` [K].
    label_divisor: the divisor the ids are to be read with.

  Raises:
    LabelDivisorMismatch: naming the divisor given and, when a stuff pixel
      of a class above 0 shows it, the one the ids were made with.
  """
  panoptic, instance = result['panoptic'], result['instance']
  slot_classes = np.concatenate([[0], result['instance_classes']])
  classes = np.where(instance > 0,
                     slot_classes[np.clip(instance, 0, len(slot_classes) - 1)],
                     result['semantic']).astype(np.int64)
  valid = panoptic >= 0
  if (np.array_equal(panoptic[valid] // label_divisor, classes[valid]) and
      np.array_equal(panoptic[valid] % label_divisor > 0, instance[valid] > 0)):
    return
  stuff = valid & (instance == 0) & (classes > 0)
  if not stuff.any():
    raise LabelDivisorMismatch(
        f'label divisor {label_divisor} does not fit the model: its '
        f'panoptic ids are not class x {label_divisor} + instance.')
  first = np.flatnonzero(stuff)[0]
  used = int(panoptic.reshape(-1)[first] // classes.reshape(-1)[first])
  raise LabelDivisorMismatch(
      f'label divisor {label_divisor} does not fit the model: its panoptic '
      f'ids are class x {used} + instance; give --label_divisor {used}.')


def overlay_picture(image, panoptic, ids, segments, *, label_divisor,
                    class_colors=None, class_names=None, labels=False):
  """uint8 [H, W (+ legend), 3]: the overlay of one prediction.

  Args:
    image: uint8 [H, W, 3].
    panoptic: int [H, W], class * label_divisor + instance, void < 0.
    ids: int [H, W] segment ids of ``segments`` (0 = void).
    segments: the JSON's segments (``class_index``, ``isthing``,
      ``score``).
    class_colors: '#rrggbb' or [r, g, b] by class index, or None (the
      fixed palette).
    class_names: names by class index, or None ('class N').
    labels: draw each segment's class name (and score for things) and a
      legend of the classes present.
  """
  num_classes = max([s['class_index'] + 1 for s in segments] +
                    [len(class_colors or ()), len(class_names or ())])
  palette = viz.class_palette(num_classes, class_colors or ())
  picture = viz.panoptic_overlay(image, panoptic, label_divisor, [
      viz.hex_color(c) for c in palette])
  if not labels:
    return picture
  entries = viz.legend_entries([s['class_index'] for s in segments],
                               class_names, palette)
  names = {index: name for index, name, _ in entries}
  texts = {s['id']: names[s['class_index']] + (
      f' {s["score"]:.2f}' if s['score'] is not None else '')
           for s in segments}
  return viz.draw_legend(viz.draw_labels(picture, ids, texts), entries)


def output_names(stem):
  """The three file names ``write_prediction`` writes for ``stem``."""
  return (f'{stem}_panoptic.png', f'{stem}_overlay.png', f'{stem}.json')


def _join(folder, name):
  return (folder.rstrip('/') + '/' + name if '://' in folder
          else os.path.join(folder, name))


def is_complete(stem, folder, existing=None):
  """Whether all three outputs of ``stem`` are in ``folder`` (local or any
  tf.io.gfile path). Each file is written whole or not at all, so present
  means complete.

  Args:
    existing: optional set of the file names in ``folder`` (one listing for
      many stems instead of three look-ups each).
  """
  if existing is not None:
    return all(name in existing for name in output_names(stem))
  if '://' in folder:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return all(tf.io.gfile.exists(_join(folder, name))
               for name in output_names(stem))
  return all(os.path.isfile(os.path.join(folder, name))
             for name in output_names(stem))


def existing_names(folder):
  """The set of file names in ``folder`` (empty if it does not exist)."""
  if '://' in folder:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.isdir(folder):
      return set()
    return {name.rstrip('/') for name in tf.io.gfile.listdir(folder)}
  return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def _write_bytes(path, data):
  """``data`` to ``path``: atomically for a local path; through
  tf.io.gfile for a remote one (an object store's upload is whole or
  absent)."""
  if '://' in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, 'wb') as f:
      f.write(data)
    return
  with atomic_write.atomic_path(path) as temporary:
    with open(temporary, 'wb') as f:
      f.write(data)


def write_prediction(image, result, stem, folder, *, label_divisor,
                     class_names=None, category_ids=None, class_colors=None,
                     labels=False, side_by_side=False):
  """Writes the three files of one image; returns the JSON dict.

  Args:
    image: uint8 [H, W, 3], the input image.
    result: a backend's ``predict`` output (numpy, original size).
    stem: file name without extension.
    folder: output folder (created), local or any tf.io.gfile path.
    label_divisor: panoptic = class * label_divisor + instance id.
    class_names: optional sequence of class names by class index.
    category_ids: optional sequence of the dataset's category ids by class
      index (written as ``category_id``; the class index otherwise).
    class_colors: optional '#rrggbb' by class index for the overlay (the
      fixed palette otherwise).
    labels: names, scores and a legend on the overlay.
    side_by_side: also write ``STEM_side_by_side.png``: image | overlay.
  """
  panoptic, instance = result['panoptic'], result['instance']
  num_classes = int(panoptic.max()) // label_divisor + 1 if (
      panoptic.max() >= 0) else 0
  if class_names is not None:
    num_classes = max(num_classes, len(class_names))
  ids, segments = panoptic_to_segments(panoptic, range(num_classes),
                                       label_divisor)
  for segment in segments:
    index = segment['class_index'] = segment['category_id']
    if category_ids is not None:
      segment['category_id'] = int(category_ids[index])
    mask = ids == segment['id']
    slot = int(instance[mask].max())  # 0 for stuff, the instance id else
    segment['isthing'] = slot > 0
    segment['score'] = (float(result['instance_scores'][slot - 1])
                        if slot > 0 else None)
    if class_names is not None:
      segment['category_name'] = class_names[index]
  if '://' in folder:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.io.gfile.makedirs(folder)
  else:
    os.makedirs(folder, exist_ok=True)
  overlay = overlay_picture(image, panoptic, ids, segments,
                            label_divisor=label_divisor,
                            class_colors=class_colors,
                            class_names=class_names, labels=labels)
  # Each file whole or not at all (Ctrl-C): atomic_write. The JSON last:
  # a rerun takes the three files present as a finished image.
  panoptic_name, overlay_name, json_name = output_names(stem)
  pictures = [(panoptic_name, id_map_to_rgb(ids)), (overlay_name, overlay)]
  if side_by_side:
    pictures.append((f'{stem}_side_by_side.png',
                     viz.side_by_side(image, overlay)))
  for name, picture in pictures:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, 'PNG')
    _write_bytes(_join(folder, name), buffer.getvalue())
  record = {'file_name': panoptic_name, 'height': ids.shape[0],
            'width': ids.shape[1], 'segments_info': segments}
  _write_bytes(_join(folder, json_name),
               json.dumps(record, indent=1).encode('utf-8'))
  return record
