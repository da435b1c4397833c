"""Test-time augmentation: multi-scale inputs and a left-right flip.

Softmax probabilities, center heatmaps and center offsets are averaged over
every (scale, flip) pass at the input resolution, before the panoptic merge.
A flipped pass is flipped back and its dx negated; a rescaled pass's offsets
are rescaled to input pixels.
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf.model.common import layers
from pdl_tf.model.panoptic_deeplab import upsample_offsets


def scaled_size(size, scale, output_stride):
  """``size * scale`` snapped to the input-size convention of ``size``.

  A size that is a multiple of the output stride stays a multiple; a size of
  the form k * stride + 1 (e.g. 1025) stays of that form.
  """
  odd = size % output_stride == 1
  steps = max(1, round((size - odd) * scale / output_stride))
  return steps * output_stride + int(odd)


def predict_with_tta(model, images, scales=(1.0,), flip=False):
  """Runs ``model`` over scales (and flips) and averages its outputs.

  Args:
    model: callable images -> dict of keys.MODEL_OUTPUTS, with an
      ``output_stride`` attribute (e.g. PanopticDeepLab).
    images: float [B, H, W, 3] with static H and W.
    scales: input scale factors, e.g. (0.5, 0.75, 1.0, 1.25, 1.5, 1.75).
    flip: also run every scale on the left-right flipped image.

  Returns:
    dict with keys.SEMANTIC_LOGITS (log of the mean softmax, so that argmax
    and softmax are those of the average), keys.CENTER_HEATMAP and
    keys.CENTER_OFFSETS, all float32 at [B, H, W, ...].
  """
  if not scales:
    raise ValueError('scales must name at least one scale.')
  height, width = images.shape[1], images.shape[2]
  stride = model.output_stride
  totals = {keys.SEMANTIC_LOGITS: 0.0, keys.CENTER_HEATMAP: 0.0,
            keys.CENTER_OFFSETS: 0.0}
  passes = 0
  for scale in scales:
    size = [scaled_size(height, scale, stride),
            scaled_size(width, scale, stride)]
    scaled = layers.resize_align_corners(tf.cast(images, tf.float32), size)
    for flipped in ((False, True) if flip else (False,)):
      inputs = tf.reverse(scaled, axis=[2]) if flipped else scaled
      outputs = model(inputs, training=False)
      probabilities = tf.nn.softmax(outputs[keys.SEMANTIC_LOGITS], axis=-1)
      heatmap = outputs[keys.CENTER_HEATMAP]
      offsets = outputs[keys.CENTER_OFFSETS]
      if flipped:
        probabilities, heatmap, offsets = (
            tf.reverse(t, axis=[2]) for t in (probabilities, heatmap, offsets))
        offsets *= tf.constant([1.0, -1.0])
      totals[keys.SEMANTIC_LOGITS] += layers.resize_align_corners(
          probabilities, [height, width])
      totals[keys.CENTER_HEATMAP] += layers.resize_align_corners(
          heatmap, [height, width])
      totals[keys.CENTER_OFFSETS] += upsample_offsets(offsets,
                                                      [height, width])
      passes += 1
  averaged = {name: total / passes for name, total in totals.items()}
  averaged[keys.SEMANTIC_LOGITS] = tf.math.log(
      tf.maximum(averaged[keys.SEMANTIC_LOGITS], 1e-30))
  return averaged
