"""The merge's pixel grouping alone: LiteRT against TensorFlow (no XLA).

Converts ``grouping.group_pixels`` for one 513x1025 offset map and 200
centers (the latency profile's busy case; ``--valid`` of them valid) to
TFLite and times it in LiteRT (every core) next to the same graph in
TensorFlow, for several (center_chunk, pixel_block) settings; checks that
both give the same nearest-center map first. Median of --runs.

Usage: python bench/bench_tflite_grouping.py [--runs 5] [--valid 200 30]
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position
from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top,wrong-import-position

from bench_latency import _median_ms  # pylint: disable=g-import-not-at-top,wrong-import-position
from pdl_tf.postprocess import grouping  # pylint: disable=g-import-not-at-top,wrong-import-position
from pdl_tf.serving.backends import available_cores  # pylint: disable=g-import-not-at-top,wrong-import-position

HEIGHT, WIDTH, SLOTS = 513, 1025, 200


def _module(center_chunk, pixel_block):
  module = tf.Module()
  module.group = tf.function(
      lambda offsets, points, valid: {'nearest': grouping.group_pixels(
          offsets, points, valid, center_chunk=center_chunk,
          pixel_block=pixel_block)},
      input_signature=[tf.TensorSpec([1, HEIGHT, WIDTH, 2], tf.float32),
                       tf.TensorSpec([1, SLOTS, 2], tf.int32),
                       tf.TensorSpec([1, SLOTS], tf.bool)])
  return module


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--valid', type=int, nargs='+', default=[200, 30])
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  offsets = rng.normal(0, 20, (1, HEIGHT, WIDTH, 2)).astype(np.float32)
  points = np.stack([rng.integers(0, HEIGHT, (1, SLOTS)),
                     rng.integers(0, WIDTH, (1, SLOTS))], -1).astype(np.int32)
  print(f'{HEIGHT}x{WIDTH} pixels, {SLOTS} slots; ms, median of {args.runs}')
  print('| valid centers | center_chunk, pixel_block | LiteRT | TensorFlow |')
  print('| --- | --- | --- | --- |')
  for chunk, block in ((8, 65536), (32, 65536), (200, 16384)):
    module = _module(chunk, block)
    concrete = module.group.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert(),
                                     num_threads=available_cores())
    runner = interpreter.get_signature_runner()
    for num_valid in args.valid:
      valid = np.arange(SLOTS)[None] < num_valid
      lite = lambda: runner(offsets=offsets, points=points, valid=valid)
      graph = lambda: module.group(offsets, points, valid)['nearest'].numpy()
      np.testing.assert_array_equal(lite()['nearest'], graph())
      print(f'| {num_valid} | {chunk}, {block} | '
            f'{_median_ms(lite, args.runs):.0f} | '
            f'{_median_ms(graph, args.runs):.0f} |', flush=True)


if __name__ == '__main__':
  main()
