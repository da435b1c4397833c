"""pdl-predict: panoptic predictions for image files."""

from pdl_tf.cli import common


def build_parser():
  parser = common.new_parser(
      'pdl-predict', 'Predict panoptic maps for images with a SavedModel, a '
      'TFLite file or a TF Serving endpoint.')
  parser.add_argument('inputs', nargs='+', help='image files or folders')
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--saved_model', help='exported SavedModel directory')
  source.add_argument('--tflite', help='exported .tflite file')
  source.add_argument('--server', help='TF Serving address, e.g. '
                      'localhost:8501 (REST) or localhost:8500 with --grpc')
  parser.add_argument('--grpc', action='store_true',
                      help='talk gRPC instead of REST to --server')
  parser.add_argument('--output', required=True, help='output folder')
  return parser


def main(args):
  del args
  raise common.NotBuiltError(
      'prediction is not built yet (issue 6, "Export and serving"); nothing '
      'was predicted.')


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
