"""pdl-export: export a checkpoint to SavedModel and/or TFLite."""

from pdl_tf.cli import common

FORMATS = ('saved_model', 'tflite', 'both')


def build_parser():
  parser = common.new_parser(
      'pdl-export', 'Export network + XLA panoptic merge to SavedModel / '
      'TFLite.')
  common.add_config_flags(parser)
  parser.add_argument('--checkpoint', required=True,
                      help='checkpoint prefix or model directory')
  parser.add_argument('--output', required=True, help='export directory')
  parser.add_argument('--format', choices=FORMATS, default='saved_model')
  return parser


def main(args):
  common.load_config_from_args(args)
  raise common.NotBuiltError(
      'export is not built yet (issue 6, "Export and serving"); the config '
      'is valid, nothing was exported.')


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
