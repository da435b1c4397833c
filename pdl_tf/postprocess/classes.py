"""The merge's class decisions, as static-shape TensorFlow ops.

Per pixel, the semantic argmax (ties -> smaller class id; ``argmax_by_keys``
as one max over order keys); per instance, the majority-vote class, ids
numbered from 1 per class, and the score = heatmap value at the center x
mean probability of the instance's class over its pixels; per image, the
stuff classes that cover at least ``stuff_area`` pixels. Used by
merge.panoptic_merge (REFERENCE.md, "Post-processing", steps 1, 4-6).
"""

import tensorflow as tf

VOID = -1  # the panoptic (and class) value of void pixels and empty slots


def _argmax_lowest(values, axis=-1):
  """Argmax with ties resolved to the lowest index.

  tf.argmax does this on CPU with and without XLA, but TensorFlow documents
  no tie rule, so test_argmax_and_argmin_ties_go_to_lowest_index pins it.
  """
  return tf.argmax(values, axis=axis, output_type=tf.int32)


# The segment of values _segment_sum leaves out: negative even after adding
# an image offset (batch * num_segments < 2^30).
DROPPED = -(1 << 30)


def _segment_sum(values, segments, num_segments):
  """Per-image histogram: [B, N] values summed into [B, num_segments].

  Values whose segment is DROPPED are left out (it stays negative after the
  image's offset is added, and TensorFlow, XLA and TFLite all skip negative
  segments): cheaper than summing them into a bin that is thrown away (the
  merge's three histograms, 6 ms less at 1024x2048).
  """
  batch = tf.shape(segments)[0]
  offsets = tf.range(batch)[:, None] * num_segments
  sums = tf.math.unsorted_segment_sum(
      tf.reshape(values, [-1]), tf.reshape(segments + offsets, [-1]),
      batch * num_segments)
  return tf.reshape(sums, [batch, num_segments])


def majority_vote(semantic, instance, num_classes, num_slots):
  """Class and area of each instance from the semantic map.

  Args:
    semantic: int32 [B, N] class per pixel.
    instance: int32 [B, N], 0 = none, else slot index + 1.
    num_classes: C.
    num_slots: K.

  Returns:
    classes int32 [B, K] (-1 for an empty slot) and areas int32 [B, K].
  """
  counts = _segment_sum(
      tf.ones_like(semantic),
      tf.where(instance > 0, (instance - 1) * num_classes + semantic,
               DROPPED),
      num_slots * num_classes)
  counts = tf.reshape(counts, [-1, num_slots, num_classes])
  areas = tf.reduce_sum(counts, axis=-1)
  classes = tf.where(areas > 0, _argmax_lowest(counts), VOID)
  return classes, areas


def per_class_ids(classes):
  """1-based id of each instance among those of its class, in slot order.

  Args:
    classes: int32 [B, K], -1 for empty slots.

  Returns:
    int32 [B, K], 0 for empty slots.
  """
  num_slots = classes.shape[1]
  earlier = tf.range(num_slots)[None, :] < tf.range(num_slots)[:, None]
  same = (classes[:, :, None] == classes[:, None, :]) & earlier[None]
  same &= (classes >= 0)[:, None, :]
  ids = tf.reduce_sum(tf.cast(same, tf.int32), axis=-1) + 1
  return tf.where(classes >= 0, ids, 0)


def stuff_panoptic(semantic, is_thing, inside, *, num_classes, stuff_area,
                   label_divisor):
  """Panoptic ids of stuff pixels: class * divisor, or VOID if the class
  covers fewer than ``stuff_area`` pixels inside the image. Thing pixels and
  pixels outside the image get VOID.

  Args:
    semantic: int32 [B, N]; is_thing: bool [B, N]; inside: bool [B, N].

  Returns:
    int32 [B, N].
  """
  is_stuff = ~is_thing & inside
  areas = _segment_sum(tf.ones_like(semantic),
                       tf.where(is_stuff, semantic, DROPPED), num_classes)
  large = tf.gather(areas, semantic, batch_dims=1) >= stuff_area
  return tf.where(large & is_stuff, semantic * label_divisor, VOID)


CLASS_CHUNK = 32


def _reduce_over_classes(logits, term, reduce_fn, combine_fn):
  """reduce_c term(logits[..., c], c): [B, N, C] -> [B, N], no [B, N, C]
  temporary kept.

  Classes are taken 32 at a time: XLA:CPU fuses an element-wise term into a
  reduction over at most 32 classes, but builds a [B, N, C] temporary above
  that (871 MB for 4 x 640 x 640 x 133 logits).

  Args:
    logits: float32 [B, N, C].
    term: fn(chunk float32 [B, N, c], class_ids int32 [c]) -> [B, N, c].
    reduce_fn: e.g. tf.reduce_sum, called with axis=-1.
    combine_fn: combines two chunks' results, e.g. tf.add.
  """
  num_classes = logits.shape[-1]
  total = None
  for start in range(0, num_classes, CLASS_CHUNK):
    chunk = logits[..., start:start + CLASS_CHUNK]
    part = reduce_fn(term(chunk, tf.range(start, start + chunk.shape[-1])),
                     axis=-1)
    total = part if total is None else combine_fn(total, part)
  return total


