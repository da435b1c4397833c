"""The checks that keep the quantized TFLite files' merge float: they must
find a quantized merge op when there is one."""

import numpy as np
import tensorflow as tf

from pdl_tf.export import tflite_graph


def _small_graph():
  """A 'net/' convolution followed by merge-like ops (max-pool, argmax,
  a comparison with a constant)."""
  kernel = tf.constant(np.random.default_rng(0).normal(
      0, 0.3, (3, 3, 3, 4)).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32,
                                              name='images')])
  def predict(images):
    with tf.name_scope('net'):
      features = tf.nn.relu(tf.nn.conv2d(images, kernel, 1, 'SAME'))
    pooled = tf.nn.max_pool2d(features, 3, 1, 'SAME')
    peaks = tf.cast(tf.equal(pooled, features), tf.float32) * features
    return {'peaks': peaks,
            'classes': tf.argmax(peaks, axis=-1, output_type=tf.int32)}

  return predict


def _convert(function, int8):
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()])
  if int8:
    rng = np.random.default_rng(1)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(0, 1, (1, 16, 16, 3)).astype(np.float32)]
        for _ in range(4))
  return converter.convert()


def test_quantized_merge_ops_finds_int8_ops_outside_the_network():
  function = _small_graph()
  assert tflite_graph.quantized_merge_ops(_convert(function, False), 'net/') == []
  bad = tflite_graph.quantized_merge_ops(_convert(function, True), 'net/')
  assert 'MAX_POOL_2D' in [op_type for op_type, _, _ in bad], bad


def test_float16_constants_that_may_be_rounded_are_flagged():
  exact = np.array([0.0, -0.0, np.nan, 1.0, -2048.0], np.float16)
  assert tflite_graph.exact_in_float16(exact.view(np.uint8))
  # 65504 is what the converter writes for infinity; conservative for the
  # rest (4096.0 is exact, but so is the rounding of 4097.0).
  for value in (0.1, 1e-3, 4096.0, 65504.0, np.inf):
    rounded = np.array([0.0, value], np.float16).view(np.uint8)
    assert not tflite_graph.exact_in_float16(rounded), value
