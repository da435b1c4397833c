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


def _int8_converter(model, input_size, merge_arguments, samples):
  converter = _converter(model, input_size, merge_arguments)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: (
      {'images': image, 'image_sizes': sizes} for image, sizes in samples)
  return converter


def int8_model(model, input_size, merge_arguments, samples,
               float_scopes=DEFAULT_FLOAT_SCOPES):
  """The int8 .tflite: calibrated on ``samples``, the merge and
  ``float_scopes`` float.

  The steps of ``QuantizationDebugger.get_nondebug_quantized_model``
  (calibrate only, then quantize with a node denylist, TF 2.20
  tensorflow/lite/tools/optimize/debugging/python/debugger.py), without
  the debugger's own numeric-verify quantization of the whole graph, which
  export does not need and which crashed the process (SIGSEGV inside
  ``mlir_quantize``) in one CI run.

  Args:
    model, input_size, merge_arguments: as ``convert``.
    samples: a non-empty list of (image float32 [1, h, w, 3], image_sizes
      int32 [1, 2]) pairs.
    float_scopes: see ``tflite_graph.float_denylist``.

  Returns:
    bytes, the .tflite model.

  Raises:
    RuntimeError: this TensorFlow lacks the converter internals used.
  """
  converter = _int8_converter(model, input_size, merge_arguments, samples)
  try:
    from tensorflow.lite.python import convert as lite_convert  # pylint: disable=g-import-not-at-top
    quantize = lite_convert.mlir_quantize
    disable_per_channel = converter._experimental_disable_per_channel  # pylint: disable=protected-access
    converter._experimental_calibrate_only = True  # pylint: disable=protected-access
  except (ImportError, AttributeError) as error:
    raise RuntimeError(
        f'int8 TFLite export needs the TFLite converter internals of '
        f'TensorFlow 2.20 (requirements-lock.txt); TensorFlow '
        f'{tf.__version__} lacks them: {error}') from error
  converter.experimental_mlir_quantizer = True
  calibrated = converter.convert()
  nodes, op_types = tflite_graph.float_denylist(calibrated, model.name + '/',
                                                float_scopes)
  return quantize(calibrated, disable_per_channel=disable_per_channel,
                  fully_quantize=False, enable_numeric_verify=False,
                  denylisted_ops=op_types, denylisted_nodes=nodes)


def int8_debugger(model, input_size, merge_arguments, samples,
                  float_scopes=DEFAULT_FLOAT_SCOPES):
  """A ``tf.lite.experimental.QuantizationDebugger`` for the int8 export's
  quantization (bench/bench_quantization.py): ``run()`` then
  ``layer_statistics`` give each quantized layer's error.

  Args: as ``int8_model``.
  """
  converter = _int8_converter(model, input_size, merge_arguments, samples)
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=converter.representative_dataset)
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
    content = int8_model(model, input_size, merge_arguments, samples,
                         float_scopes)
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
