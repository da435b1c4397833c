"""Peak memory of one request against image size: SavedModel and TFLite.

Exports the demo network (random weights; export.input_size 128x128: the
network's own cost is small and fixed, what grows is decoding, fitting and
the maps at the image's size) once as a SavedModel (XLA merge, no pixel
limit, to measure beyond it) and as TFLite float32. Then, for each image
size, a fresh process loads one export with pdl-predict's backend and the
pdl-* commands' CPU runtime settings (pdl_tf/cpu_runtime.py), predicts a
small PNG (warm-up, compilation), resets the peak RSS
(/proc/self/clear_refs), predicts the big PNG (blocks of 16 px, so it
compresses like a photo would not: the PNG is small, the pixels are not) and
reports the growth of the peak RSS over the RSS before the call. A last row
sends the largest image to a SavedModel exported with the default limit
(MAX_IMAGE_PIXELS): refused from the header, before decoding.

Usage: python bench/bench_image_memory.py [--sizes 1000x1000 8000x8000]
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..')
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

import peak_rss  # pylint: disable=g-import-not-at-top,wrong-import-position


def _png(height, width):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  blocks = rng.integers(0, 256, (-(-height // 16), -(-width // 16), 3),
                        dtype=np.uint8)
  image = np.repeat(np.repeat(blocks, 16, 0), 16, 1)[:height, :width]
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, 'PNG', compress_level=1)
  return buffer.getvalue()


def _status(field):
  """kB value of a /proc/self/status field (VmRSS, VmHWM)."""
  with open('/proc/self/status', encoding='ascii') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1]) * 1024
  raise KeyError(field)


def child(kind, model, image_path):
  """Runs in a fresh process; prints one JSON line."""
  import gc  # pylint: disable=g-import-not-at-top
  from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top
  cpu_runtime.apply()
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  backend = (backends.SavedModelBackend(model) if kind == 'savedmodel'
             else backends.TFLiteBackend(model, max_image_pixels=0))
  backend.predict(_png(64, 64))
  with open(image_path, 'rb') as f:
    contents = f.read()
  gc.collect()
  before = _status('VmRSS')
  with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
    f.write('5')  # resets VmHWM to the current RSS
  error = None
  try:
    backend.predict(contents)
  except tf.errors.OpError as e:
    error = image_decode.graph_message(e)[:120]
  print(json.dumps({'before': before, 'peak': _status('VmHWM'),
                    'error': error}))


def _export(folder):
  # pylint: disable=g-import-not-at-top
  import tf_keras
  from helpers import make_lively
  from pdl_tf import config_io
  from pdl_tf.export import saved_model
  from pdl_tf.export import serving_module
  from pdl_tf.export import tflite
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config('demo', [], [])
  input_size = tuple(config.export.input_size)
  tf_keras.utils.set_random_seed(0)
  model = make_lively(factory.build_model(config.model,
                                          input_size=input_size))
  merge_arguments = factory.merge_arguments(config)
  paths = {}
  for name, limit in (('unlimited', 10**12),
                      ('default', config.export.max_image_pixels)):
    config.override({'export': {'max_image_pixels': limit}})
    module = serving_module.PanopticServingModule(
        model, input_size=input_size, merge_arguments=merge_arguments,
        max_image_pixels=limit)
    paths[name] = saved_model.export_saved_model(
        module, os.path.join(folder, name), 1, config)
  paths['tflite'] = os.path.join(folder, 'model.tflite')
  with open(paths['tflite'], 'wb') as f:
    f.write(tflite.convert(model, input_size, merge_arguments))
  return paths


def _predict_command(model, image_path, output):
  """Peak RSS (bytes) of a whole ``pdl-predict`` process on one image."""
  done, peak = peak_rss.run(
      [sys.executable, '-m', 'pdl_tf.cli.predict', image_path,
       '--saved_model', model, '--output', output],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
  error = done.stderr.strip().splitlines()
  return peak, error[-1][:100] if done.returncode else None


def _run(kind, model, image_path):
  output = subprocess.run(
      [sys.executable, __file__, '--child', kind, model, image_path],
      capture_output=True, text=True, check=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sizes', nargs='+', default=[
      '100x100', '1000x1000', '2000x2000', '4000x4000', '6000x6000',
      '8000x8000'])
  parser.add_argument('--child', nargs=3, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    child(*args.child)
    return
  from pdl_tf.data.decoding import image_decode  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as folder:
    paths = _export(folder)
    print(f'default limit: {image_decode.MAX_IMAGE_PIXELS} pixels')
    print('| image | megapixels | PNG | SavedModel adds | TFLite adds | '
          'pdl-predict peak RSS |')
    print('| --- | --- | --- | --- | --- | --- |')
    image_path = None
    for size in args.sizes:
      height, width = (int(v) for v in size.split('x'))
      image_path = os.path.join(folder, f'{size}.png')
      contents = _png(height, width)
      with open(image_path, 'wb') as f:
        f.write(contents)
      cells = []
      for kind, model in (('savedmodel', paths['unlimited']),
                          ('tflite', paths['tflite'])):
        result = _run(kind, model, image_path)
        cells.append(f'{(result["peak"] - result["before"]) / 2**30:.2f} GiB'
                     + (f' ({result["error"]})' if result['error'] else ''))
      peak, _ = _predict_command(paths['unlimited'], image_path,
                                 os.path.join(folder, 'out'))
      print(f'| {size} | {height * width / 1e6:.1f} | '
            f'{len(contents) / 2**20:.1f} MiB | {cells[0]} | {cells[1]} | '
            f'{peak / 2**30:.2f} GiB |', flush=True)
    result = _run('savedmodel', paths['default'], image_path)
    peak, error = _predict_command(paths['default'], image_path,
                                   os.path.join(folder, 'out'))
    print(f'\nDefault limit, {args.sizes[-1]}: the SavedModel call adds '
          f'{(result["peak"] - result["before"]) / 2**20:.0f} MiB and fails '
          f'with: {result["error"]}\npdl-predict: peak RSS '
          f'{peak / 2**30:.2f} GiB, stderr: {error}')


if __name__ == '__main__':
  main()
