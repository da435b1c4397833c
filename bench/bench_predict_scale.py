"""Images/s and peak memory of predicting a folder of images: pdl-predict
one at a time, pdl-predict batched, and pdl-beam-predict on Beam's
DirectRunner with 1 and 2 workers, on the same generated images at
512x1024 and at COCO size (640x480).

Each run is a fresh process writing to a fresh folder; its wall time
includes starting Python, TensorFlow and loading the model (as a user
sees it; more images per run weigh it less), and its peak memory is the largest
total RSS of its process tree (sampled every 0.1 s: with several worker
processes, the sum is what the machine must hold). Configurations
alternate within each repeat (the machine is shared: medians and the
spread over repeats are reported).

Run with the beam extra installed (the Beam rows are skipped otherwise):

  python bench/bench_predict_scale.py --saved_model exports/demo \
      --images 16 --repeats 3

Without --saved_model, a demo model with random weights is exported first
(the same graph and sizes as a trained demo export: the speed does not
depend on the weights, except through the number of instances found).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil
from PIL import Image

SIZES = {'512x1024': (512, 1024), 'coco640x480': (480, 640)}


def make_images(folder, count, height, width, seed=0):
  """JPEGs of smooth blobs and 16x16 blocks (structure, not noise)."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  for index in range(count):
    blocks = rng.integers(0, 256, (-(-height // 16), -(-width // 16), 3))
    image = np.kron(blocks, np.ones((16, 16, 1)))[:height, :width]
    Image.fromarray(image.astype(np.uint8)).save(
        os.path.join(folder, f'img{index:04d}.jpg'), quality=90)


def export_demo(folder):
  """A random-weight demo SavedModel in ``folder``/1."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf import config_io
  from pdl_tf.export import saved_model
  from pdl_tf.export import serving_module
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config('demo', [], [])
  size = tuple(config.export.input_size)
  model = factory.build_model(config.model, input_size=size)
  module = serving_module.PanopticServingModule(
      model, input_size=size, merge_arguments=factory.merge_arguments(config))
  return saved_model.export_saved_model(module, folder, 1, config)


def measure(command):
  """(wall seconds, peak total RSS bytes of the process tree)."""
  start = time.perf_counter()
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  root, peak = psutil.Process(process.pid), 0
  while process.poll() is None:
    try:
      tree = [root] + root.children(recursive=True)
      peak = max(peak, sum(p.memory_info().rss for p in tree))
    except psutil.Error:
      pass
    time.sleep(0.1)
  if process.returncode not in (0, 1):
    print(f'FAILED ({process.returncode}): {" ".join(command)}',
          file=sys.stderr)
    return None
  return time.perf_counter() - start, peak


def commands(images, model, output, batch_sizes, beam):
  predict = [sys.executable, '-m', 'pdl_tf.cli.predict', images,
             '--saved_model', model, '--output', output]
  runs = {f'pdl-predict --batch_size {b}': predict + ['--batch_size', str(b)]
          for b in batch_sizes}
  if beam:
    base = [sys.executable, '-m', 'pdl_tf.cli.beam_predict', '--input',
            images, '--saved_model', model, '--output', output,
            '--runner', 'DirectRunner']
    runs['beam DirectRunner 1 worker'] = base + ['--direct_num_workers', '1']
    runs['beam DirectRunner 2 workers'] = base + [
        '--direct_num_workers', '2', '--direct_running_mode',
        'multi_processing']
  return runs


def model_cost(model, folder, batch_sizes, repeats):
  """Per image wall and CPU seconds of the SavedModel's serving_default
  alone (one loaded model, the same encoded images) at each batch size,
  alternating; CPU time is the process's, less sensitive than wall time to
  other work on a shared machine. Returns {batch size: [(wall, cpu)]}."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import backends
  backend = backends.SavedModelBackend(model)
  names = sorted(os.listdir(folder))
  contents = []
  for name in names:
    with open(os.path.join(folder, name), 'rb') as f:
      contents.append(f.read())
  backend.predict_batch(contents[:max(batch_sizes)])  # warm up
  costs = {b: [] for b in batch_sizes}
  for _ in range(repeats):
    for b in batch_sizes:
      wall, cpu = time.perf_counter(), time.process_time()
      for start in range(0, len(contents), b):
        backend.predict_batch(contents[start:start + b])
      costs[b].append(((time.perf_counter() - wall) / len(contents),
                       (time.process_time() - cpu) / len(contents)))
      print(f'  model alone, batch {b}: {costs[b][-1]}', flush=True)
  return costs


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--saved_model')
  parser.add_argument('--images', type=int, default=16)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--batch_sizes', default='1,2,4,8')
  parser.add_argument('--sizes', default=','.join(SIZES))
  parser.add_argument('--no_beam', action='store_true')
  parser.add_argument('--model_only', action='store_true',
                      help='only the model call per batch size, in this '
                      'process (how the default --batch_size was chosen)')
  args = parser.parse_args()
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top,unused-import
    beam = not args.no_beam
  except ImportError:
    beam = False
    print('apache_beam not installed: Beam rows skipped', file=sys.stderr)
  work = tempfile.mkdtemp(prefix='bench_predict_scale_')
  model = args.saved_model or export_demo(os.path.join(work, 'model'))
  batch_sizes = [int(b) for b in args.batch_sizes.split(',')]
  print(f'{args.images} images per size, {args.repeats} repeats, '
        f'{os.cpu_count()} CPUs (shared machine)')
  for size in args.sizes.split(','):
    images = os.path.join(work, size)
    make_images(images, args.images, *SIZES[size])
    if args.model_only:
      costs = model_cost(model, images, batch_sizes, args.repeats)
      print(f'\n{size}: serving_default alone, seconds per image, median '
            '(min-max) wall / CPU')
      for b, values in costs.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(f'  batch {b}: wall {statistics.median(walls):.3f} '
              f'({min(walls):.3f}-{max(walls):.3f}), CPU '
              f'{statistics.median(cpus):.3f} ({min(cpus):.3f}-'
              f'{max(cpus):.3f})')
      continue
    runs = commands(images, model, None, batch_sizes, beam)
    results = {name: [] for name in runs}
    for repeat in range(args.repeats):
      for name in runs:  # alternate configurations within a repeat
        output = os.path.join(work, f'out_{size}_{repeat}_{len(name)}_'
                              f'{abs(hash(name))}')
        command = commands(images, model, output, batch_sizes, beam)[name]
        results[name].append(measure(command))
        print(f'  {size} repeat {repeat} {name}: {results[name][-1]}',
              flush=True)
    print(f'\n{size}: images/s (median, min-max) and peak RSS (median)')
    for name, values in results.items():
      values = [value for value in values if value is not None]
      if not values:
        print(f'  {name:32s} failed')
        continue
      rates = [args.images / wall for wall, _ in values]
      peak = statistics.median(p for _, p in values) / 2**30
      print(f'  {name:32s} {statistics.median(rates):6.2f} '
            f'({min(rates):.2f}-{max(rates):.2f}) images/s '
            f'{peak:5.2f} GiB')


if __name__ == '__main__':
  main()
