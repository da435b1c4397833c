"""Panoptic-DeepLab post-processing: a static-shape, batched, XLA merge.

Every tensor has a shape fixed by the inputs and ``top_k``: no tf.unique, no
Python loop over instances. Pixels are grouped to centers ``pixel_block``
pixels at a time and, within a block, ``center_chunk`` (8) centers at a time,
in a ``tf.while_loop`` that runs only as far as the largest number of kept
centers in the batch, so the grouping's memory is O(B * pixel_block *
center_chunk), never O(B * H * W * top_k) (grouping.py).

Algorithm (REFERENCE.md, "Post-processing"):
  1. semantic = argmax of the logits (ties -> smaller class id).
  2. centers: heatmap values <= threshold dropped; a pixel is a center if it
     equals the k x k max-pool (stride 1, SAME) of the heatmap, so equal
     neighbouring maxima both survive; at most top_k by score (ties -> lower
     flat index), all top_k kept.
  3. each thing pixel moves by its offset and joins the nearest kept center
     (squared Euclidean distance; ties -> lower center index).
  4. an instance takes the most frequent thing class among its pixels (ties
     -> smaller class id); instance ids restart from 1 per class in center
     order; panoptic = class * label_divisor + id. Ids are at most top_k,
     and top_k < label_divisor is required, so no id spills into the next
     class.
  5. stuff pixels are kept if their class covers >= stuff_area pixels of the
     image, else void; thing pixels with no center are void (VOID = -1).
  6. instance score = heatmap value at the center x mean probability of the
     instance's class over its pixels.
"""

import inspect

import tensorflow as tf

from pdl_tf import keys
from pdl_tf.postprocess.grouping import find_centers
from pdl_tf.postprocess.grouping import group_pixels

VOID = -1
INSTANCE_CLASSES = 'instance_classes'
INSTANCE_AREAS = 'instance_areas'
CENTER_POINTS = 'center_points'
CENTER_SCORES = 'center_scores'
CENTER_VALID = 'center_valid'
INPUTS_FINITE = 'inputs_finite'
INPUT_NAMES = ('semantic_logits', 'center_heatmap', 'center_offsets')


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


def inside_mask(image_sizes, batch, height, width):
  """bool [B, H * W]: pixel (y, x) lies inside its image's valid
  top-left (height, width) region; all True when ``image_sizes`` is None."""
  if image_sizes is None:
    return tf.ones([batch, height * width], tf.bool)
  image_sizes = tf.cast(image_sizes, tf.int32)
  rows = tf.range(height)[None, :, None] < image_sizes[:, 0, None, None]
  cols = tf.range(width)[None, None, :] < image_sizes[:, 1, None, None]
  return tf.reshape(rows & cols, [batch, height * width])


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


def check_top_k(top_k, label_divisor):
  """Raises ValueError unless 1 <= top_k < label_divisor: instance ids run
  up to top_k, and id label_divisor would read as the next class."""
  if not 1 <= top_k < label_divisor:
    raise ValueError(f'top_k ({top_k}) must be >= 1 and < label_divisor '
                     f'({label_divisor}): instance ids run up to top_k, and '
                     'id label_divisor would read as the next class.')


