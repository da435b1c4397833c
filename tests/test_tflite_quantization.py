"""Quantized TFLite files: the checks that keep their merge float find a
quantized merge op when there is one, and a trained model's int8 file finds
its instances."""

import json
import os

import numpy as np
import pytest
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


@pytest.mark.slow
def test_int8_file_finds_the_instances_of_a_trained_model(tmp_path):
  """A briefly trained demo model: on held-out scenes its int8 file finds
  the float model's instances (same count within 10%, PQ against the float
  model's maps at least 85).

  Trained and converted in a fresh interpreter, as pdl-export converts: in
  the long-lived process of the whole suite, TensorFlow's MLIR quantizer
  once crashed the process (SIGSEGV in mlir_quantize after ~500 tests),
  while the same conversion passes in a process of its own.
  """
  from helpers import run_python  # pylint: disable=g-import-not-at-top
  result = run_python(f'''
    import json, sys
    sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
    import test_tflite_quantization as test
    counts, value = test.int8_against_float({str(tmp_path)!r})
    print('RESULT', json.dumps([counts, value]))
  ''', timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  line = next(l for l in result.stdout.splitlines() if l.startswith('RESULT'))
  counts, value = json.loads(line[len('RESULT '):])
  found, found_int8 = np.sum(counts, axis=0)
  print(f'instances per scene (float, int8): {counts}; PQ int8 vs float '
        f'{100 * value:.1f}')
  assert found >= 2 * len(counts), counts  # the trained model finds things
  assert abs(found_int8 - found) <= 0.1 * found, counts
  assert value >= 0.85, value


def int8_against_float(model_dir):
  """Trains the demo briefly in ``model_dir``, converts it to int8 TFLite
  and compares on held-out scenes: ([[float instances, int8 instances] per
  scene], PQ of the int8 maps against the float model's)."""
  # pylint: disable=g-import-not-at-top
  from ai_edge_litert import interpreter as litert
  from pdl_tf import config_io
  from pdl_tf import keys
  from pdl_tf import postprocess
  from pdl_tf.cli import export as export_cli
  from pdl_tf.evaluation import StreamingPanopticQuality
  from pdl_tf.export import tflite
  from pdl_tf.model import factory
  from pdl_tf.training import trainer as trainer_lib
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config('demo', params_override=(
      'train.steps=200,train.steps_per_loop=50,train.checkpoint_interval=200,'
      'data.train.num_examples=128,data.eval.num_examples=8'))
  trainer_lib.Trainer(config, model_dir, tf.distribute.get_strategy()).train()
  input_size = tuple(config.export.input_size)
  model = factory.restore_model(config, model_dir, input_size)
  merge_arguments = factory.merge_arguments(config)
  content = tflite.convert(model, input_size, merge_arguments, 'int8',
                           export_cli.calibration_images(config, 16))
  runner = litert.Interpreter(model_content=content).get_signature_runner()
  merge = postprocess.merge_fn(**merge_arguments)
  data = config.data
  pq = StreamingPanopticQuality(config.model.num_classes,
                                list(data.thing_class_ids),
                                data.label_divisor, data.ignore_label)
  counts = []
  for image, valid, _ in _eval_scenes(config):
    outputs = model(image, training=False)
    want = merge(outputs[keys.SEMANTIC_LOGITS], outputs[keys.CENTER_HEATMAP],
                 outputs[keys.CENTER_OFFSETS], valid)
    got = runner(images=image, image_sizes=valid)
    counts.append([int((np.asarray(result[postprocess.INSTANCE_CLASSES]) >= 0
                        ).sum()) for result in (want, got)])
    truth = want[keys.PANOPTIC].numpy()[0]
    pq.update(np.where(truth < 0, data.ignore_label * data.label_divisor,
                       truth), got[keys.PANOPTIC][0])
  return counts, float(pq.result()['All']['pq'])


def _eval_scenes(config):
  """(image float32 [1, h, w, 3], image_sizes int32 [1, 2], panoptic) of
  the eval split, fitted to the export input size."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data import sources
  from pdl_tf.export import image_fit
  # pylint: enable=g-import-not-at-top
  _, dataset = sources.open_split(config.data, config.data.eval, 'data.eval')
  for image, panoptic, _ in dataset:
    fitted, valid = image_fit.fit_image(image, config.export.input_size)
    yield fitted[None].numpy(), valid[None].numpy(), panoptic.numpy()
