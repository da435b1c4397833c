"""pdl-data: convert a panoptic dataset, or summarise it.

Reads any dataset of the package (synthetic, COCO panoptic format,
Cityscapes gtFine, Mapillary Vistas, COCO instances JSON with optional
stuff, semantic + instance PNG pairs; for the COCO formats and --inspect
also a pdl-data TFRecord folder and TFDS coco/2017_panoptic) with its
readers and writes ``--output`` in one of three formats (``--format``):

  tfrecord        (default) what ``data.dataset: tfrecord`` reads
                  (pdl_tf.data.readers.tfrecords): shards, per-shard
                  sidecars and metadata.json; rerunning the same command
                  resumes after the last finished shard.
  coco_panoptic   annotations/panoptic_<split>.json + PNGs and the images
                  in <split>/, as panopticapi and detectron2 read them
                  (pdl_tf.data.writers.coco_writers).
  coco_instances  annotations/instances_<split>.json (things, RLE masks)
                  and stuff_<split>.json (COCO-Stuff style) + the images.

``--inspect`` writes nothing and prints a summary of each split instead
(pdl_tf.data.writers.dataset_stats): images, classes, instances per class,
instance sizes, crowd, void and overlap pixels, and every bad example.

Example:
  pdl-data --dataset coco_panoptic --input /data/coco --split val2017 \\
      --split train2017 --output /data/coco_tfrecords --num_shards 64
  pdl-data --dataset synthetic --split train --num_examples 50 \\
      --format coco_instances --output /data/my_coco
  pdl-data --dataset coco_panoptic --input /data/coco --split val2017 \\
      --inspect
"""

import argparse
import importlib.util
import sys

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common
from pdl_tf.data.formats import layouts
from pdl_tf.data.catalog.names import DATASETS
from pdl_tf.data.catalog.names import LISTED
from pdl_tf.data.catalog.names import PATH_OPTIONAL
from pdl_tf.data.catalog.names import OUTPUT_FORMATS


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


class _DataParser(common.BeamOptionsParser):
  beam_flag = 'runner'


def build_parser():
  parser = common.new_parser(
      'pdl-data', 'Convert a panoptic dataset to sharded TFRecords or the '
      'COCO panoptic / instances layout, or summarise it (--inspect).',
      _DataParser)
  parser.add_argument('--dataset', choices=DATASETS, required=True,
                      help='reader of --input')
  parser.add_argument('--input', default='',
                      help='dataset root folder (not for synthetic); for '
                      'tfrecord a pdl-data folder, for tfds_coco_panoptic '
                      "the TFDS data_dir ('' = TFDS's default)")
  parser.add_argument('--split', action='append', required=True,
                      help='split to convert, e.g. val2017, train, '
                           'validation; may be repeated')
  parser.add_argument('--output', default='',
                      help='output folder (required unless --inspect)')
  parser.add_argument('--format', choices=OUTPUT_FORMATS, default=None,
                      help='what to write: tfrecord (default; resumable), '
                      'coco_panoptic (panoptic JSON + PNGs + images) or '
                      'coco_instances (instances and stuff JSON with RLE '
                      'masks + images)')
  parser.add_argument('--inspect', action='store_true',
                      help='write nothing; print each split\'s images, '
                      'classes, instances per class, instance sizes, crowd, '
                      'void and overlap pixels and every bad example (exit '
                      'status 1 if any is bad)')
  parser.add_argument('--runner', default=None,
                      help='write the TFRecord shards with an Apache Beam '
                      'pipeline on this runner (DirectRunner, '
                      'DataflowRunner, ...; one shard per element); other '
                      'unknown flags are its pipeline options. Needs '
                      'pip install "pdl_tf[beam]"')
  parser.add_argument('--num_shards', type=int, default=16,
                      help='TFRecord files per split (--format tfrecord)')
  parser.add_argument('--skip_bad', action='store_true',
                      help='skip examples whose files are missing or bad, '
                           'listing them, instead of stopping at the first')
  parser.add_argument('--image_format', choices=('png', 'jpeg'),
                      default='png', help='image encoding in the records '
                      'or image files (png is lossless; jpeg at quality 95 '
                      'is smaller)')
  parser.add_argument('--num_examples', type=int, default=0,
                      help='synthetic: scenes per split (required); others: '
                           'convert only the first N (0 = all)')
  parser.add_argument('--size', type=_size, default=(128, 128),
                      help='synthetic: scene size HxW')
  parser.add_argument('--label_divisor', type=int, default=1000,
                      help='panoptic label = class * label_divisor + '
                           'instance (must match data.label_divisor; a '
                           'tfrecord input keeps the one it was written '
                           'with)')
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
  elif not args.input and args.dataset not in PATH_OPTIONAL:
    raise FileNotFoundError(f'--input (the {args.dataset} root folder) is '
                            'required.')
  elif args.input:
    checks.existing_dir(args.input, '--input')
    for split in args.split:
      checks.dataset_files(args.dataset, args.input, split)
  if args.dataset not in LISTED and not args.inspect and args.format in (
      None, 'tfrecord'):
    raise checks.UsageError(
        f'--dataset {args.dataset} is read as tf.data records: --format '
        'tfrecord converts only the listed datasets '
        f'({", ".join(LISTED)}); train on {args.dataset} directly '
        f'(data.dataset: {args.dataset}), or write --format coco_panoptic '
        'or coco_instances.')
  if args.inspect:
    if args.output or args.format or args.runner:
      flag = ('--output' if args.output else
              '--format' if args.format else '--runner')
      raise checks.UsageError(f'--inspect writes nothing; drop {flag}, or '
                              'drop --inspect to convert.')
    return
  if not args.output:
    raise checks.UsageError('--output is required (or --inspect to '
                            'summarise the dataset without writing).')
  if args.num_shards < 1:
    raise checks.UsageError(f'--num_shards must be >= 1, got '
                            f'{args.num_shards}.')
  checks.output_dir(args.output, '--output')
  args.format = args.format or 'tfrecord'
  if args.runner:
    if args.format != 'tfrecord':
      raise checks.UsageError(f'--runner writes TFRecords only, not --format '
                              f'{args.format}.')
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf import beam_import
    if importlib.util.find_spec('apache_beam') is None:
      raise checks.UsageError(beam_import.INSTALL)
  if args.format != 'tfrecord':
    _check_coco_output(args)


