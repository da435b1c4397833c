"""Where TFLite quantization loses accuracy: per network output, per layer,
and in PQ, for several export variants of one trained checkpoint.

Each variant is converted as pdl-export converts it and run on the eval
split, fitted as at serving time, with every tensor kept
(``experimental_preserve_all_tensors``) so that the network's outputs, as
the merge reads them, can be read too (``tflite_graph.network_output_tensors``).
Against the float32 network in TensorFlow it prints: the semantic logits'
RMSE and the share of pixels whose argmax class changes; the center
heatmap's RMSE and largest error; the offsets' RMSE in pixels; the number
of instances found; PQ against the ground truth and against the float
model's own panoptic maps. It also checks that each file's panoptic map is
the float merge of its own network outputs (exactness of the merge). With
--layers N it prints the N int8 layers with the largest RMSE / scale (the
LiteRT quantization debugger's layer statistics, for the first int8
variant).

Variants (--variants): float32, float16, int8 (the export's default
float_scopes), int8_all (every network layer int8), int8_heads (the heads'
1x1 classifiers float), int8_upsampling (the outputs' bilinear upsampling
and the offsets' rescaling float), int8_heads_upsampling (both),
int8_merge_quantized (the previous export: only
DIV/EXP/LOG/SUM/UNSORTED_SEGMENT_SUM/REDUCE_MAX kept float, the rest of
the merge int8).

Usage (after pdl-train --experiment demo --model_dir runs/demo):
  python bench/bench_quantization.py --experiment demo --checkpoint runs/demo
"""

import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))

HEAD_CLASSIFIERS = ('semantic_head/classifier', 'center_head/classifier',
                    'offset_head/classifier')
# The bilinear upsampling of the three outputs to input resolution and the
# offsets' rescaling (the export's default float scopes).
OUTPUT_UPSAMPLING = ('upsample_outputs/',)
OLD_FLOAT_OPS = ('DIV', 'EXP', 'LOG', 'SUM', 'UNSORTED_SEGMENT_SUM',
                 'REDUCE_MAX')


def _convert(name, model, input_size, merge_arguments, samples):
  from pdl_tf.export import tflite  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  args = (model, input_size, merge_arguments)
  if name in ('float32', 'float16'):
    return tflite.convert(*args, name)
  if name == 'int8':
    return tflite.convert(*args, 'int8', samples)
  if name == 'int8_all':
    return tflite.convert(*args, 'int8', samples, float_scopes=())
  if name == 'int8_heads':
    return tflite.convert(*args, 'int8', samples,
                          float_scopes=HEAD_CLASSIFIERS)
  if name == 'int8_upsampling':
    return tflite.convert(*args, 'int8', samples,
                          float_scopes=OUTPUT_UPSAMPLING)
  if name == 'int8_heads_upsampling':
    return tflite.convert(*args, 'int8', samples,
                          float_scopes=HEAD_CLASSIFIERS + OUTPUT_UPSAMPLING)
  if name == 'int8_merge_quantized':  # the export before this change
    debugger = tflite.int8_debugger(*args, samples)
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(OLD_FLOAT_OPS))
    return debugger.get_nondebug_quantized_model()
  raise ValueError(f'unknown variant {name!r}')


