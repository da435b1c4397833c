"""Panoptic-DeepLab training targets from panoptic labels, vectorised.

Works on one label [H, W] or a batch [B, H, W] at once (the input pipeline
batches first, so fixed per-call costs are paid once per batch).

Outside XLA the pixels are touched twice: one compiled compare marks where
each row's runs (stretches of one value) start, and ``tf.where`` lists
those marks. The runs (a few thousand at 1024x2048, not millions of
pixels) are numbered into a static ``max_segments`` slots per image with
one ``tf.unique`` over (image, value) pairs, in order of first appearance,
and each slot's area and mass center are sums over its runs (integers, so
the float64 sums are exact, as sums over its pixels would be).

Everything after that is one XLA-compiled function: a per-slot table of the
targets, rearranged by value into one dense array (the value c * divisor +
i of a class c in [c_min, c_max], the thing classes' range, at row
(c - c_min) * divisor + i; one stuff row and one ignore row serve every
other value), so each pixel's targets are one gather keyed by its own
value, in the passes that write them; and the center heatmap
(center_heatmap.paint_heatmap). The dense array holds B (c_max - c_min +
1) divisor rows of 5 float32: 160 kB per image for Cityscapes (8 thing
classes, divisor 1000), 1.6 MB for COCO's 80; more than MAX_TABLE_ROWS
per image (80 MB, e.g. divisor 65536 with 80 thing classes) is refused.

Targets (REFERENCE.md, "Targets"):
  semantic          class per pixel (ignore_label on ignore).
  semantic_weights  small_instance_weight on pixels of (non-crowd) thing
                    instances smaller than small_instance_area, 0 on ignore,
                    1 elsewhere.
  center_heatmap    max over instances of a Gaussian (sigma, peak 1) centred
                    on the rounded mass center, truncated to a
                    (6 sigma + 3)^2 window.
  center_weights    0 on ignore and crowd pixels, 1 elsewhere.
  offsets           (cy - y, cx - x) to the (unrounded) mass center on
                    non-crowd thing pixels, 0 elsewhere.
  offset_weights    1 on non-crowd thing pixels, 0 elsewhere.
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf.data.formats import errors
from pdl_tf.data.targets.center_heatmap import paint_heatmap


@tf.function(jit_compile=True)
def _run_starts(panoptic):
  """bool [B, H, W]: True where a pixel starts a run (the first pixel of
  its row, or a value that differs from its left neighbour's)."""
  return tf.concat([tf.ones_like(panoptic[:, :, :1], tf.bool),
                    panoptic[:, :, 1:] != panoptic[:, :, :-1]], -1)


def _runs(panoptic):
  """The label's runs: maximal horizontal stretches of one value in a row.

  Args:
    panoptic: int32 [B, H, W].

  Returns:
    A dict of [R] tensors, R the number of runs, in pixel order: ``value``
    int32, ``image`` int32, ``length`` int64, ``y`` int64 (the row) and
    ``x`` int64 (the first column).
  """
  height, width = tf.shape(panoptic)[1], tf.shape(panoptic)[2]
  starts = tf.where(tf.reshape(_run_starts(panoptic), [-1]))[:, 0]
  size = tf.size(panoptic, out_type=tf.int64)
  pixel_row = starts // tf.cast(width, tf.int64)
  return {
      'value': tf.gather(tf.reshape(panoptic, [-1]), starts),
      'image': tf.cast(pixel_row // tf.cast(height, tf.int64), tf.int32),
      'length': tf.concat([starts[1:], [size]], 0) - starts,
      'y': pixel_row % tf.cast(height, tf.int64),
      'x': starts % tf.cast(width, tf.int64),
  }


def _number_segments(runs, batch, max_segments):
  """Each run's segment slot within its image, and each slot's value.

  Args:
    runs: from _runs.
    batch: B, the number of images.
    max_segments: S, the static number of slots per image.

  Returns:
    run_slot int32 [R] in [0, S) and values int32 [B, S] (0 in unused
    slots).
  """
  # (image, value) as one int64 key: image b's keys lie in
  # [b 2^32 - 2^31, b 2^32 + 2^31), disjoint from every other image's.
  image_key = tf.range(batch, dtype=tf.int64) * (1 << 32)
  keyed = tf.cast(runs['value'], tf.int64) + tf.gather(image_key,
                                                       runs['image'])
  unique_keys, slot = tf.unique(keyed, out_idx=tf.int32)
  # tf.unique numbers keys in order of first appearance, and runs are in
  # pixel order, so image b's slots are the contiguous range that starts
  # at the slot of its first run.
  first = tf.math.unsorted_segment_min(slot, runs['image'], batch)
  count = tf.concat([first[1:], [tf.size(unique_keys)]], 0) - first
  check = tf.debugging.assert_less_equal(
      tf.reduce_max(count), max_segments,
      message=f'{errors.MARKER}a panoptic label has more segments than '
              f'max_segments='
              f'{max_segments}; raise data.max_segments')
  with tf.control_dependencies([check]):
    run_slot = slot - tf.gather(first, runs['image'])
  local = tf.range(max_segments)[None, :]
  used = local < count[:, None]
  index = tf.minimum(first[:, None] + local, tf.size(unique_keys) - 1)
  values = tf.cast(tf.gather(unique_keys, index) - image_key[:, None],
                   tf.int32)
  return run_slot, tf.where(used, values, 0)


def _check_encoding(values, thing_class_ids, label_divisor):
  """Assert op: no segment of a class without instances (stuff, ignore)
  carries an instance id. An instance id that reached label_divisor spilled
  into the next class and shows here when that class is stuff.

  Args:
    values: int32 [B, S], each slot's panoptic value.
  """
  classes = values // label_divisor
  is_thing = tf.reduce_any(
      classes[..., None] == tf.constant(list(thing_class_ids), tf.int32),
      axis=-1)
  bad = (values % label_divisor > 0) & ~is_thing
  return tf.debugging.Assert(
      ~tf.reduce_any(bad),
      [f'{errors.MARKER}panoptic label values with an instance id on a class '
       'that has no instances:', tf.boolean_mask(values, bad),
       f'labels must be class * {label_divisor} + instance, instance < '
       f'{label_divisor}; an instance id that reaches label_divisor spills '
       'into the next class (the readers refuse such files)'], summarize=5)


def _segment_stats(runs, run_slot, batch, max_segments):
  """Per-slot area and mass center, from sums over the runs.

  A run of length n from column x0 in row y adds n pixels, n y to the sum
  of the rows and n x0 + n (n - 1) / 2 to that of the columns: integers, so
  the float64 sums are exact (as sums over the pixels would be), for any
  image size, in any order.

  Args:
    runs: from _runs; run_slot: int32 [R], from _number_segments.
    batch: B; max_segments: S.

  Returns:
    area float64 [B, S] and center float64 [B, S, 2] (y, x).
  """
  length = runs['length']
  image_slot = runs['image'] * max_segments + run_slot
  count = lambda weights: tf.reshape(tf.math.bincount(
      image_slot, weights=tf.cast(weights, tf.float64),
      minlength=batch * max_segments, maxlength=batch * max_segments,
      dtype=tf.float64), [batch, max_segments])
  area = count(length)
  sums = tf.stack([count(length * runs['y']),
                   count(length * runs['x'] + length * (length - 1) // 2)],
                  -1)
  return area, sums / tf.maximum(area, 1.0)[..., None]


def _slot_table(values, area, center, thing_class_ids, label_divisor,
                ignore_label, small_instance_area, small_instance_weight):
  """Per-slot targets.

  Args:
    values: int32 [B, S], each slot's panoptic value.
    area: float64 [B, S]; center: float64 [B, S, 2], from _segment_stats.

  Returns:
    table float32 [B, S, 5] (semantic weight, center weight, offset weight,
    center y, center x) and is_instance bool [B, S].
  """
  center = tf.cast(center, tf.float32)
  classes = values // label_divisor
  used = area > 0
  is_thing = used & tf.reduce_any(
      classes[..., None] == tf.constant(list(thing_class_ids), tf.int32),
      axis=-1)
  is_instance = is_thing & (values % label_divisor > 0)
  is_crowd = is_thing & (values % label_divisor == 0)
  is_small = is_instance & (area < small_instance_area)
  is_ignore = tf.equal(classes, ignore_label)
  table = tf.stack([
      tf.where(is_ignore, 0.0, tf.where(is_small, small_instance_weight,
                                        1.0)),
      tf.where(is_ignore | is_crowd, 0.0, 1.0),
      tf.cast(is_instance, tf.float32),
      center[..., 0], center[..., 1]], axis=-1)
  return table, is_instance


def _value_key(values, image, thing_class_ids, label_divisor):
  """The value table's row of each value (see _keyed_table): b K + (c -
  c_min) * divisor + i for v = c * divisor + i, c in the thing classes'
  range [c_min, c_max]; and whether c is in that range (elsewhere the key
  is meaningless).

  Args:
    values: int32 [B, ...]; image: int32 index of each value's image,
      broadcastable to ``values``.
  """
  low, high = min(thing_class_ids), max(thing_class_ids)
  classes = values // label_divisor
  in_range = (classes >= low) & (classes <= high)
  key = (tf.where(in_range, classes - low, 0) * label_divisor
         + values % label_divisor
         + image * table_rows(thing_class_ids, label_divisor))
  return key, in_range


def _keyed_table(values, area, table, thing_class_ids, label_divisor):
  """The per-slot table rearranged by value, one dense array per batch.

  Value v = c * divisor + i of a class c in [c_min, c_max], the smallest
  and largest thing class, has the key k(v) = (c - c_min) * divisor + i in
  [0, K), K = (c_max - c_min + 1) * divisor: distinct such values have
  distinct keys, so a thing pixel finds its row with one gather. Values of
  other classes are neither things nor (checked) carry an instance id: a
  stuff row or an ignore row fits them all.

  Args:
    values: int32 [B, S]; area: float64 [B, S]; table: float32 [B, S, 5],
      from _slot_table.

  Returns:
    float32 [B K + 3, 5]: at b K + k(v), the row of value v in image b
    (rows of values absent from image b are never read); then a stuff row
    (weights 1, 1, 0), an ignore row (0, 0, 0) and a spill row.
  """
  batch = tf.shape(values)[0]
  keys_per_image = table_rows(thing_class_ids, label_divisor)
  key, in_range = _value_key(values, tf.range(batch)[:, None],
                             thing_class_ids, label_divisor)
  in_range &= area > 0
  # Then the stuff row, the ignore row (zeros) and a spill row for the
  # slots out of range. One scatter (no concatenation after it), so the
  # per-pixel gathers read a plain array.
  stuff = batch * keys_per_image
  key = tf.concat([tf.reshape(tf.where(in_range, key, stuff + 2), [-1]),
                   [stuff]], 0)
  rows = tf.concat([tf.reshape(table, [-1, 5]),
                    [[1.0, 1.0, 0.0, 0.0, 0.0]]], 0)
  return tf.tensor_scatter_nd_update(tf.zeros([stuff + 3, 5]), key[:, None],
                                     rows)


def _pixel_targets(panoptic, keyed, thing_class_ids, label_divisor,
                   ignore_label):
  """Every target but the heatmap: per pixel, gathers from the table.

  Args:
    panoptic: int32 [B, H, W]; keyed: float32 [B K + 3, 5], from
      _keyed_table.

  Returns:
    dict of five targets (see generate_targets).
  """
  height, width = tf.shape(panoptic)[1], tf.shape(panoptic)[2]
  stuff_row = tf.shape(keyed)[0] - 3
  classes = panoptic // label_divisor
  key, in_range = _value_key(panoptic,
                             tf.range(tf.shape(panoptic)[0])[:, None, None],
                             thing_class_ids, label_divisor)
  row = tf.where(in_range, key,
                 tf.where(classes == ignore_label, stuff_row + 1, stuff_row))
  column = lambda j: tf.gather(keyed[:, j], row)
  offset_weights = column(2)
  is_instance = offset_weights > 0
  ys = tf.cast(tf.range(height), tf.float32)[:, None]
  xs = tf.cast(tf.range(width), tf.float32)[None, :]
  return {
      keys.SEMANTIC: classes,
      keys.SEMANTIC_WEIGHTS: column(0),
      keys.CENTER_WEIGHTS: column(1),
      keys.OFFSETS: tf.stack([
          tf.where(is_instance, column(3) - ys, 0.0),
          tf.where(is_instance, column(4) - xs, 0.0)], axis=-1),
      keys.OFFSET_WEIGHTS: offset_weights,
  }


@tf.function(jit_compile=True)
def _targets_from_slots(panoptic, values, area, center, thing_class_ids,
                        label_divisor, ignore_label, sigma,
                        small_instance_area, small_instance_weight):
  """All targets from the label, its slots and their statistics, in one
  XLA call.

  Args:
    panoptic: int32 [B, H, W].
    values: int32 [B, S], each slot's panoptic value (0 if unused).
    area, center: float64 [B, S] and [B, S, 2], from _segment_stats.
    The others: Python values, see generate_targets (compiled once per
    batch shape and setting).

  Returns:
    dict of the six targets, each [B, H, W] (offsets [B, H, W, 2]).
  """
  table, is_instance = _slot_table(
      values, area, center, thing_class_ids, label_divisor, ignore_label,
      small_instance_area, small_instance_weight)
  keyed = _keyed_table(values, area, table, thing_class_ids, label_divisor)
  targets = _pixel_targets(panoptic, keyed, thing_class_ids, label_divisor,
                           ignore_label)
  targets[keys.CENTER_HEATMAP] = paint_heatmap(
      table, is_instance, tf.shape(panoptic)[1], tf.shape(panoptic)[2],
      sigma)
  return targets


# At most this many rows of the value-keyed table per image (80 MB of
# float32 rows of 5): label_divisor 1000 allows a thing-class range of 4194
# classes, 65536 one of 64.
MAX_TABLE_ROWS = 1 << 22


def table_rows(thing_class_ids, label_divisor):
  """Rows per image of the value-keyed table (_keyed_table):
  (c_max - c_min + 1) * label_divisor.

  Raises:
    ValueError: above MAX_TABLE_ROWS, naming both settings.
  """
  rows = (max(thing_class_ids) - min(thing_class_ids) + 1) * label_divisor
  if rows > MAX_TABLE_ROWS:
    raise ValueError(
        f'label_divisor {label_divisor} x the thing-class range '
        f'{min(thing_class_ids)}..{max(thing_class_ids)} gives {rows} rows '
        f'per image for the targets\' value table, more than '
        f'{MAX_TABLE_ROWS} (80 MB); use a smaller label_divisor (it must only '
        'exceed the number of instances of one class in an image).')
  return rows


def generate_targets(panoptic, *, thing_class_ids, label_divisor,
                     ignore_label, sigma=8.0, small_instance_area=4096,
                     small_instance_weight=3.0, max_segments=256):
  """Training targets of one panoptic label or of a batch of them.

  Args:
    panoptic: int32 [H, W] or [B, H, W], class * label_divisor + instance;
      crowd is a thing class with instance 0, ignore is ignore_label *
      label_divisor.
    thing_class_ids: classes that have instances.
    label_divisor: see above.
    ignore_label: semantic label of ignored pixels.
    sigma: Gaussian sigma of the center heatmap, in pixels.
    small_instance_area: instances with fewer pixels are "small".
    small_instance_weight: semantic weight of small-instance pixels.
    max_segments: maximum number of distinct panoptic values (segments) in
      one label; more raise InvalidArgumentError.

  Raises:
    ValueError: thing_class_ids empty, panoptic of another rank, or a
      value table above MAX_TABLE_ROWS (table_rows).
    InvalidArgumentError (when run): more segments than max_segments, or a
      value with an instance id on a class outside thing_class_ids (e.g. an
      instance id that spilled past label_divisor into a stuff class).

  Returns:
    dict, each with the leading dimensions of ``panoptic`` ([B,] H, W):
    ``semantic`` int32, ``semantic_weights`` float32, ``center_heatmap``
    float32, ``center_weights`` float32, ``offsets`` float32 [..., 2]
    (dy, dx), ``offset_weights`` float32.
  """
  if not thing_class_ids:
    raise ValueError('thing_class_ids is empty; Panoptic-DeepLab needs at '
                     'least one thing class.')
  panoptic = tf.convert_to_tensor(panoptic, tf.int32)
  if panoptic.shape.rank not in (2, 3):
    raise ValueError(f'panoptic must be [H, W] or [B, H, W], got shape '
                     f'{panoptic.shape}.')
  rows = table_rows(thing_class_ids, label_divisor)
  batched = panoptic if panoptic.shape.rank == 3 else panoptic[None]
  batch = tf.shape(batched)[0]
  tf.debugging.assert_less(
      batch, (2**31 - 3) // rows, message=f'a batch of labels whose value '
      f'table ({rows} rows per image) overflows int32 keys; make the batch '
      'smaller')
  runs = _runs(batched)
  run_slot, values = _number_segments(runs, batch, max_segments)
  with tf.control_dependencies([_check_encoding(values, thing_class_ids,
                                                label_divisor)]):
    values = tf.identity(values)
  area, center = _segment_stats(runs, run_slot, batch, max_segments)
  targets = _targets_from_slots(
      batched, values, area, center, tuple(int(c) for c in thing_class_ids),
      int(label_divisor), int(ignore_label), float(sigma),
      float(small_instance_area), float(small_instance_weight))
  if panoptic.shape.rank == 2:
    targets = {name: value[0] for name, value in targets.items()}
  return targets