def _check_coco_output(args):
  """Refuses a split named twice or already in --output."""
  repeated = sorted({s for s in args.split if args.split.count(s) > 1})
  if repeated:
    raise checks.UsageError(f'--split {repeated[0]!r} is given twice.')
  for split in args.split:
    layouts.refuse_coco_output(args.format, args.output, split)


def main(args):
  check(args)
  code = 0
  for split in args.split:
    listed = [] if args.inspect else None  # --inspect lists every problem
    try:  # reads the annotations; writes nothing
      meta, split_sources = _list(args, split, listed)
    except ValueError as e:  # bad annotations: the user's data, status 2
      print(f'pdl-data: error: split {split!r}: {e}', file=sys.stderr)
      return 2
    if args.inspect:
      code = max(code, _inspect(meta, split_sources, split, listed))
    elif args.format == 'tfrecord':
      code = _write_tfrecords(args, meta, split_sources, split)
    else:
      code = _write_coco(args, meta, split_sources, split)
    if code and not args.inspect:
      return code
  return code


def _list(args, split, problems=None):
  """Metadata and sources of a split: one per file for a listed dataset,
  in record order for tfrecord and tfds_coco_panoptic. ``problems``: a
  list collecting the bad annotations found while listing, instead of
  stopping at the first (``sources.list_split``)."""
  # pylint: disable=g-import-not-at-top
  if args.dataset in LISTED:
    from pdl_tf.data import sources
    return sources.list_split(
        args.dataset, args.input, split, label_divisor=args.label_divisor,
        ignore_label=args.ignore_label, num_examples=args.num_examples,
        size=args.size, problems=problems)
  from pdl_tf.data import record_sources  # imports TFDS
  return record_sources.list_records(
      args.dataset, args.input, split, label_divisor=args.label_divisor,
      ignore_label=args.ignore_label, num_examples=args.num_examples)


def _print_skipped(split, skipped, where):
  for bad in skipped:
    print(f'  skipped {bad["name"]}: {bad["error"]}')
  if skipped:
    print(f'{split}: {len(skipped)} examples skipped{where}')


