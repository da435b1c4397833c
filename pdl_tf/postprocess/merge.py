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
from pdl_tf.postprocess.classes import _argmax_lowest
from pdl_tf.postprocess.classes import argmax_by_keys
from pdl_tf.postprocess.classes import instance_scores
from pdl_tf.postprocess.classes import majority_vote
from pdl_tf.postprocess.classes import per_class_ids
from pdl_tf.postprocess.classes import stuff_panoptic
from pdl_tf.postprocess.classes import VOID
from pdl_tf.postprocess.grouping import find_centers
from pdl_tf.postprocess.grouping import group_pixels

INSTANCE_CLASSES = 'instance_classes'
INSTANCE_AREAS = 'instance_areas'
CENTER_POINTS = 'center_points'
CENTER_SCORES = 'center_scores'
CENTER_VALID = 'center_valid'
INPUTS_FINITE = 'inputs_finite'
INPUT_NAMES = ('semantic_logits', 'center_heatmap', 'center_offsets')


def inside_mask(image_sizes, batch, height, width):
  """bool [B, H * W]: pixel (y, x) lies inside its image's valid
  top-left (height, width) region; all True when ``image_sizes`` is None."""
  if image_sizes is None:
    return tf.ones([batch, height * width], tf.bool)
  image_sizes = tf.cast(image_sizes, tf.int32)
  rows = tf.range(height)[None, :, None] < image_sizes[:, 0, None, None]
  cols = tf.range(width)[None, None, :] < image_sizes[:, 1, None, None]
  return tf.reshape(rows & cols, [batch, height * width])


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
