"""Panoptic-DeepLab training targets from a panoptic label, vectorised.

Segments are numbered with one ``tf.unique`` over the pixels; per-segment
areas and mass centers come from per-row and per-column bincounts over a
static ``max_segments`` slots. The rest is one XLA call: every per-pixel
target is one gather from a per-slot table (fused into one pass), and the
center heatmap is the max of a fixed Gaussian window per instance, painted
window by window in a compiled loop over the instances (each step touches
only its (6 sigma + 3)^2 window; XLA:CPU runs it 4-8x faster than one
``tensor_scatter_nd_max`` of all windows, bench/README.md). No Python loop
over instances.

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


def _segment_stats(panoptic, max_segments):
  """Slot per pixel and per-slot value, area and mass center.

  Args:
    panoptic: int32 [H, W].
    max_segments: S, the static number of slots.

  Returns:
    slot int32 [H*W], values int32 [S], area float32 [S], center float64
    [S, 2] (y, x); unused slots have area 0.
  """
  height, width = tf.shape(panoptic)[0], tf.shape(panoptic)[1]
  values, slot = tf.unique(tf.reshape(panoptic, [-1]))
  check = tf.debugging.assert_less_equal(
      tf.size(values), max_segments,
      message=f'panoptic label has more segments than max_segments='
              f'{max_segments}; raise data.max_segments')
  with tf.control_dependencies([check]):
    values = tf.pad(values, [[0, max_segments - tf.size(values)]])
  values = tf.ensure_shape(values, [max_segments])
  # Per-row and per-column slot counts (integer bincounts), then the area
  # and the coordinate sums as small exact float64 products: faster than
  # coordinate-weighted bincounts over all pixels.
  slot_map = tf.reshape(slot, [height, width])
  count = lambda rows: tf.cast(tf.math.bincount(
      rows, minlength=max_segments, maxlength=max_segments, axis=-1),
                               tf.float64)
  per_row, per_column = count(slot_map), count(tf.transpose(slot_map))
  area = tf.reduce_sum(per_row, axis=0)
  sum_y = tf.linalg.matvec(per_row, tf.range(height, dtype=tf.float64),
                           transpose_a=True)
  sum_x = tf.linalg.matvec(per_column, tf.range(width, dtype=tf.float64),
                           transpose_a=True)
  center = tf.stack([sum_y, sum_x], -1) / tf.maximum(area, 1.0)[:, None]
  return slot, values, tf.cast(area, tf.float32), center


def _heatmap(table, is_instance, height, width, sigma):
  """The max of the instances' Gaussian windows: float32 [H, W].

  Args:
    table: float32 [S, 5], the per-slot table (centers in columns 3, 4).
    is_instance: bool [S]. The loop runs once per instance slot.
  """
  window, radius = gaussian_window(sigma)
  size = 2 * radius + 1
  # Instance slots first, so the loop runs once per instance.
  order = tf.argsort(tf.cast(~is_instance, tf.int32), stable=True)
  count = tf.reduce_sum(tf.cast(is_instance, tf.int32))
  # The window's top-left corner in the canvas padded by ``radius``.
  corners = tf.cast(tf.round(table[:, 3:]), tf.int32)
  steps = tf.reshape(tf.stack(tf.meshgrid(
      tf.range(size), tf.range(size), indexing='ij'), -1), [-1, 2])
  window = tf.reshape(window, [-1])

  def paint(i, canvas):
    # tf.gather, not order[i]: tf2xla makes a strided slice's dynamic begin
    # a compile-time constant, so the function would be recompiled for every
    # new set of instances (and, in TF 2.20, corners[slot, 1:] inside a
    # while loop even drops its 1: offset).
    corner = tf.gather(corners, tf.gather(order, i))
    return i + 1, tf.tensor_scatter_nd_max(canvas, corner + steps, window)

  canvas = tf.zeros([height + 2 * radius, width + 2 * radius])
  _, canvas = tf.while_loop(lambda i, _: i < count, paint, [0, canvas])
  return canvas[radius:radius + height, radius:radius + width]


def generate_targets(panoptic, *, thing_class_ids, label_divisor,
                     ignore_label, sigma=8.0, small_instance_area=4096,
                     small_instance_weight=3.0, max_segments=256):
  """Training targets of one panoptic label.

  Args:
    panoptic: int32 [H, W], class * label_divisor + instance; crowd is a
      thing class with instance 0, ignore is ignore_label * label_divisor.
    thing_class_ids: classes that have instances.
    label_divisor: see above.
    ignore_label: semantic label of ignored pixels.
    sigma: Gaussian sigma of the center heatmap, in pixels.
    small_instance_area: instances with fewer pixels are "small".
    small_instance_weight: semantic weight of small-instance pixels.
    max_segments: maximum number of distinct panoptic values (segments) in
      one label; more raise InvalidArgumentError.

  Returns:
    dict: ``semantic`` int32 [H, W], ``semantic_weights`` float32 [H, W],
    ``center_heatmap`` float32 [H, W], ``center_weights`` float32 [H, W],
    ``offsets`` float32 [H, W, 2] (dy, dx), ``offset_weights`` float32
    [H, W].
  """
  if not thing_class_ids:
    raise ValueError('thing_class_ids is empty; Panoptic-DeepLab needs at '
                     'least one thing class.')
  panoptic = tf.convert_to_tensor(panoptic, tf.int32)
  height, width = tf.shape(panoptic)[0], tf.shape(panoptic)[1]
  slot, values, area, center = _segment_stats(panoptic, max_segments)
  classes = values // label_divisor
  is_thing = tf.reduce_any(
      classes[:, None] == tf.constant(list(thing_class_ids), tf.int32)[None],
      axis=1)
  used = area > 0
  is_instance = used & is_thing & (values % label_divisor > 0)
  is_crowd = used & is_thing & (values % label_divisor == 0)
  is_small = is_instance & (area < small_instance_area)
  is_ignore = tf.equal(classes, ignore_label)

  # Every per-pixel target is a per-slot value: one table, one gather.
  center = tf.cast(center, tf.float32)
  table = tf.stack([
      tf.where(is_ignore, 0.0, tf.where(is_small, small_instance_weight,
                                        1.0)),
      tf.where(is_ignore | is_crowd, 0.0, 1.0),
      tf.cast(is_instance, tf.float32),
      center[:, 0], center[:, 1]], axis=-1)
  return _pixel_targets(tf.reshape(slot, [height, width]), table, classes,
                        is_instance, float(sigma))


@tf.function(jit_compile=True)
def _pixel_targets(slot_map, table, classes, instance_slots, sigma):
  """Every target from the per-slot table, in one XLA call.

  Args:
    slot_map: int32 [H, W], each pixel's segment slot.
    table: float32 [S, 5]: semantic weight, center weight, offset weight,
      center y, center x.
    classes: int32 [S], each slot's class.
    instance_slots: bool [S], the slots that get a heatmap peak.
    sigma: Python float, the Gaussian's sigma.

  Returns:
    dict of the six targets. XLA fuses the gathers and the arithmetic into
    one pass over the pixels (figures in bench/README.md); it runs inside
    tf.data maps, compiled once per label size.
  """
  height, width = tf.shape(slot_map)[0], tf.shape(slot_map)[1]
  pixels = tf.gather(table, slot_map)
  offset_weights = pixels[..., 2]
  is_instance = offset_weights > 0
  ys = tf.cast(tf.range(height), tf.float32)[:, None]
  xs = tf.cast(tf.range(width), tf.float32)[None, :]
  return {
      keys.SEMANTIC: tf.gather(classes, slot_map),
      keys.SEMANTIC_WEIGHTS: pixels[..., 0],
      keys.CENTER_WEIGHTS: pixels[..., 1],
      keys.OFFSETS: tf.stack([
          tf.where(is_instance, pixels[..., 3] - ys, 0.0),
          tf.where(is_instance, pixels[..., 4] - xs, 0.0)], axis=-1),
      keys.OFFSET_WEIGHTS: offset_weights,
      keys.CENTER_HEATMAP: _heatmap(table, instance_slots, height, width,
                                    sigma),
  }
