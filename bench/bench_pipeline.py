"""End-to-end input-pipeline throughput (images/s) on the synthetic data.

Reads, batches, augments and generates targets with an experiment's
settings (the demo's by default); prints the median images/s and the median
CPU time (user + system, getrusage) per image over --runs windows of
--batches batches each, after --warmup batches (80: enough to fill the
demo's in-memory cache of 512 scenes, so that the windows measure what
every later epoch costs).

Usage: python bench/bench_pipeline.py [--experiment demo] [--runs 5]
         [--batches 20] [--warmup 80] [--params_override KEY=VALUE,...]

bench/README.md gives the command for large crops on synthetic data.
"""

import argparse
import os
import resource
import sys
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Measure this checkout's pdl_tf, not an installed copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))  # the working tree

# As the pdl-* commands run (pdl_tf.cpu_runtime), before TensorFlow starts.
from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top
cpu_runtime.apply()

from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
from pdl_tf.data import pipeline  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='demo')
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--batches', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=80)
  parser.add_argument('--params_override', default='')
  args = parser.parse_args()
  config = config_io.load_config(args.experiment,
                                 params_override=args.params_override)
  iterator = iter(pipeline.build_dataset(config))
  batch_size = config.data.train.batch_size
  for _ in range(args.warmup):
    next(iterator)
  rates, cpu_ms = [], []
  for _ in range(args.runs):
    usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(args.batches):
      next(iterator)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    images = args.batches * batch_size
    rates.append(images / seconds)
    cpu_ms.append(1e3 * (after.ru_utime + after.ru_stime - usage.ru_utime -
                         usage.ru_stime) / images)
  height, width = config.data.train.crop_size
  print(f'{args.experiment}: {config.data.dataset} {height}x{width}, batch '
        f'{batch_size}: {statistics.median(rates):.1f} images/s, '
        f'{statistics.median(cpu_ms):.2f} ms of CPU per image '
        f'({os.cpu_count()} CPU cores, median of {args.runs})')


if __name__ == '__main__':
  main()
