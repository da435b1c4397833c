"""pdl-import: load a checkpoint published by another code base into pdl_tf.

  pdl-import deeplab2 --checkpoint DIR_OR_PREFIX \\
      --experiment cityscapes_deeplab2_mnv3_small_os16 --model_dir OUT

writes OUT (checkpoint + params.yaml), ready for pdl-eval, pdl-export,
pdl-predict (through an export) and pdl-train (fine-tuning); see
``pdl_tf.importers.deeplab2``. On any error nothing is written to OUT.
"""

import sys

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common
from pdl_tf.importers import deeplab2_checks


def build_parser():
  parser = common.new_parser(
      'pdl-import', 'Import a published checkpoint into a pdl_tf model '
      'folder.')
  sources = parser.add_subparsers(
      dest='source', required=True, metavar='SOURCE',
      help='the code base that wrote the checkpoint (deeplab2)')
  deeplab2 = sources.add_parser(
      'deeplab2', help="a deeplab2 Panoptic-DeepLab checkpoint",
      description='Import a google-research/deeplab2 Panoptic-DeepLab '
      'checkpoint (a folder as untarred, or a ckpt-N prefix).',
      formatter_class=parser.formatter_class)
  deeplab2.add_argument('--checkpoint', required=True,
                        help='checkpoint folder or ckpt-N prefix')
  common.add_config_flags(deeplab2, experiment_required=True)
  deeplab2.add_argument('--model_dir', required=True,
                        help='new folder for the pdl_tf checkpoint and '
                             'params.yaml (must not exist or be empty)')
  return parser


def check(args):
  """The light phase (no TensorFlow, nothing written): config, experiment,
  checkpoint path and output folder."""
  config = common.load_config_from_args(args)
  checks.known_classes(config, strict=True)  # names, ids into params.yaml
  if not config.data.class_names and config.data.dataset == 'coco_panoptic':
    # deeplab2's COCO checkpoints were trained on COCO panoptic's 133
    # categories (the importer drops their void class).
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf.data.catalog import dataset_classes, fixed_classes
    dataset_classes.resolve_classes(
        config, fixed_classes.coco_metadata(config.data.label_divisor,
                                            config.data.ignore_label),
        "COCO panoptic (deeplab2's COCO checkpoints were trained on it)")
  deeplab2_checks.check_experiment(config, args.experiment)
  deeplab2_checks.check_checkpoint_path(args.checkpoint)
  deeplab2_checks.check_model_dir(args.model_dir)
  return config


def main(args):
  config = check(args)
  # pylint: disable=g-import-not-at-top
  from pdl_tf.importers import deeplab2
  # pylint: enable=g-import-not-at-top
  try:
    deeplab2.import_checkpoint(args.checkpoint, config, args.model_dir,
                               args.experiment)
  except deeplab2.CheckpointError as e:
    print(f'pdl-import: error: {e} Nothing was written to '
          f'{args.model_dir!r}.', file=sys.stderr)
    return 2
  print(f'imported {args.checkpoint} into {args.model_dir} (checkpoint and '
        f'params.yaml); e.g. pdl-export --checkpoint {args.model_dir} '
        '--output EXPORT_DIR, or fine-tune it on your own data (a config '
        'file with its data section only, docs/own_data.md) with pdl-train '
        f'--experiment {args.experiment} --config_file YOUR_DATA.yaml '
        f'--init_checkpoint {args.model_dir}')
  return 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