def _eval_images(config):
  """(fitted [1, h, w, 3], valid [1, 2], truth [H, W]) per eval image."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf import keys
  from pdl_tf.data import pipeline
  from pdl_tf.export import image_fit
  # pylint: enable=g-import-not-at-top
  found = []
  for batch in pipeline.build_dataset(config, training=False):
    for image, truth, (height, width) in zip(
        batch[pipeline.IMAGE], batch[keys.PANOPTIC].numpy(),
        batch[pipeline.ORIGINAL_SIZE].numpy()):
      fitted, valid = image_fit.fit_image(image[:height, :width],
                                          config.export.input_size)
      if tuple(valid.numpy()) != (height, width):
        raise ValueError('bench_quantization needs eval images that fit the '
                         'export input size without resizing.')
      found.append((fitted[None].numpy(), valid[None].numpy(),
                    truth[:height, :width]))
  return found


class _Stats:
  """Running sums of the per-output errors of one variant."""

  def __init__(self):
    self.sums = {}

  def add(self, key, value, count=1):
    total, n = self.sums.get(key, (0.0, 0))
    self.sums[key] = (total + value, n + count)

  def mean(self, key):
    total, n = self.sums[key]
    return total / max(n, 1)


def _compare(stats, got, want, valid):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pdl_tf import keys  # pylint: disable=g-import-not-at-top
  height, width = valid
  crop = lambda x: np.asarray(x)[0, :height, :width]
  for key in (keys.SEMANTIC_LOGITS, keys.CENTER_HEATMAP,
              keys.CENTER_OFFSETS):
    error = crop(got[key]) - crop(want[key])
    stats.add(key + ' squared', float((error ** 2).sum()), error.size)
    largest = stats.sums.get(key + ' max', (0.0, 1))[0]
    stats.sums[key + ' max'] = (max(largest, float(np.abs(error).max())), 1)
  same = (crop(got[keys.SEMANTIC_LOGITS]).argmax(-1) ==
          crop(want[keys.SEMANTIC_LOGITS]).argmax(-1))
  stats.add('argmax changed', float((~same).sum()), same.size)


def _merge_is_exact(outputs, merge, valid):
  """The file's panoptic map == the float merge of its network outputs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pdl_tf import keys  # pylint: disable=g-import-not-at-top
  merged = merge(*(outputs[key] for key in (
      keys.SEMANTIC_LOGITS, keys.CENTER_HEATMAP, keys.CENTER_OFFSETS)),
                 valid)
  return np.array_equal(merged[keys.PANOPTIC].numpy(),
                        outputs[keys.PANOPTIC])


def _row(name, pq, pq_float, stats, instances, exact, seconds):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pdl_tf import keys  # pylint: disable=g-import-not-at-top
  cells = ['-'] * 4
  if stats.sums:
    rmse = lambda key: np.sqrt(stats.mean(key + ' squared'))
    largest = lambda key: stats.sums[key + ' max'][0]
    cells = [f'{rmse(keys.SEMANTIC_LOGITS):.3f}',
             f"{100 * stats.mean('argmax changed'):.2f}%",
             f'{rmse(keys.CENTER_HEATMAP):.4f} / '
             f'{largest(keys.CENTER_HEATMAP):.3f}',
             f'{rmse(keys.CENTER_OFFSETS):.2f} / '
             f'{largest(keys.CENTER_OFFSETS):.1f}']
  return (f"| {name} | {100 * pq.result()['All']['pq']:.1f} | "
          f"{100 * pq_float.result()['All']['pq']:.1f} | "
          f"{' | '.join(cells)} | {instances} | {exact} | {seconds:.0f} s |")


