"""End-to-end input-pipeline throughput (images/s) on the synthetic data.

Reads, augments, generates targets and batches with the demo experiment's
settings; prints the median images/s over --runs windows of --batches
batches each, after one warm-up window.

Usage: python bench/bench_pipeline.py [--experiment demo] [--runs 5]
"""

import argparse
import os
import sys
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Measure this checkout's pdl_tf, not an installed copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))  # the working tree

# As the pdl-* commands run (pdl_tf.xla_cpu), before anything compiles.
from pdl_tf import xla_cpu  # pylint: disable=g-import-not-at-top
xla_cpu.prefer_memory_optimized_scheduler()

from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
from pdl_tf.data import pipeline  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='demo')
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--batches', type=int, default=20)
  args = parser.parse_args()
  config = config_io.load_config(args.experiment)
  iterator = iter(pipeline.build_dataset(config))
  batch_size = config.data.train.batch_size
  rates = []
  for run in range(args.runs + 1):
    start = time.perf_counter()
    for _ in range(args.batches):
      next(iterator)
    if run:  # the first window warms up
      rates.append(args.batches * batch_size / (time.perf_counter() - start))
  height, width = config.data.train.crop_size
  print(f'{args.experiment}: {config.data.dataset} {height}x{width}, batch '
        f'{batch_size}: {statistics.median(rates):.0f} images/s '
        f'({os.cpu_count()} CPU cores, median of {args.runs})')


if __name__ == '__main__':
  main()
