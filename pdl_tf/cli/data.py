"""pdl-data: convert a panoptic dataset to sharded TFRecords.

Reads any listed dataset (synthetic, COCO panoptic format, Cityscapes
gtFine, Mapillary Vistas, COCO instances JSON with optional stuff,
semantic + instance PNG pairs) with the package's readers and writes
``--output`` as ``data.dataset: tfrecord`` reads it (pdl_tf.data.tfrecords):
shards, per-shard sidecars and metadata.json. Rerunning the same command
resumes after the last finished shard.

Example:
  pdl-data --dataset coco_panoptic --input /data/coco --split val2017 \\
      --split train2017 --output /data/coco_tfrecords --num_shards 64
"""

import argparse
import sys

from pdl_tf.cli import checks
from pdl_tf.cli import common
from pdl_tf.data.names import LISTED as DATASETS


def _size(text):
  """'HxW' -> (H, W); argparse prints the ArgumentTypeError's message."""
  try:
    height, width = (int(v) for v in text.lower().split('x'))
  except ValueError as e:
    raise argparse.ArgumentTypeError(
        f'expected HxW, e.g. 128x128, got {text!r}') from e
  if height < 1 or width < 1:
    raise argparse.ArgumentTypeError(f'expected a positive HxW, got {text!r}')
  return height, width


def build_parser():
  parser = common.new_parser(
      'pdl-data', 'Convert a panoptic dataset to sharded TFRecords.')
  parser.add_argument('--dataset', choices=DATASETS, required=True,
                      help='reader of --input')
  parser.add_argument('--input', default='',
                      help='dataset root folder (not for synthetic)')
  parser.add_argument('--split', action='append', required=True,
                      help='split to convert, e.g. val2017, train, '
                           'validation; may be repeated')
  parser.add_argument('--output', required=True, help='output folder')
  parser.add_argument('--num_shards', type=int, default=16,
                      help='TFRecord files per split')
  parser.add_argument('--skip_bad', action='store_true',
                      help='skip examples whose files are missing or bad, '
                           'listing them, instead of stopping at the first')
  parser.add_argument('--image_format', choices=('png', 'jpeg'),
                      default='png', help='image encoding in the records '
                      '(png is lossless; jpeg at quality 95 is smaller)')
  parser.add_argument('--num_examples', type=int, default=0,
                      help='synthetic: scenes per split (required); others: '
                           'convert only the first N (0 = all)')
  parser.add_argument('--size', type=_size, default=(128, 128),
                      help='synthetic: scene size HxW')
  parser.add_argument('--label_divisor', type=int, default=1000,
                      help='panoptic label = class * label_divisor + '
                           'instance (must match data.label_divisor)')
  parser.add_argument('--ignore_label', type=int, default=255,
                      help='class id of void pixels (must match '
                           'data.ignore_label)')
  return parser


def check(args):
  """Input, output and counts (no TensorFlow, nothing written)."""
  if args.dataset == 'synthetic':
    if args.num_examples < 1:
      raise checks.UsageError('--num_examples (scenes per split) must be '
                              '>= 1 for the synthetic dataset.')
    for split in args.split:
      checks.synthetic_split(split, '--split')
  elif not args.input:
    raise FileNotFoundError(f'--input (the {args.dataset} root folder) is '
                            'required.')
  else:
    checks.existing_dir(args.input, '--input')
    for split in args.split:
      checks.dataset_files(args.dataset, args.input, split)
  if args.num_shards < 1:
    raise checks.UsageError(f'--num_shards must be >= 1, got '
                            f'{args.num_shards}.')
  checks.output_dir(args.output, '--output')


def main(args):
  check(args)
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data import sources
  from pdl_tf.data import tfrecords
  # pylint: enable=g-import-not-at-top
  for split in args.split:
    try:  # reads the annotations; writes nothing
      meta, split_sources = sources.list_split(
          args.dataset, args.input, split, label_divisor=args.label_divisor,
          ignore_label=args.ignore_label, num_examples=args.num_examples,
          size=args.size)
    except ValueError as e:
      print(f'pdl-data: error: split {split!r}: {e}', file=sys.stderr)
      return 1
    try:
      summary = tfrecords.write_split(
          meta, split_sources, args.output, split, args.num_shards,
          skip_bad=args.skip_bad, image_format=args.image_format)
    except ValueError as e:
      print(f'pdl-data: error: split {split!r}: {e} (finished shards are '
            'kept; rerun the same command to resume)', file=sys.stderr)
      return 1
    print(f'{split}: {summary["num_examples"]} examples in '
          f'{len(summary["files"])} shards under {args.output}')
    for bad in summary['skipped']:
      print(f'  skipped {bad["name"]}: {bad["error"]}')
    if summary['skipped']:
      print(f'{split}: {len(summary["skipped"])} examples skipped (also '
            'listed in the shard .json sidecars)')
  return 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
