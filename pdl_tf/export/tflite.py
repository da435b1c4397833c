"""TFLite export: network + merge at a fixed input size, one image.

The TFLite model takes ``images`` float32 [1, input_h, input_w, 3] (RGB in
[0, 255], already fitted with ``image_fit.fit_image``) and ``image_sizes``
int32 [1, 2] (the valid region) and returns ``panoptic``, ``semantic``,
``instance``, ``center_heatmap`` (each at input resolution),
``instance_scores`` and ``instance_classes``; pdl-predict maps them back to
the original size with ``image_fit.unfit_map``.
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf import postprocess

QUANTIZATIONS = ('float32', 'float16', 'int8')
# Ops kept float in the int8 model: they occur only in the merge's score
# and probability arithmetic.
FLOAT_OPS_IN_INT8 = ('DIV', 'EXP', 'LOG', 'SUM', 'UNSORTED_SEGMENT_SUM',
                     'REDUCE_MAX')
OUTPUT_KEYS = (keys.PANOPTIC, keys.SEMANTIC, keys.INSTANCE,
               keys.CENTER_HEATMAP, keys.INSTANCE_SCORES,
               postprocess.INSTANCE_CLASSES)


def tflite_function(model, input_size, merge_arguments):
  """The tf.function converted to TFLite (no XLA: TFLite has its own
  kernels; no asserts: they are not TFLite builtins)."""
  height, width = input_size

  @tf.function(input_signature=[
      tf.TensorSpec([1, height, width, 3], tf.float32, name='images'),
      tf.TensorSpec([1, 2], tf.int32, name='image_sizes')])
  def predict(images, image_sizes):
    outputs = model(images, training=False)
    merged = postprocess.panoptic_merge(
        outputs[keys.SEMANTIC_LOGITS], outputs[keys.CENTER_HEATMAP],
        outputs[keys.CENTER_OFFSETS], image_sizes=image_sizes,
        **merge_arguments)
    merged[keys.CENTER_HEATMAP] = outputs[keys.CENTER_HEATMAP][..., 0]
    return {key: merged[key] for key in OUTPUT_KEYS}

  return predict


def convert(model, input_size, merge_arguments, quantization='float32',
            representative_images=None):
  """Converts network + merge to a TFLite flatbuffer.

  Args:
    model: a built PanopticDeepLab.
    input_size: (height, width), fixed.
    merge_arguments: keyword arguments of ``postprocess.panoptic_merge``.
    quantization: 'float32', 'float16' (weights) or 'int8' (weights and
      activations, calibrated on ``representative_images``; ops without an
      int8 kernel stay float).
    representative_images: for int8, an iterable of (image float32
      [1, h, w, 3], image_sizes int32 [1, 2]) pairs.

  Returns:
    bytes, the .tflite model.
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f'quantization must be one of {QUANTIZATIONS}, got '
                     f'{quantization!r}.')
  function = tflite_function(model, input_size, merge_arguments)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], model)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantization == 'float16':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'int8':
    if representative_images is None:
      raise ValueError('int8 quantization needs representative_images.')
    samples = list(representative_images)
    if not samples:
      raise ValueError('representative_images is empty.')
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    dataset = lambda: ({'images': image, 'image_sizes': sizes}
                       for image, sizes in samples)
    converter.representative_dataset = dataset
    # Selective quantization: the merge's score arithmetic stays float (an
    # int8 DIV by an instance area fails at run time when the area's
    # quantized value hits the zero point, and exp/log lose the scores).
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(FLOAT_OPS_IN_INT8)))
    return debugger.get_nondebug_quantized_model()
  return converter.convert()
