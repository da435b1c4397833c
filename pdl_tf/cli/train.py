"""pdl-train: train and/or evaluate an experiment."""

from pdl_tf.cli import common

MODES = ('train', 'eval', 'train_and_eval', 'continuous_eval')


def build_parser():
  parser = common.new_parser(
      'pdl-train', 'Train Panoptic-DeepLab on an experiment from configs/.')
  common.add_config_flags(parser)
  parser.add_argument('--model_dir', default=None,
                      help='checkpoints, params.yaml and summaries go here')
  parser.add_argument('--mode', choices=MODES, default='train_and_eval')
  return parser


def main(args):
  config = common.load_config_from_args(args)
  from pdl_tf.model import factory  # pylint: disable=g-import-not-at-top
  model = factory.build_model(config.model)
  trainable = sum(int(v.shape.num_elements()) for v in model.trainable_weights)
  print(f'experiment {args.experiment}: config valid; built '
        f'{config.model.backbone.type} Panoptic-DeepLab with {trainable:,} '
        f'trainable weights ({config.model.num_classes} classes).')
  raise common.NotBuiltError(
      f'mode {args.mode!r}: the training loop is not built yet (issue 5, '
      '"Training"); nothing was trained or written.')


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
