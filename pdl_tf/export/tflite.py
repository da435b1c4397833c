"""TFLite export: network + merge at a fixed input size, one image.

The TFLite model takes ``images`` float32 [1, input_h, input_w, 3] (RGB in
[0, 255], already fitted with ``image_fit.fit_image``) and ``image_sizes``
int32 [1, 2] (the valid region) and returns ``panoptic``, ``semantic``,
``instance``, ``center_heatmap`` (each at input resolution),
``instance_scores`` and ``instance_classes``; pdl-predict maps them back to
the original size with ``image_fit.unfit_map``.

Quantization touches the network only. In the float16 file the network's
weights are stored as float16 (and dequantized once at load); in the int8
file the network runs on int8 weights and activations, calibrated on
representative images, and its three outputs are dequantized to float32
before the merge. In both, every merge op computes in float32/int32 exactly
as in the float32 file (``quantized_merge_ops`` checks it at export):

* the int8 merge ops are kept float by name: every op whose output tensor
  is not under the network's name scope is passed to the quantizer's
  node denylist (the quantizer matches single-output ops by that name;
  multi-output ops such as TOPK_V2 by their op type, which never occurs in
  the network);
* ``float_scopes`` keeps chosen network layers float too (selective
  quantization; the default keeps the bilinear upsampling of the three
  outputs to input resolution, and the offsets' rescaling, float; see
  bench/README.md).
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf.export import tflite_graph
from pdl_tf.model import panoptic_deeplab

QUANTIZATIONS = ('float32', 'float16', 'int8')
OUTPUT_KEYS = (keys.PANOPTIC, keys.SEMANTIC, keys.INSTANCE,
               keys.CENTER_HEATMAP, keys.INSTANCE_SCORES,
               postprocess.INSTANCE_CLASSES)
# Network layers kept float in the int8 file by default: name fragments of
# their TFLite tensors (the model's name scope is prepended). The int8
# upsampling of the outputs to input resolution gave the heatmap flat tops,
# i.e. duplicate centers (demo: PQ 71.4 against 82.0 with it float,
# bench/README.md).
DEFAULT_FLOAT_SCOPES = (panoptic_deeplab.UPSAMPLE_SCOPE + '/',)


def tflite_function(model, input_size, merge_arguments):
  """The tf.function converted to TFLite (no XLA: TFLite has its own
  kernels; no asserts: they are not TFLite builtins).

  Args:
    model: a built PanopticDeepLab.
    input_size: (height, width).
    merge_arguments: keyword arguments of ``postprocess.panoptic_merge``.
  """
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


def int8_debugger(model, input_size, merge_arguments, samples,
                  float_scopes=DEFAULT_FLOAT_SCOPES):
  """A ``tf.lite.experimental.QuantizationDebugger`` set up for the int8
  export: calibrated on ``samples``, the merge and ``float_scopes`` float.

  ``get_nondebug_quantized_model()`` gives the int8 file (its merge ops
  float by node name, ``tflite_graph.float_denylist``); ``run()`` then
  ``layer_statistics`` give each quantized layer's error (bench/).

  Args:
    model, input_size, merge_arguments: as ``convert``.
    samples: a non-empty list of (image float32 [1, h, w, 3], image_sizes
      int32 [1, 2]) pairs.
    float_scopes: see ``float_denylist``.
  """
  converter = _converter(model, input_size, merge_arguments)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  dataset = lambda: ({'images': image, 'image_sizes': sizes}
                     for image, sizes in samples)
  converter.representative_dataset = dataset
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=dataset)
  nodes, op_types = tflite_graph.float_denylist(debugger.calibrated_model,
                                   model.name + '/', float_scopes)
  debugger.options = tf.lite.experimental.QuantizationDebugOptions(
      denylisted_nodes=nodes, denylisted_ops=op_types)
  return debugger


def _converter(model, input_size, merge_arguments):
  function = tflite_function(model, input_size, merge_arguments)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], model)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  return converter


def convert(model, input_size, merge_arguments, quantization='float32',
            representative_images=None, float_scopes=DEFAULT_FLOAT_SCOPES):
  """Converts network + merge to a TFLite flatbuffer.

  Args:
    model: a built PanopticDeepLab.
    input_size: (height, width), fixed.
    merge_arguments: keyword arguments of ``postprocess.panoptic_merge``.
    quantization: 'float32', 'float16' (network weights) or 'int8' (network
      weights and activations, calibrated on ``representative_images``).
    representative_images: for int8, an iterable of (image float32
      [1, h, w, 3], image_sizes int32 [1, 2]) pairs.
    float_scopes: int8: name fragments of network layers kept float.

  Returns:
    bytes, the .tflite model.

  Raises:
    ValueError: unknown quantization, or int8 without images.
    RuntimeError: a merge op came out quantized (a converter change).
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f'quantization must be one of {QUANTIZATIONS}, got '
                     f'{quantization!r}.')
  if quantization == 'int8':
    samples = list(representative_images or ())
    if not samples:
      raise ValueError('int8 quantization needs representative_images.')
    content = int8_debugger(model, input_size, merge_arguments, samples,
                            float_scopes).get_nondebug_quantized_model()
  else:
    content = _converter(model, input_size, merge_arguments).convert()
    if quantization == 'float16':
      converter = _converter(model, input_size, merge_arguments)
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      converter.target_spec.supported_types = [tf.float16]
      content = tflite_graph.restore_merge_constants(
          converter.convert(), content, model.name + '/')
  bad = tflite_graph.quantized_merge_ops(content, model.name + '/')
  if bad:
    raise RuntimeError(f'{quantization} TFLite: {len(bad)} merge ops are '
                       f'quantized, e.g. {bad[:3]}.')
  return content
