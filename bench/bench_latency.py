"""Latency profile of every export: time per stage and peak memory.

For each image size, one network (random weights made busy as in
bench_export.py: every NMS peak up to top_k becomes an instance, the
merge's worst case) is exported to a SavedModel with the XLA merge, one
without XLA, and TFLite float32, float16 and int8 (plus a network-only
TFLite file per quantization, to split the interpreter's time). Each export
is then timed in a fresh child process with the CPU settings of the pdl-*
commands (pdl_tf/cpu_runtime.py), on one PNG image per call:

* SavedModel: the ``serving_default`` signature end to end, and the same
  graph's stages as separate tf.functions: decode, fit, network, merge
  (XLA or not), un-fit of the four maps;
* TFLite: pdl-predict's backend end to end (decode, fit, LiteRT, un-fit),
  its stages, the interpreter's time for the whole file (network + merge)
  and for the network-only file (merge = the difference).

Median of --runs after one warm-up call; peak RSS (VmHWM) of the child (it includes
TensorFlow itself: the "idle" row is a child that only imports and loads
nothing). TFLite runs with --threads interpreter threads (default: the
backend's own default).

Usage: python bench/bench_latency.py [--experiment cityscapes_mnv3_large_os16]
         [--sizes 512x1024 1024x2048] [--runs 3]
         [--exports saved_model_xla saved_model float32 float16 int8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

EXPORTS = ('saved_model_xla', 'saved_model', 'float32', 'float16', 'int8')


def _median_ms(function, runs):
  function()  # warm-up (and XLA compilation)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return 1000 * statistics.median(times)


def _network_only(model, input_size, quantization, samples):
  """A network-only .tflite, quantized as the full file's network."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf import keys
  # pylint: enable=g-import-not-at-top

  @tf.function(input_signature=[
      tf.TensorSpec((1,) + tuple(input_size) + (3,), tf.float32,
                    name='images')])
  def network(images):
    outputs = model(images, training=False)
    return {key: outputs[key] for key in (
        keys.SEMANTIC_LOGITS, keys.CENTER_HEATMAP, keys.CENTER_OFFSETS)}

  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [network.get_concrete_function()], model)
  if quantization != 'float32':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  if quantization == 'int8':
    converter.representative_dataset = lambda: ({'images': image}
                                                for image, _ in samples)
  return converter.convert()


