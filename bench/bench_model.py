"""Forward and forward+backward time per image of the network on this CPU.

Prints, for each backbone and XLA on/off, the median over ``--runs`` timed
runs (after one warm-up run that also compiles) of:
  forward:          model(images, training=False)
  forward+backward: loss on all outputs, gradients w.r.t. all weights.

Usage: python bench/bench_model.py [--size 512 1024] [--batch 1] [--runs 3]
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

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pdl_tf import keys  # pylint: disable=g-import-not-at-top
from pdl_tf.model import panoptic_deeplab  # pylint: disable=g-import-not-at-top

BACKBONES = {
    'resnet50_os32': dict(backbone='resnet50', output_stride=32),
    'mobilenet_v3_large_os16': dict(backbone='mobilenet_v3_large',
                                    output_stride=16),
}


def _median_seconds(fn, runs):
  fn()  # warm-up (and XLA compilation)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def bench_one(name, kwargs, size, batch, runs, jit):
  model = panoptic_deeplab.PanopticDeepLab(num_classes=19, **kwargs)
  images = tf.random.uniform([batch, *size, 3], 0, 255)
  model(images[:, :64, :64])  # build the weights

  @tf.function(jit_compile=jit)
  def forward(x):
    return model(x, training=False)[keys.SEMANTIC_LOGITS]

  @tf.function(jit_compile=jit)
  def forward_backward(x):
    with tf.GradientTape() as tape:
      outputs = model(x, training=True)
      loss = tf.add_n([tf.reduce_mean(v) for v in outputs.values()])
    return tape.gradient(loss, model.trainable_variables)

  fwd = _median_seconds(lambda: forward(images).numpy(), runs)
  fwd_bwd = _median_seconds(
      lambda: [g.numpy() for g in forward_backward(images)], runs)
  print(f'{name:26s} xla={str(jit):5s} {size[0]}x{size[1]} batch={batch}: '
        f'forward {1000 * fwd / batch:8.0f} ms/image, forward+backward '
        f'{1000 * fwd_bwd / batch:8.0f} ms/image', flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', type=int, nargs=2, default=(512, 1024))
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--backbones', nargs='+', default=list(BACKBONES))
  args = parser.parse_args()
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores')
  for name in args.backbones:
    for jit in (False, True):
      bench_one(name, BACKBONES[name], tuple(args.size), args.batch,
                args.runs, jit)


if __name__ == '__main__':
  main()