def _check_inputs(semantic_logits, center_heatmap, center_offsets,
                  thing_class_ids, top_k, label_divisor, nms_kernel,
                  center_threshold, center_chunk, pixel_block):
  shapes = [t.shape for t in (semantic_logits, center_heatmap,
                              center_offsets)]
  if any(s.rank != 4 for s in shapes):
    raise ValueError(f'panoptic_merge expects rank-4 inputs [B, H, W, C], '
                     f'[B, H, W, 1], [B, H, W, 2]; got shapes {shapes}.')
  if shapes[1][-1] != 1 or shapes[2][-1] != 2:
    raise ValueError(f'center_heatmap must have 1 channel and center_offsets '
                     f'2 (dy, dx); got {shapes[1]} and {shapes[2]}.')
  for other, name in ((shapes[1], 'center_heatmap'),
                      (shapes[2], 'center_offsets')):
    if not shapes[0][:3].is_compatible_with(other[:3]):
      raise ValueError(f'{name} {other} and semantic_logits {shapes[0]} '
                       f'differ in batch or spatial size.')
  if not shapes[0][1:].is_fully_defined():
    raise ValueError(f'panoptic_merge needs static H, W and C; got '
                     f'semantic_logits {shapes[0]}.')
  num_classes = shapes[0][-1]
  if not thing_class_ids:
    raise ValueError('thing_class_ids is empty; Panoptic-DeepLab needs at '
                     'least one thing class.')
  bad = [c for c in thing_class_ids if not 0 <= c < num_classes]
  if bad:
    raise ValueError(f'thing_class_ids {bad} are outside [0, {num_classes}).')
  for name, value in (('top_k', top_k), ('center_chunk', center_chunk),
                      ('pixel_block', pixel_block)):
    if value < 1:
      raise ValueError(f'{name} must be >= 1, got {value}.')
  check_top_k(top_k, label_divisor)
  if (num_classes - 1) * label_divisor + top_k >= 2 ** 31:
    raise ValueError(f'{num_classes} classes x label_divisor {label_divisor} '
                     'overflow the int32 panoptic map.')
  if not center_threshold >= 0:
    raise ValueError(f'center_threshold must be >= 0 (the heatmap is a '
                     f'Gaussian in [0, 1]), got {center_threshold}.')
  if nms_kernel < 1 or nms_kernel % 2 == 0:
    raise ValueError(f'nms_kernel must be a positive odd int, got '
                     f'{nms_kernel}.')


def panoptic_merge(semantic_logits, center_heatmap, center_offsets, *,
                   thing_class_ids, label_divisor=1000, stuff_area=2048,
                   center_threshold=0.1, nms_kernel=7, top_k=200,
                   center_chunk=8, pixel_block=65536, image_sizes=None,
                   keyed_argmax=False):
  """Merges the three network outputs into a panoptic map.

  Compiles with ``tf.function(jit_compile=True)``; see ``merge_fn`` for a
  compiled version that also checks the inputs are finite.

  Args:
    semantic_logits: float32 [B, H, W, C].
    center_heatmap: float32 [B, H, W, 1].
    center_offsets: float32 [B, H, W, 2] (dy, dx) in pixels.
    thing_class_ids: non-empty sequence of class ids that have instances.
    label_divisor: panoptic = class * label_divisor + instance id.
    stuff_area: minimum pixels of a stuff class in an image.
    center_threshold: heatmap values <= this are never centers.
    nms_kernel: odd max-pool window of the center NMS.
    top_k: maximum number of centers (instances) per image; must be <
      label_divisor.
    center_chunk: centers compared per grouping step.
    pixel_block: pixels grouped per outer grouping step.
    image_sizes: optional int32 [B, 2], the (height, width) of each image's
      valid top-left region when the batch is padded. Pixels outside are
      never centers, never grouped and never counted (stuff areas, votes,
      scores); they come out VOID in ``panoptic`` and ``semantic``. The
      result inside equals merging the cropped image alone.
    keyed_argmax: take the semantic argmax with ``argmax_by_keys`` (same
      result; faster under XLA, memory-hungry without it).

  Returns:
    dict with ``keys.PANOPTIC`` int32 [B, H, W] (VOID = -1),
    ``keys.SEMANTIC`` int32 [B, H, W] (argmax), ``keys.INSTANCE`` int32
    [B, H, W] (class-agnostic slot + 1, 0 = none), ``keys.INSTANCE_SCORES``
    float32 [B, top_k], ``INSTANCE_CLASSES`` int32 [B, top_k] (-1 = empty),
    ``INSTANCE_AREAS`` int32 [B, top_k], ``CENTER_POINTS`` int32
    [B, top_k, 2] (y, x), ``CENTER_SCORES`` float32 [B, top_k] and
    ``CENTER_VALID`` bool [B, top_k], and ``INPUTS_FINITE`` bool [3]: whether
    the logits (no NaN or +Inf; -Inf is a valid log-probability of 0), the
    heatmap and the offsets (no NaN or Inf) are finite over the batch.
    ``merge_fn`` turns a False there into an error.
  """
  semantic_logits, center_heatmap, center_offsets = (
      tf.convert_to_tensor(t) for t in (semantic_logits, center_heatmap,
                                        center_offsets))
  _check_inputs(semantic_logits, center_heatmap, center_offsets,
                thing_class_ids, top_k, label_divisor, nms_kernel,
                center_threshold, center_chunk, pixel_block)
  _, height, width, num_classes = semantic_logits.shape
  # The logits' static H and W for the other two (grouping needs them).
  center_heatmap = tf.ensure_shape(center_heatmap, [None, height, width, 1])
  center_offsets = tf.ensure_shape(center_offsets, [None, height, width, 2])
  batch = tf.shape(semantic_logits)[0]
  logits = tf.reshape(tf.cast(semantic_logits, tf.float32),
                      [batch, -1, num_classes])
  semantic = (argmax_by_keys if keyed_argmax else _argmax_lowest)(logits)
  inside = inside_mask(image_sizes, batch, height, width)
  is_thing = inside & tf.gather(
      tf.scatter_nd([[c] for c in thing_class_ids],
                    tf.ones([len(thing_class_ids)], tf.bool), [num_classes]),
      semantic)
  heatmap_inside = tf.where(tf.reshape(inside, [batch, height, width, 1]),
                            tf.cast(center_heatmap, tf.float32), 0.0)
  points, scores, valid = find_centers(
      heatmap_inside, center_threshold=center_threshold,
      nms_kernel=nms_kernel, top_k=top_k)
  nearest = tf.reshape(
      group_pixels(tf.cast(center_offsets, tf.float32), points, valid,
                   center_chunk, pixel_block), [batch, -1])
  instance = tf.where(is_thing & (nearest >= 0), nearest + 1, 0)
  classes, areas = majority_vote(semantic, instance, num_classes, top_k)
  ids = per_class_ids(classes)
  thing_table = tf.pad(tf.where(classes >= 0, classes * label_divisor + ids,
                                VOID), [[0, 0], [1, 0]], constant_values=VOID)
  panoptic = tf.where(
      instance > 0, tf.gather(thing_table, instance, batch_dims=1),
      stuff_panoptic(semantic, is_thing, inside, num_classes=num_classes,
                     stuff_area=stuff_area, label_divisor=label_divisor))
  object_scores, logits_finite = instance_scores(
      logits, instance, classes, areas, scores)
  image_shape = [batch, height, width]
  semantic = tf.where(inside, semantic, VOID)
  return {
      keys.PANOPTIC: tf.reshape(panoptic, image_shape),
      keys.SEMANTIC: tf.reshape(semantic, image_shape),
      keys.INSTANCE: tf.reshape(instance, image_shape),
      keys.INSTANCE_SCORES: object_scores,
      INSTANCE_CLASSES: classes,
      INSTANCE_AREAS: areas,
      CENTER_POINTS: points,
      CENTER_SCORES: scores,
      CENTER_VALID: valid,
      INPUTS_FINITE: tf.stack([
          tf.reduce_all(logits_finite),
          tf.reduce_all(tf.math.is_finite(center_heatmap)),
          tf.reduce_all(tf.math.is_finite(center_offsets))]),
  }