def _export_all(experiment, size, exports, folder):
  """Checkpoint + every export of a busy model at ``size``; returns the
  paths (a dict) and the input size."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  from bench_export import _busy
  from helpers import make_lively
  from pdl_tf import config_io
  from pdl_tf.export import saved_model
  from pdl_tf.export import serving_module
  from pdl_tf.export import tflite
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config(experiment, [], [])
  stride = config.model.backbone.output_stride
  input_size = (-(-size[0] // stride) * stride + 1,
                -(-size[1] // stride) * stride + 1)
  model = _busy(make_lively(factory.build_model(
      config.model, input_size=input_size)), config.data.thing_class_ids)
  paths = {'checkpoint': tf.train.Checkpoint(model=model).save(
      os.path.join(folder, 'ckpt', 'ckpt'))}
  merge_arguments = factory.merge_arguments(config)
  for name in ('saved_model_xla', 'saved_model'):
    if name in exports:
      module = serving_module.PanopticServingModule(
          model, input_size=input_size, merge_arguments=merge_arguments,
          jit_compile_merge=name.endswith('xla'))
      paths[name] = saved_model.export_saved_model(
          module, os.path.join(folder, name))
  rng = np.random.default_rng(1)
  samples = [(rng.uniform(0, 255, (1,) + input_size + (3,)).astype(
      np.float32), np.array([input_size], np.int32)) for _ in range(4)]
  for quantization in ('float32', 'float16', 'int8'):
    if quantization not in exports:
      continue
    for suffix, content in (
        ('', tflite.convert(model, input_size, merge_arguments, quantization,
                            samples)),
        ('_network', _network_only(model, input_size, quantization,
                                   samples))):
      paths[quantization + suffix] = os.path.join(
          folder, f'{quantization}{suffix}.tflite')
      with open(paths[quantization + suffix], 'wb') as f:
        f.write(content)
  return paths, input_size


def _saved_model_stages(paths, export, experiment, input_size, contents,
                        runs):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf import config_io
  from pdl_tf import keys
  from pdl_tf import postprocess
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.export import image_fit
  from pdl_tf.model import factory
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  backend = backends.SavedModelBackend(paths[export])
  times = {'end to end': _median_ms(lambda: backend.predict(contents), runs)}
  config = config_io.load_config(experiment, [], [])
  model = factory.restore_model(config, paths['checkpoint'], input_size)
  merge = postprocess.merge_fn(jit_compile=export.endswith('xla'),
                               **factory.merge_arguments(config))
  decode = tf.function(image_decode.decode_image)
  fit = tf.function(lambda image: image_fit.fit_image(image, input_size))
  network = tf.function(lambda images: model(images, training=False))
  image = decode(tf.constant(contents))
  fitted, valid = fit(image)
  outputs = network(fitted[None])
  merged = merge(outputs[keys.SEMANTIC_LOGITS], outputs[keys.CENTER_HEATMAP],
                 outputs[keys.CENTER_OFFSETS], valid[None])
  merged = dict(merged)
  merged[keys.CENTER_HEATMAP] = outputs[keys.CENTER_HEATMAP][..., 0]
  original = tf.shape(image)[:2]

  @tf.function
  def unfit(merged):
    return [image_fit.unfit_map(merged[key][0][..., None], valid, original,
                                original, 0)
            for key in (keys.PANOPTIC, keys.SEMANTIC, keys.INSTANCE,
                        keys.CENTER_HEATMAP)]

  contents_tensor = tf.constant(contents)
  times['decode'] = _median_ms(lambda: decode(contents_tensor), runs)
  times['fit'] = _median_ms(lambda: fit(image), runs)
  times['network'] = _median_ms(
      lambda: network(fitted[None])[keys.SEMANTIC_LOGITS].numpy(), runs)
  times['merge'] = _median_ms(lambda: merge(
      outputs[keys.SEMANTIC_LOGITS], outputs[keys.CENTER_HEATMAP],
      outputs[keys.CENTER_OFFSETS], valid[None])[keys.PANOPTIC].numpy(),
                              runs)
  times['unfit'] = _median_ms(lambda: unfit(merged)[0].numpy(), runs)
  instances = int((merged[postprocess.INSTANCE_CLASSES] >= 0).numpy().sum())
  return times, instances


def _tflite_stages(paths, export, input_size, contents, runs, threads):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from ai_edge_litert import interpreter as litert
  from pdl_tf import postprocess
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  del input_size
  backend = backends.TFLiteBackend(paths[export], num_threads=threads)
  times = {'end to end': _median_ms(lambda: backend.predict(contents), runs)}
  # The backend's stages, as it runs them: its two TF graphs (decode + fit,
  # un-fit) around LiteRT; decode alone as a graph of its own.
  decode = tf.function(image_decode.decode_image)
  contents_tensor = tf.constant(contents)
  max_pixels = tf.constant(0, tf.int64)
  images, sizes, original = backend._prepare(contents, max_pixels)  # pylint: disable=protected-access
  images, sizes = images.numpy(), sizes.numpy()
  times['decode'] = _median_ms(lambda: decode(contents_tensor).numpy(), runs)
  times['fit'] = _median_ms(lambda: backend._prepare(  # pylint: disable=protected-access
      contents, max_pixels)[0].numpy(), runs) - times['decode']
  whole = litert.Interpreter(model_path=paths[export],
                             num_threads=backend.num_threads)
  run_whole = whole.get_signature_runner()
  outputs = run_whole(images=images, image_sizes=sizes)
  network = litert.Interpreter(model_path=paths[export + '_network'],
                               num_threads=backend.num_threads)
  run_network = network.get_signature_runner()
  times['network + merge'] = _median_ms(
      lambda: run_whole(images=images, image_sizes=sizes), runs)
  times['network'] = _median_ms(lambda: run_network(images=images), runs)
  times['merge'] = times['network + merge'] - times['network']
  maps = [outputs[key] for key in backends.MAP_KEYS]
  times['unfit'] = _median_ms(lambda: backend._restore(  # pylint: disable=protected-access
      *maps, sizes[0], original)[0].numpy(), runs)
  instances = int((outputs[postprocess.INSTANCE_CLASSES] >= 0).sum())
  return times, instances


def _child(args):
  """Times one export (or nothing, for 'idle'); prints one JSON line."""
  # pylint: disable=g-import-not-at-top
  from bench_export import _png
  from pdl_tf import cpu_runtime
  # pylint: enable=g-import-not-at-top
  cpu_runtime.apply()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import
  paths = json.loads(args.paths)
  height, width = (int(v) for v in args.sizes[0].split('x'))
  input_size = tuple(paths['input_size'])
  contents = _png(height, width)
  if args.child == 'idle':
    times, instances = {}, 0
  elif args.child.startswith('saved_model'):
    times, instances = _saved_model_stages(
        paths, args.child, args.experiment, input_size, contents, args.runs)
  else:
    times, instances = _tflite_stages(paths, args.child, input_size,
                                      contents, args.runs, args.threads)
  print(json.dumps({'times': times, 'instances': instances,
                    'peak_mb': _peak_rss_mb()}))


def _peak_rss_mb():
  """This process's peak resident memory (VmHWM) in MB. Not ru_maxrss:
  Linux carries it over from the parent through fork and exec, so a child
  of the exporting parent would report the parent's 3 GB."""
  from bench_postprocess import _status_mb  # pylint: disable=g-import-not-at-top
  return _status_mb('VmHWM')


