"""Panoptic-DeepLab training targets from panoptic labels, vectorised.

Works on one label [H, W] or a batch [B, H, W] at once (the input pipeline
batches first, so fixed per-call costs are paid once per batch). Segments of
every image are numbered with one ``tf.unique`` over (image, value) pairs
into a static ``max_segments`` slots per image; per-slot areas and mass
centers come from three bincounts over the pixels. Everything after that is
one XLA-compiled function: every per-pixel target as one gather from a
per-slot table
(fused into one pass over the pixels), and the center heatmap as a max of a
fixed Gaussian window per instance, written window by window in a compiled
loop over the instances (each step touches only its (6 sigma + 3)^2 window;
XLA:CPU runs it 4-8x faster than one ``tensor_scatter_nd_max`` of all
windows, figures in bench/README.md).

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


def gaussian_window(sigma):
  """float32 [2r+1, 2r+1], r = round(3 sigma + 1): exp(-d^2 / (2 sigma^2))."""
  radius = int(round(3 * sigma + 1))
  coords = tf.range(-radius, radius + 1, dtype=tf.float32)
  squared = coords[:, None] ** 2 + coords[None, :] ** 2
  return tf.exp(-squared / (2.0 * sigma ** 2)), radius


def _number_segments(panoptic, max_segments):
  """Each pixel's segment slot within its image, and each slot's value.

  Args:
    panoptic: int32 [B, H, W].
    max_segments: S, the static number of slots per image.

  Returns:
    slot_map int32 [B, H, W] in [0, S) and values int32 [B, S] (0 in
    unused slots).
  """
  batch = tf.shape(panoptic)[0]
  # (image, value) as one int64 key: image b's keys lie in
  # [b 2^32 - 2^31, b 2^32 + 2^31), disjoint from every other image's.
  image_key = tf.range(batch, dtype=tf.int64) * (1 << 32)
  keyed = tf.cast(panoptic, tf.int64) + image_key[:, None, None]
  unique_keys, slot = tf.unique(tf.reshape(keyed, [-1]), out_idx=tf.int32)
  # tf.unique numbers keys in order of first appearance, so image b's slots
  # are the contiguous range that starts at the slot of its first pixel.
  slot = tf.reshape(slot, tf.shape(panoptic))
  first = slot[:, 0, 0]
  count = tf.concat([first[1:], [tf.size(unique_keys)]], 0) - first
  check = tf.debugging.assert_less_equal(
      tf.reduce_max(count), max_segments,
      message=f'a panoptic label has more segments than max_segments='
              f'{max_segments}; raise data.max_segments')
  with tf.control_dependencies([check]):
    slot_map = slot - first[:, None, None]
  local = tf.range(max_segments)[None, :]
  used = local < count[:, None]
  index = tf.minimum(first[:, None] + local, tf.size(unique_keys) - 1)
  values = tf.cast(tf.gather(unique_keys, index) - image_key[:, None],
                   tf.int32)
  return slot_map, tf.where(used, values, 0)


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
      ['panoptic label values with an instance id on a class that has no '
       'instances:', tf.boolean_mask(values, bad),
       f'labels must be class * {label_divisor} + instance, instance < '
       f'{label_divisor}; an instance id that reaches label_divisor spills '
       'into the next class (the readers refuse such files)'], summarize=5)


def _segment_stats(slot_map, max_segments):
  """Per-slot area and mass center, from three bincounts over the pixels.

  Args:
    slot_map: int32 [B, H, W], each pixel's slot in its image.
    max_segments: S.

  Returns:
    area float64 [B, S] and center float64 [B, S, 2] (y, x): float64 sums
    are exact for any image size. (TensorFlow's bincount kernels beat one
    XLA segment sum here, which XLA:CPU runs on one thread: 13 vs 31 ms at
    1024x2048.)
  """
  batch, height, width = (tf.shape(slot_map)[0], tf.shape(slot_map)[1],
                          tf.shape(slot_map)[2])
  num_bins = batch * max_segments
  image_slot = tf.reshape(
      slot_map + tf.range(batch)[:, None, None] * max_segments, [-1])
  shape = [batch, height, width]
  ys = tf.broadcast_to(tf.range(height, dtype=tf.float64)[:, None], shape)
  xs = tf.broadcast_to(tf.range(width, dtype=tf.float64)[None, :], shape)
  count = lambda weights: tf.reshape(tf.math.bincount(
      image_slot, weights=weights, minlength=num_bins, maxlength=num_bins,
      dtype=tf.float64), [batch, max_segments])
  area = count(None)
  sums = tf.stack([count(tf.reshape(ys, [-1])), count(tf.reshape(xs, [-1]))],
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
    center y, center x), classes int32 [B, S], is_instance bool [B, S].
  """
  center = tf.cast(center, tf.float32)
  classes = values // label_divisor
  is_thing = tf.reduce_any(
      classes[..., None] == tf.constant(list(thing_class_ids), tf.int32),
      axis=-1)
  used = area > 0
  is_instance = used & is_thing & (values % label_divisor > 0)
  is_crowd = used & is_thing & (values % label_divisor == 0)
  is_small = is_instance & (area < small_instance_area)
  is_ignore = tf.equal(classes, ignore_label)
  table = tf.stack([
      tf.where(is_ignore, 0.0, tf.where(is_small, small_instance_weight,
                                        1.0)),
      tf.where(is_ignore | is_crowd, 0.0, 1.0),
      tf.cast(is_instance, tf.float32),
      center[..., 0], center[..., 1]], axis=-1)
  return table, classes, is_instance


