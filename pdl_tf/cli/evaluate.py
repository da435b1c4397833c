"""pdl-eval: evaluate a checkpoint (PQ / AP / mIoU)."""

from pdl_tf.cli import common


def build_parser():
  parser = common.new_parser(
      'pdl-eval', 'Evaluate a Panoptic-DeepLab checkpoint: PQ, AP and mIoU.')
  common.add_config_flags(parser)
  parser.add_argument('--checkpoint', required=True,
                      help='checkpoint prefix or model directory')
  parser.add_argument('--save_predictions', action='store_true',
                      help='also write prediction PNGs')
  return parser


def main(args):
  common.load_config_from_args(args)
  raise common.NotBuiltError(
      'evaluation is not built yet (issue 4, "Post-processing and '
      'evaluation"); the config is valid, nothing was evaluated.')


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
