"""pdl-eval: evaluate a checkpoint (PQ / SQ / RQ, mIoU and mask AP)."""

import os
import shlex

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common


def build_parser():
  parser = common.new_parser(
      'pdl-eval', 'Evaluate a Panoptic-DeepLab checkpoint: PQ, mIoU, mask '
      'AP.')
  common.add_config_flags(parser)
  parser.add_argument('--checkpoint', required=True,
                      help='checkpoint prefix or model directory')
  parser.add_argument('--model_dir', default=None,
                      help='where metrics.json goes (default: the '
                           "checkpoint's folder)")
  parser.add_argument('--save_predictions', default=None, metavar='DIR',
                      help='also write ground truth and predictions in COCO '
                           'panoptic format to DIR (and, for Cityscapes, '
                           "cityscapesScripts' result files)")
  parser.add_argument('--crowd_rule', choices=('union', 'panopticapi'),
                      default='union',
                      help="PQ's crowd region with several crowd segments "
                           'of a class in an image: their union, or the one '
                           "listed last (panopticapi's rule)")
  return parser


def check(args):
  """The config, checkpoint, eval data and output folders (no TensorFlow,
  nothing written); returns (config, model_dir)."""
  config = common.load_config_from_args(args, checkpoint=args.checkpoint)
  checkpoint = checks.checkpoint(args.checkpoint, '--checkpoint')
  model_dir = args.model_dir or (
      checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint))
  checks.output_dir(model_dir, '--model_dir')
  checks.output_dir(args.save_predictions, '--save_predictions')
  checks.data_split(config, 'data.eval')
  checks.backbone_checkpoint(config)
  return config, model_dir


def print_per_class(rows):
  """The per-class table: index, the dataset's category id and name,
  thing/stuff, PQ / SQ / RQ and IoU in percent ('-' for a class in neither
  the ground truth nor the predictions)."""
  width = max([len(row['name']) for row in rows] + [5])
  print(f'{"class":>5} {"id":>6}  {"name":<{width}}  kind   '
        f'{"PQ":>5} {"SQ":>5} {"RQ":>5} {"IoU":>5}')
  for row in rows:
    cells = ' '.join('    -' if row[key] is None else f'{100 * row[key]:5.1f}'
                     for key in ('pq', 'sq', 'rq', 'iou'))
    print(f'{row["class_index"]:>5} {row["category_id"]:>6}  '
          f'{row["name"]:<{width}}  {"thing" if row["isthing"] else "stuff"}  '
          f'{cells}')


def main(args):
  config, model_dir = check(args)
  # pylint: disable=g-import-not-at-top
  from pdl_tf.cli.train import print_metrics
  from pdl_tf.training import strategy as strategy_lib
  from pdl_tf.training import trainer as trainer_lib
  # pylint: enable=g-import-not-at-top
  checkpoint = args.checkpoint
  trainer = trainer_lib.Trainer(
      config, model_dir, strategy_lib.get_strategy(config.train.strategy),
      checkpoint=checkpoint)
  metrics = trainer.evaluate(predictions_dir=args.save_predictions,
                             crowd_rule=args.crowd_rule)
  print_per_class(metrics['per_class'])
  print_metrics(metrics)
  print(f'PQ crowd rule: {args.crowd_rule}')
  print(f'metrics written to {os.path.join(model_dir, "metrics.json")}')
  if args.save_predictions:
    print(f'predictions written to {args.save_predictions}')
    print_pq_command(args.save_predictions, args.crowd_rule)
  return 0


def print_pq_command(folder, crowd_rule):
  """Says where the COCO panoptic pairs are and the pdl-pq command that
  scores them again (to the same PQ)."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.training.eval_outputs import COCO_PANOPTIC_FOLDER
  pairs = os.path.join(folder, COCO_PANOPTIC_FOLDER)
  join = lambda name: shlex.quote(os.path.join(pairs, name))
  print(f'COCO panoptic ground truth and predictions in {pairs}; score them '
        'with:\n'
        f'  pdl-pq --gt_json {join("gt.json")} --gt_folder {join("gt")} '
        f'--pred_json {join("predictions.json")} --pred_folder '
        f'{join("predictions")} --crowd_rule {crowd_rule}')


entry_point = common.entry_point_for(main, build_parser)

if __name__ == '__main__':
  entry_point()
