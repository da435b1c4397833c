"""Center finding and pixel grouping of the Panoptic-DeepLab merge.

Static shapes, any batch size, XLA-compilable (see merge.py for the
whole algorithm). Centers: max-pool NMS and top-k on the heatmap. Grouping:
each pixel's vote (its position plus its offset) joins the nearest kept
center, computed ``pixel_block`` pixels at a time and, within a block,
``center_chunk`` centers at a time in a loop that stops after the last kept
center: memory O(B * pixel_block * center_chunk), never O(B * H * W * K).
"""

import tensorflow as tf


def find_centers(center_heatmap, *, center_threshold, nms_kernel, top_k):
  """Max-pool NMS and top-k on the center heatmap.

  Args:
    center_heatmap: float32 [B, H, W, 1].
    center_threshold: values <= this are never centers.
    nms_kernel: odd max-pool window size.
    top_k: number of center slots.

  Returns:
    points int32 [B, top_k, 2] (y, x), scores float32 [B, top_k] (0 where
    invalid) and valid bool [B, top_k]; valid slots come first, by score.
  """
  heat = center_heatmap[..., 0]
  heat = tf.where(heat > center_threshold, heat, tf.zeros_like(heat))
  # A k x k max-pool is a 1 x k then a k x 1 max-pool (same SAME padding),
  # 2k instead of k^2 comparisons per pixel.
  pooled = tf.nn.max_pool2d(heat[..., None], [1, nms_kernel], 1, 'SAME')
  pooled = tf.nn.max_pool2d(pooled, [nms_kernel, 1], 1, 'SAME')[..., 0]
  is_center = (heat > center_threshold) & (heat == pooled)
  width = tf.shape(heat)[2]
  flat = tf.reshape(tf.where(is_center, heat, -tf.ones_like(heat)),
                    [tf.shape(heat)[0], -1])
  num_pixels = heat.shape[1] * heat.shape[2]
  k = min(top_k, num_pixels)
  scores, indices = tf.math.top_k(flat, k=k, sorted=True)
  if k < top_k:  # fewer pixels than slots: pad with invalid slots
    scores = tf.pad(scores, [[0, 0], [0, top_k - k]], constant_values=-1.0)
    indices = tf.pad(indices, [[0, 0], [0, top_k - k]])
  valid = scores > center_threshold
  points = tf.stack([indices // width, indices % width], axis=-1)
  return points, tf.where(valid, scores, tf.zeros_like(scores)), valid


def _nearest_in_block(vote_y, vote_x, points, valid, num_valid, center_chunk):
  """Nearest valid center for one block of votes.

  Args:
    vote_y, vote_x: float32 [B, 1, P] vote coordinates.
    points: float32 [B, K', 2], K' a multiple of ``center_chunk``.
    valid: bool [B, K'].
    num_valid: int32 scalar, the largest number of valid slots in the batch.
    center_chunk: centers compared per loop step.

  Returns:
    int32 [B, P]: center index, -1 where none is valid.
  """
  def step(start, best_distance, best_index):
    chunk = tf.slice(points, [0, start, 0], [-1, center_chunk, 2])
    chunk_valid = tf.slice(valid, [0, start], [-1, center_chunk])
    distance = (tf.square(vote_y - chunk[:, :, 0:1]) +
                tf.square(vote_x - chunk[:, :, 1:2]))
    distance = tf.where(chunk_valid[:, :, None], distance, float('inf'))
    nearest = tf.argmin(distance, axis=1, output_type=tf.int32)  # ties: lowest
    chunk_best = tf.reduce_min(distance, axis=1)
    closer = chunk_best < best_distance  # strict: earlier chunks win ties
    return (start + center_chunk,
            tf.where(closer, chunk_best, best_distance),
            tf.where(closer, nearest + start, best_index))

  batch, block = tf.shape(vote_y)[0], vote_y.shape[2]
  _, _, best_index = tf.while_loop(
      lambda start, *_: start < num_valid, step,
      (tf.constant(0), tf.fill([batch, block], float('inf')),
       tf.fill([batch, block], -1)),
      maximum_iterations=points.shape[1] // center_chunk)
  return best_index


def group_pixels(center_offsets, points, valid, center_chunk=8,
                 pixel_block=65536):
  """Index of the nearest valid center to each pixel's vote.

  Pixels are taken ``pixel_block`` at a time (an outer loop) and, within a
  block, centers ``center_chunk`` at a time (an inner loop that stops after
  the last valid center), so the running minimum of a block stays in cache.

  Args:
    center_offsets: float32 [B, H, W, 2] (dy, dx).
    points: int32 [B, K, 2] center (y, x).
    valid: bool [B, K]; valid slots come first.
    center_chunk: centers compared per inner step (memory vs. speed).
    pixel_block: pixels per outer step.

  Returns:
    int32 [B, H, W]: center index in [0, K), or -1 where no valid center
    (or a non-finite vote) exists.
  """
  batch = tf.shape(center_offsets)[0]
  _, height, width, _ = center_offsets.shape
  num_pixels = height * width
  block = min(pixel_block, num_pixels)
  num_blocks = -(-num_pixels // block)
  num_slots = points.shape[1]
  padded = -(-num_slots // center_chunk) * center_chunk
  points = tf.pad(tf.cast(points, tf.float32),
                  [[0, 0], [0, padded - num_slots], [0, 0]])
  valid = tf.pad(valid, [[0, 0], [0, padded - num_slots]])
  num_valid = tf.reduce_max(tf.reduce_sum(tf.cast(valid, tf.int32), axis=1))

  def blocks(votes):  # [B, H, W] -> [B, num_blocks, block], tail padded
    votes = tf.reshape(votes, [batch, num_pixels])
    votes = tf.pad(votes, [[0, 0], [0, num_blocks * block - num_pixels]])
    return tf.reshape(votes, [batch, num_blocks, block])

  # Pixels on the minor axis, so that the reductions over centers are
  # element-wise along pixels (vectorised).
  vote_y = blocks(tf.range(height, dtype=tf.float32)[:, None] +
                  center_offsets[..., 0])
  vote_x = blocks(tf.range(width, dtype=tf.float32)[None, :] +
                  center_offsets[..., 1])

  def block_step(index, nearest):
    found = _nearest_in_block(vote_y[:, index][:, None],
                              vote_x[:, index][:, None], points, valid,
                              num_valid, center_chunk)
    return index + 1, nearest.write(index, found)

  _, nearest = tf.while_loop(
      lambda index, _: index < num_blocks, block_step,
      # A static element shape where the batch is static: TFLite needs it.
      (tf.constant(0), tf.TensorArray(
          tf.int32, size=num_blocks,
          element_shape=[center_offsets.shape[0], block])))
  nearest = tf.transpose(nearest.stack(), [1, 0, 2])  # [B, blocks, block]
  nearest = tf.reshape(nearest, [batch, -1])[:, :num_pixels]
  return tf.reshape(nearest, [batch, height, width])