def _layer_report(model, input_size, merge_arguments, samples, count):
  """Prints the ``count`` int8 layers with the largest RMSE / scale."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pdl_tf.export import tflite  # pylint: disable=g-import-not-at-top
  debugger = tflite.int8_debugger(model, input_size, merge_arguments,
                                  samples)
  debugger.run()
  rows = []
  details = {d['name']: d for d in
             debugger._quant_interpreter.get_tensor_details()}  # pylint: disable=protected-access
  for name, stats in debugger.layer_statistics.items():
    quant = details.get(name, {}).get('quantization_parameters', {})
    scales = quant.get('scales', np.array([]))
    scale = float(scales[0]) if len(scales) else float('nan')
    rmse = float(np.sqrt(stats['mean_squared_error']))
    rows.append((rmse / scale, rmse, scale, name))
  rows.sort(reverse=True)
  print(f'\nint8 layers by RMSE / scale (of {len(rows)}):')
  print('| layer | RMSE / scale | RMSE | scale |')
  print('| --- | --- | --- | --- |')
  for ratio, rmse, scale, name in rows[:count]:
    print(f'| {name[:80]} | {ratio:.2f} | {rmse:.4f} | {scale:.4f} |')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--experiment', default='demo')
  parser.add_argument('--checkpoint', required=True)
  parser.add_argument('--calibration_images', type=int, default=32)
  parser.add_argument('--variants', nargs='+', default=[
      'float32', 'float16', 'int8_merge_quantized', 'int8_all', 'int8'])
  parser.add_argument('--layers', type=int, default=0)
  args = parser.parse_args()
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from ai_edge_litert import interpreter as litert
  from pdl_tf import config_io
  from pdl_tf import keys
  from pdl_tf import postprocess
  from pdl_tf.cli import export as export_cli
  from pdl_tf.evaluation import StreamingPanopticQuality
  from pdl_tf.export import tflite_graph
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config(args.experiment, [], [])
  data = config.data
  input_size = tuple(config.export.input_size)
  model = factory.restore_model(config, args.checkpoint, input_size)
  merge_arguments = factory.merge_arguments(config)
  merge = postprocess.merge_fn(**merge_arguments)
  samples = export_cli.calibration_images(config, args.calibration_images)
  images = _eval_images(config)
  void = data.ignore_label * data.label_divisor

  def new_pq():
    return StreamingPanopticQuality(config.model.num_classes,
                                    list(data.thing_class_ids),
                                    data.label_divisor, data.ignore_label)

  def as_truth(panoptic):
    return np.where(panoptic < 0, void, panoptic)

  reference, float_pq, float_instances = [], new_pq(), 0
  for image, valid, truth in images:
    outputs = model(image, training=False)
    merged = merge(outputs[keys.SEMANTIC_LOGITS],
                   outputs[keys.CENTER_HEATMAP],
                   outputs[keys.CENTER_OFFSETS], valid)
    height, width = valid[0]
    panoptic = merged[keys.PANOPTIC].numpy()[0, :height, :width]
    float_pq.update(truth, panoptic)
    float_instances += int((merged[postprocess.INSTANCE_CLASSES] >= 0
                            ).numpy().sum())
    reference.append(({k: v.numpy() for k, v in outputs.items()}, panoptic))
  print(f'{args.experiment}: {len(images)} eval images, '
        f'{len(samples)} training images for calibration; TF float model '
        f"PQ {100 * float_pq.result()['All']['pq']:.1f}, "
        f'{float_instances} instances')
  print('| variant | PQ | PQ vs float | logits RMSE | argmax changed | '
        'heatmap RMSE / max | offsets RMSE / max (px) | instances | '
        'merge exact | convert |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for name in args.variants:
    start = time.perf_counter()
    content = _convert(name, model, input_size, merge_arguments, samples)
    seconds = time.perf_counter() - start
    interpreter = litert.Interpreter(model_content=content,
                                     experimental_preserve_all_tensors=True)
    runner = interpreter.get_signature_runner()
    if name == 'int8_merge_quantized':  # its merge reads int8 tensors
      network = {}
    else:
      network = tflite_graph.network_output_tensors(content,
                                                    model.name + '/')
    stats, pq, pq_float = _Stats(), new_pq(), new_pq()
    instances, exact = 0, 0
    for (image, valid, truth), (want, want_panoptic) in zip(images,
                                                            reference):
      got = dict(runner(images=image, image_sizes=valid))
      height, width = valid[0]
      panoptic = got[keys.PANOPTIC][0, :height, :width]
      pq.update(truth, panoptic)
      pq_float.update(as_truth(want_panoptic), panoptic)
      instances += int((got[postprocess.INSTANCE_CLASSES] >= 0).sum())
      if network:
        got.update({key: interpreter.get_tensor(index)
                    for key, index in network.items()})
        _compare(stats, got, want, (height, width))
        exact += _merge_is_exact(got, merge, valid)
    print(_row(name, pq, pq_float, stats, instances,
               f'{exact}/{len(images)}' if network else '-', seconds),
          flush=True)
  if args.layers:
    _layer_report(model, input_size, merge_arguments, samples, args.layers)


if __name__ == '__main__':
  main()