def _write_tfrecords(args, meta, split_sources, split):
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.writers import beam_tfrecords
  from pdl_tf.data.readers import tfrecords
  # pylint: enable=g-import-not-at-top
  try:
    if args.runner:
      summary = beam_tfrecords.write_split(
          meta, split_sources, args.output, split, args.num_shards,
          beam_args=['--runner', args.runner] + args.beam_args,
          skip_bad=args.skip_bad, image_format=args.image_format)
    else:
      summary = tfrecords.write_split(
          meta, split_sources, args.output, split, args.num_shards,
          skip_bad=args.skip_bad, image_format=args.image_format)
  except ValueError as e:  # a bad example (without --skip_bad)
    print(f'pdl-data: error: split {split!r}: {e} (finished shards are '
          'kept; rerun the same command to resume)', file=sys.stderr)
    return 2
  print(f'{split}: {summary["num_examples"]} examples in '
        f'{len(summary["files"])} shards under {args.output}')
  _print_skipped(split, summary['skipped'],
                 ' (also listed in the shard .json sidecars)')
  return 0


def _write_coco(args, meta, split_sources, split):
  from pdl_tf.data.writers import coco_writers  # pylint: disable=g-import-not-at-top
  try:
    summary = coco_writers.WRITERS[args.format](
        meta, split_sources, args.output, split, skip_bad=args.skip_bad,
        image_format=args.image_format)
  except (ValueError, OSError) as e:
    print(f'pdl-data: error: split {split!r}: {e} (nothing of the split '
          'was written)', file=sys.stderr)
    return 2 if isinstance(e, ValueError) else 1
  ids = ('' if summary['dataset_image_ids'] else
         '; image ids numbered 1..N')
  print(f'{split}: {summary["num_examples"]} examples in {args.format} '
        f'format: {", ".join(summary["files"])}{ids}')
  if args.format == 'coco_panoptic' and args.image_format == 'png':
    print('  (images as PNG; detectron2\'s COCO panoptic loader looks for '
          '<stem>.jpg: write them with --image_format jpeg for it)')
  _print_skipped(split, summary['skipped'], '')
  return 0


def _inspect(meta, split_sources, split, listed=()):
  """Prints the split's summary (``listed``: the bad annotations found
  while listing, left out); 1 if anything is bad, else 0."""
  from pdl_tf.data.writers import dataset_stats  # pylint: disable=g-import-not-at-top
  stats = dataset_stats.inspect_split(meta, split_sources, desc=split)
  print(f'split {split}: {stats.num_images} images'
        + (f' ({len(stats.problems)} more with problems, not counted)'
           if stats.problems else ''))
  print(f'pixels: {stats.pixels}; void {100 * stats.void_share:.2f}%, '
        f'crowd {100 * stats.crowd_share:.2f}%; pixels claimed by several '
        f'instances (overlap): {stats.overlap_pixels}')
  width = max(len(name) for name in meta.class_names + ['name'])
  print(f'classes ({meta.num_classes}; {len(meta.thing_class_ids)} things):')
  print(f'  {"index":>5} {"id":>6}  {"name":<{width}}  kind   images '
        ' instances  pixels')
  shares = stats.class_shares()
  for cls, name in enumerate(meta.class_names):
    thing = meta.is_thing[cls]
    instances = str(stats.class_instances[cls]) if thing else '-'
    print(f'  {cls:>5} {meta.category_ids[cls]:>6}  {name:<{width}}  '
          f'{"thing" if thing else "stuff"}  {stats.class_images[cls]:>6} '
          f'{instances:>10}  {100 * shares[cls]:5.2f}%')
  print(f'instance sizes (area in pixels; {len(stats.instance_areas)} '
        'instances, crowd regions not counted):')
  for name, count in zip(dataset_stats.AREA_BIN_NAMES,
                         stats.area_histogram()):
    print(f'  {name:<15} {count:>8}')
  print(f'problems: {len(listed) + len(stats.problems) or "none"}')
  for message in listed:
    print(f'  {message} (left out of these counts; converting and '
          'training refuse it)')
  for bad in stats.problems:
    print(f'  {bad["name"]}: {bad["error"]}')
  return 1 if listed or stats.problems else 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
