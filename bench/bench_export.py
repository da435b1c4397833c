"""End-to-end latency of the exported model: PNG bytes in, panoptic map out.

For each image size, exports one network (random weights, with the heads
rescaled by tests/helpers.make_lively, then made busy: thing-class logits
raised and the heatmap scaled so that top_k centers survive NMS and vote for
thing classes -- 200 instances, the merge's worst case; latency depends on
the number of instances, printed) to a SavedModel with the XLA merge, a SavedModel without XLA,
and TFLite float32 and int8, then times one image per call: the SavedModel's
``serving_default`` signature on PNG bytes, and the TFLite file through
pdl-predict's TFLite backend (decode, fit, LiteRT, un-fit). Median of --runs
runs after one warm-up (which also compiles).

Usage: python bench/bench_export.py [--experiment cityscapes_mnv3_large_os16]
         [--sizes 512x1024 1024x2048] [--runs 3]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))


def _png(height, width):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  blocks = rng.integers(0, 256, (height // 16, width // 16, 3))
  image = np.kron(blocks, np.ones((16, 16, 1))).astype(np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, 'PNG')
  return buffer.getvalue()


def _time(predict, contents, runs):
  result = predict(contents)  # warm-up (and XLA compilation)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    result = predict(contents)
    times.append(time.perf_counter() - start)
  instances = int((result['instance_classes'] >= 0).sum())
  return 1000 * statistics.median(times), instances


def _busy(model, thing_class_ids):
  """Thing logits +4, heatmap x100: every NMS peak becomes an instance."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  _, bias = model.semantic_head._classifier.weights  # pylint: disable=protected-access
  is_thing = np.isin(np.arange(bias.shape[0]), thing_class_ids)
  bias.assign(bias + np.where(is_thing, 4.0, 0.0).astype(np.float32))
  kernel, _ = model.center_head._classifier.weights  # pylint: disable=protected-access
  kernel.assign(kernel * 100.0)
  return model


def _exports(config, model, input_size, folder):
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from pdl_tf.export import saved_model
  from pdl_tf.export import serving_module
  from pdl_tf.export import tflite
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  merge_arguments = factory.merge_arguments(config)
  paths = {}
  for name, xla in (('SavedModel, XLA merge', True),
                    ('SavedModel, no XLA', False)):
    module = serving_module.PanopticServingModule(
        model, input_size=input_size, merge_arguments=merge_arguments,
        jit_compile_merge=xla)
    paths[name] = saved_model.export_saved_model(
        module, os.path.join(folder, 'xla' if xla else 'plain'))
  rng = np.random.default_rng(1)
  calibration = [(rng.uniform(0, 255, (1,) + input_size + (3,)).astype(
      np.float32), np.array([input_size], np.int32)) for _ in range(4)]
  for quantization in ('float32', 'int8'):
    content = tflite.convert(model, input_size, merge_arguments,
                             quantization, calibration)
    path = os.path.join(folder, f'{quantization}.tflite')
    with open(path, 'wb') as f:
      f.write(content)
    paths[f'TFLite {quantization}'] = path
  return paths


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--experiment', default='cityscapes_mnv3_large_os16')
  parser.add_argument('--sizes', nargs='+', default=['512x1024', '1024x2048'])
  parser.add_argument('--runs', type=int, default=3)
  args = parser.parse_args()
  # pylint: disable=g-import-not-at-top
  from pdl_tf import config_io
  from pdl_tf.model import factory
  from pdl_tf.serving import backends
  from helpers import make_lively
  # pylint: enable=g-import-not-at-top
  print(f'experiment {args.experiment}; per image, median of {args.runs}')
  print('| image | export | latency | instances |')
  print('| --- | --- | --- | --- |')
  for size in args.sizes:
    height, width = (int(v) for v in size.split('x'))
    config = config_io.load_config(args.experiment, [], [])
    stride = config.model.backbone.output_stride
    input_size = (-(-height // stride) * stride + 1,
                  -(-width // stride) * stride + 1)
    model = _busy(make_lively(factory.build_model(
        config.model, input_size=input_size)), config.data.thing_class_ids)
    contents = _png(height, width)
    with tempfile.TemporaryDirectory() as folder:
      for name, path in _exports(config, model, input_size, folder).items():
        backend = (backends.TFLiteBackend(path) if path.endswith('.tflite')
                   else backends.SavedModelBackend(path))
        latency, instances = _time(backend.predict, contents, args.runs)
        print(f'| {size} (input {input_size[0]}x{input_size[1]}) | {name} '
              f'| {latency:.0f} ms | {instances} |', flush=True)


if __name__ == '__main__':
  main()