def merge_fn(*, jit_compile=True, **merge_kwargs):
  """A tf.function running ``panoptic_merge`` with fixed keyword arguments.

  The merge is XLA-compiled when ``jit_compile`` (then with ``keyed_argmax``
  unless given). Afterwards, if an input was not finite (``INPUTS_FINITE``),
  the call raises InvalidArgumentError naming that input instead of
  returning a silently wrong map.

  Returns:
    fn(semantic_logits, center_heatmap, center_offsets, image_sizes=None)
    -> dict as ``panoptic_merge``.

  Raises:
    ValueError: at once, if top_k >= label_divisor (check_top_k).
  """
  defaults = inspect.signature(panoptic_merge).parameters
  check_top_k(merge_kwargs.get('top_k', defaults['top_k'].default),
              merge_kwargs.get('label_divisor',
                               defaults['label_divisor'].default))
  merge_kwargs.setdefault('keyed_argmax', jit_compile)
  compiled = tf.function(
      lambda logits, heatmap, offsets, sizes: panoptic_merge(
          logits, heatmap, offsets, image_sizes=sizes, **merge_kwargs),
      jit_compile=jit_compile)

  @tf.function
  def merge(semantic_logits, center_heatmap, center_offsets,
            image_sizes=None):
    outputs = compiled(semantic_logits, center_heatmap, center_offsets,
                       image_sizes)
    checks = [
        tf.debugging.Assert(outputs[INPUTS_FINITE][i],
                            [f'{name} must be finite: NaN or Inf found'])
        for i, name in enumerate(INPUT_NAMES)]
    with tf.control_dependencies(checks):
      return {key: tf.identity(value) for key, value in outputs.items()}

  return merge