def _sum_over_classes(logits, term):
  """sum_c term(logits[..., c], c), see _reduce_over_classes."""
  return _reduce_over_classes(logits, term, tf.reduce_sum, tf.add)


def argmax_by_keys(logits):
  """``_argmax_lowest`` over the classes of float32 logits, as one max.

  Each logit becomes an int64 key, its order-preserving bits above the
  reversed class index, and the largest key gives the class. XLA:CPU runs
  such a plain reduction on every core, where its argmax (a reduction of
  (value, index) pairs) runs on one (1024x2048x19 alone: 12 against 25 ms
  on 2 cores). Without XLA it would build [B, N, C] int64 temporaries, so
  the merge uses it only when compiled (``merge_fn``).

  Args:
    logits: float32 [B, N, C], no NaN.

  Returns:
    int32 [B, N], ties -> lowest index.
  """
  num_classes = logits.shape[-1]

  def order_keys(chunk, class_ids):
    chunk = tf.where(chunk == 0.0, 0.0, chunk)  # -0.0 ties with +0.0
    bits = tf.bitcast(chunk, tf.int32)
    # As ints, negative floats order backwards; flipping all bits but the
    # sign makes int order the float order (-Inf lowest, +Inf highest).
    ordered = tf.where(bits >= 0, bits,
                       tf.bitwise.bitwise_xor(bits, 0x7fffffff))
    reversed_class = tf.cast(num_classes - 1 - class_ids, tf.int64)
    return tf.cast(ordered, tf.int64) * (1 << 32) + reversed_class

  best = _reduce_over_classes(logits, order_keys, tf.reduce_max, tf.maximum)
  return num_classes - 1 - tf.cast(best % (1 << 32), tf.int32)


def _one_hot_pick(logits, index):
  """logits[b, n, index[b, n]] as a one-hot sum: [B, N, C], [B, N] -> [B, N].

  XLA runs one-hot sums over the same logits in one pass; a gather there
  was fused into the later reduction and recomputed per class (3x slower).
  """
  return _sum_over_classes(
      logits, lambda chunk, ids: tf.where(ids == index[..., None], chunk, 0.0))


def instance_scores(logits, instance, classes, areas, center_scores):
  """Objectness x mean class probability of each instance.

  The probability of class k at a pixel is 1 / sum_c exp(logit[c] -
  logit[k]), so no softmax map is built and the logits are read twice. It
  is exactly 0 where logit[k] is -Inf, and underflows to 0 (the true value
  is below 1e-38) where another logit exceeds logit[k] by more than 88.

  Args:
    logits: float32 [B, N, C].
    instance: int32 [B, N] (0 = none, else slot + 1).
    classes: int32 [B, K]; areas: int32 [B, K]; center_scores: float32
      [B, K].

  Returns:
    scores float32 [B, K] (0 for empty slots), and logits_finite bool [B, N]:
    no logit of the pixel is NaN or +Inf and not all are -Inf.
  """
  num_slots = classes.shape[1]
  class_table = tf.pad(tf.maximum(classes, 0), [[0, 0], [1, 0]])
  pixel_logit = _one_hot_pick(
      logits, tf.gather(class_table, instance, batch_dims=1))
  # One pass computes the sum and checks the logits. -Inf logits add 0;
  # NaN or +Inf logits (made NaN here) make the sum NaN. The sum is >= 1
  # where logit[k] is finite (its own term is 1), +Inf where logit[k] is
  # -Inf but another logit is finite, and 0 where all are -Inf.
  sum_exp = _sum_over_classes(
      logits, lambda chunk, _: tf.where(
          chunk == float('inf'), float('nan'),
          tf.where(chunk == float('-inf'), 0.0,
                   tf.exp(chunk - pixel_logit[..., None]))))
  logits_finite = sum_exp > 0.0  # False for NaN
  pixel_probability = tf.where(
      (instance > 0) & (pixel_logit > float('-inf')), 1.0 / sum_exp, 0.0)
  sums = _segment_sum(pixel_probability,
                      tf.where(instance > 0, instance - 1, DROPPED),
                      num_slots)
  mean = sums / tf.cast(tf.maximum(areas, 1), tf.float32)
  return tf.where(areas > 0, center_scores * mean, 0.0), logits_finite