def _pixel_targets(slot_map, table, classes):
  """Every target but the heatmap: gathers from the per-slot table.

  Args:
    slot_map: int32 [B, H, W]; table float32 [B, S, 5]; classes int32
      [B, S].
  """
  height, width = tf.shape(slot_map)[1], tf.shape(slot_map)[2]
  pixels = tf.gather(table, slot_map, batch_dims=1)
  offset_weights = pixels[..., 2]
  is_instance = offset_weights > 0
  ys = tf.cast(tf.range(height), tf.float32)[:, None]
  xs = tf.cast(tf.range(width), tf.float32)[None, :]
  return {
      keys.SEMANTIC: tf.gather(classes, slot_map, batch_dims=1),
      keys.SEMANTIC_WEIGHTS: pixels[..., 0],
      keys.CENTER_WEIGHTS: pixels[..., 1],
      keys.OFFSETS: tf.stack([
          tf.where(is_instance, pixels[..., 3] - ys, 0.0),
          tf.where(is_instance, pixels[..., 4] - xs, 0.0)], axis=-1),
      keys.OFFSET_WEIGHTS: offset_weights,
  }


def _heatmap(table, is_instance, height, width, sigma):
  """Per image, the max of its instances' Gaussian windows: [B, H, W].

  Args:
    table: float32 [B, S, 5] from _slot_table (centers in columns 3, 4).
    is_instance: bool [B, S].
  """
  window, radius = gaussian_window(sigma)
  size = 2 * radius + 1
  num_slots = is_instance.shape[1]
  flat_instance = tf.reshape(is_instance, [-1])
  # Instance slots first, so the loop runs once per instance.
  order = tf.argsort(tf.cast(~flat_instance, tf.int32), stable=True)
  count = tf.reduce_sum(tf.cast(flat_instance, tf.int32))
  # Window corners in the canvas padded by ``radius``: the rounded center.
  corners = tf.cast(tf.round(tf.reshape(table[..., 3:], [-1, 2])), tf.int32)
  steps = tf.reshape(tf.stack(tf.meshgrid(
      tf.range(size), tf.range(size), indexing='ij'), -1), [-1, 2])
  window = tf.reshape(window, [-1])

  def paint(i, canvas):
    # tf.gather, not order[i]: tf2xla makes a strided slice's dynamic begin
    # a compile-time constant, so the function would be recompiled for every
    # new set of instances (and, in TF 2.20, corners[slot, 1:] in a while
    # loop even drops its 1: offset).
    slot = tf.gather(order, i)
    corner = tf.gather(corners, slot)
    indices = tf.concat([tf.fill([size * size, 1], slot // num_slots),
                         corner[None] + steps], -1)
    return i + 1, tf.tensor_scatter_nd_max(canvas, indices, window)

  canvas = tf.zeros([tf.shape(table)[0], height + 2 * radius,
                     width + 2 * radius])
  _, canvas = tf.while_loop(lambda i, _: i < count, paint, [0, canvas])
  return canvas[:, radius:radius + height, radius:radius + width]


@tf.function(jit_compile=True)
def _targets_from_slots(slot_map, values, area, center, thing_class_ids,
                        label_divisor, ignore_label, sigma,
                        small_instance_area, small_instance_weight):
  """All targets from the slots and their statistics, in one XLA call.

  Args:
    slot_map: int32 [B, H, W], each pixel's slot in its image.
    values: int32 [B, S], each slot's panoptic value (0 if unused).
    area, center: float64 [B, S] and [B, S, 2], from _segment_stats.
    The others: Python values, see generate_targets (compiled once per
    batch shape and setting).

  Returns:
    dict of the six targets, each [B, H, W] (offsets [B, H, W, 2]).
  """
  table, classes, is_instance = _slot_table(
      values, area, center, thing_class_ids, label_divisor, ignore_label,
      small_instance_area, small_instance_weight)
  targets = _pixel_targets(slot_map, table, classes)
  targets[keys.CENTER_HEATMAP] = _heatmap(
      table, is_instance, tf.shape(slot_map)[1], tf.shape(slot_map)[2],
      sigma)
  return targets


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
  batched = panoptic if panoptic.shape.rank == 3 else panoptic[None]
  slot_map, values = _number_segments(batched, max_segments)
  with tf.control_dependencies([_check_encoding(values, thing_class_ids,
                                                label_divisor)]):
    values = tf.identity(values)
  area, center = _segment_stats(slot_map, max_segments)
  targets = _targets_from_slots(
      slot_map, values, area, center, tuple(int(c) for c in thing_class_ids),
      int(label_divisor), int(ignore_label), float(sigma),
      float(small_instance_area), float(small_instance_weight))
  if panoptic.shape.rank == 2:
    targets = {name: value[0] for name, value in targets.items()}
  return targets