def _run_child(args, export, size, paths):
  command = [sys.executable, os.path.abspath(__file__), '--child', export,
             '--sizes', size, '--runs', str(args.runs), '--experiment',
             args.experiment, '--paths', json.dumps(paths)]
  if args.threads:
    command += ['--threads', str(args.threads)]
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f'{export} at {size} failed:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def _row(size, input_size, export, result):
  times = result['times']
  cell = lambda key: f'{times[key]:.0f}' if key in times else '-'
  network = cell('network')
  if 'network + merge' in times:
    network = f"{cell('network')} (+ merge {cell('network + merge')})"
  return (f'| {size} ({input_size[0]}x{input_size[1]}) | {export} | '
          f"{cell('end to end')} | {cell('decode')} | {cell('fit')} | "
          f"{network} | {cell('merge')} | {cell('unfit')} | "
          f"{result['peak_mb']:.0f} MB | {result['instances']} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--experiment', default='cityscapes_mnv3_large_os16')
  parser.add_argument('--sizes', nargs='+', default=['512x1024', '1024x2048'])
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--exports', nargs='+', default=list(EXPORTS),
                      choices=EXPORTS)
  parser.add_argument('--threads', type=int, default=0,
                      help='LiteRT threads (0: the backend default)')
  parser.add_argument('--workdir', default='',
                      help='keep the exports here and reuse them in later '
                           'runs (default: a temporary folder)')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--paths', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    _child(args)
    return
  print(f'experiment {args.experiment}; ms per image, median of {args.runs}'
        '; TFLite merge = (network + merge) - network')
  print('| image (input) | export | end to end | decode | fit | network | '
        'merge | un-fit | peak RSS | instances |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for size in args.sizes:
    with tempfile.TemporaryDirectory() as temporary:
      folder = os.path.join(args.workdir or temporary, size)
      paths = _exports(args.experiment, size, args.exports, folder)
      for export in ['idle'] + list(args.exports):
        result = _run_child(args, export, size, paths)
        print(_row(size, paths['input_size'], export, result), flush=True)


def _exports(experiment, size, exports, folder):
  """The exports' paths, made in ``folder`` unless a previous run with the
  same experiment and exports left them there (paths.json)."""
  record = os.path.join(folder, 'paths.json')
  if os.path.isfile(record):
    with open(record) as f:
      paths = json.load(f)
    if paths.get('experiment') == experiment and all(
        name in paths for name in exports):
      return paths
  height, width = (int(v) for v in size.split('x'))
  paths, input_size = _export_all(experiment, (height, width), exports,
                                  folder)
  paths.update(input_size=list(input_size), experiment=experiment)
  with open(record, 'w') as f:
    json.dump(paths, f)
  return paths


if __name__ == '__main__':
  main()
