"""The center heatmap target: a 2D Gaussian per instance, max-combined.

Panoptic-DeepLab's center target (REFERENCE.md, "Targets"): around each
instance's rounded mass center a Gaussian of peak 1 and standard deviation
sigma (8 px in the paper), truncated to a (6 sigma + 3)^2 window; where
windows overlap the larger value wins.
"""

import tensorflow as tf


def gaussian_window(sigma):
  """float32 [2r+1, 2r+1], r = round(3 sigma + 1): exp(-d^2 / (2 sigma^2))."""
  radius = int(round(3 * sigma + 1))
  coords = tf.range(-radius, radius + 1, dtype=tf.float32)
  squared = coords[:, None] ** 2 + coords[None, :] ** 2
  return tf.exp(-squared / (2.0 * sigma ** 2)), radius


def paint_heatmap(table, is_instance, height, width, sigma):
  """Per image, the max of its instances' Gaussian windows: [B, H, W].

  Each window is (6 sigma + 3)^2 pixels around the rounded mass center,
  painted one instance at a time in a compiled loop (XLA:CPU runs it 4-8x
  faster than one ``tensor_scatter_nd_max`` of all windows,
  bench/README.md). Call it inside an XLA-compiled function.

  Args:
    table: float32 [B, S, 5], per slot (targets._slot_table): mass center
      (y, x) in columns 3, 4.
    is_instance: bool [B, S], the slots to paint.
    height, width: the label's size.
    sigma: Gaussian sigma, in pixels.
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
