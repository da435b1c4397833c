"""pdl-data: convert datasets to sharded TFRecords."""

from pdl_tf.cli import common

DATASETS = ('synthetic', 'coco_panoptic', 'cityscapes', 'mapillary_vistas')


def build_parser():
  parser = common.new_parser(
      'pdl-data', 'Convert a panoptic dataset to sharded TFRecords.')
  parser.add_argument('--dataset', choices=DATASETS, required=True)
  parser.add_argument('--input', required=True, help='dataset root folder')
  parser.add_argument('--output', required=True, help='output folder')
  parser.add_argument('--num_shards', type=int, default=16)
  parser.add_argument('--skip_bad', action='store_true',
                      help='log and count bad examples instead of stopping')
  return parser


def main(args):
  del args
  raise common.NotBuiltError(
      'dataset conversion is not built yet (issue 3, "Input pipeline"); '
      'nothing was converted.')


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
