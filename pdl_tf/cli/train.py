"""pdl-train: train and/or evaluate an experiment."""

import os
import sys

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common

MODES = ('train', 'eval', 'train_and_eval', 'continuous_eval')


def build_parser():
  parser = common.new_parser(
      'pdl-train', 'Train Panoptic-DeepLab: a shipped experiment '
      '(--experiment), your own (--config_file over the defaults), or resume '
      'a run (--model_dir alone).')
  common.add_config_flags(parser)
  parser.add_argument('--model_dir', default=None,
                      help='checkpoints, params.yaml, summaries and '
                           'metrics.json go here (default: runs/EXPERIMENT, '
                           'or runs/NAME for --config_file NAME.yaml)')
  parser.add_argument('--mode', choices=MODES, default='train_and_eval',
                      help='train; eval (the latest checkpoint of '
                           '--model_dir); train_and_eval; continuous_eval '
                           '(each new checkpoint as a training job writes '
                           'it)')
  parser.add_argument('--init_checkpoint', default=None,
                      help='fine-tune: start a new run from the weights of '
                           'this pdl_tf model folder or checkpoint prefix '
                           '(the semantic classifier anew for another class '
                           'count; sets train.init_checkpoint; unused when '
                           '--model_dir has a checkpoint)')
  parser.add_argument('--eval_timeout', type=float, default=3600,
                      help='continuous_eval: stop after this many seconds '
                           'without a new checkpoint')
  return parser


def print_metrics(metrics):
  print(f"step {metrics['step']}:  PQ {100 * metrics['All/pq']:.1f}  "
        f"SQ {100 * metrics['All/sq']:.1f}  RQ {100 * metrics['All/rq']:.1f}"
        f"  | Things PQ {100 * metrics['Things/pq']:.1f}  Stuff PQ "
        f"{100 * metrics['Stuff/pq']:.1f}  | mIoU "
        f"{100 * metrics['miou']:.1f}  | mask AP {_percent(metrics, 'mask_ap')}"
        f"  AP50 {_percent(metrics, 'mask_ap50')}")
  if 'cityscapes_ap' in metrics:
    print(f"Cityscapes instance AP {_percent(metrics, 'cityscapes_ap')}  "
          f"AP50 {_percent(metrics, 'cityscapes_ap50')}")


def _percent(metrics, name):
  value = metrics.get(name)
  return 'n/a' if value is None else f'{100 * value:.1f}'


def check(args):
  """The config and the paths of this mode (no TensorFlow, nothing
  written); returns (config, model_dir)."""
  resume = not (args.experiment or args.config_file)
  config = common.load_config_from_args(
      args, checkpoint=args.model_dir if resume else None)
  if args.init_checkpoint:
    config.train.init_checkpoint = args.init_checkpoint
  if args.mode == 'continuous_eval' and not args.eval_timeout >= 0:
    raise checks.UsageError(f'--eval_timeout must be >= 0 seconds, got '
                            f'{args.eval_timeout}.')
  model_dir = args.model_dir or os.path.join('runs',
                                             common.experiment_label(args))
  checks.output_dir(model_dir, '--model_dir')
  if args.mode in ('train', 'train_and_eval'):
    checks.data_split(config, 'data.train')
    checks.init_checkpoint(config, model_dir)
  if args.mode != 'train':
    checks.data_split(config, 'data.eval')
  if args.mode == 'eval' and not os.path.isfile(
      os.path.join(model_dir, 'checkpoint')) and not checks.is_remote(
          model_dir):
    raise FileNotFoundError(
        f'--mode eval: no checkpoint in --model_dir {model_dir!r} to '
        'evaluate; train first (--mode train or train_and_eval), or evaluate '
        'a checkpoint elsewhere with pdl-eval --checkpoint PATH.')
  checks.backbone_checkpoint(config)
  return config, model_dir


def save_params(config, model_dir):
  """Writes model_dir/params.yaml; when it replaces one with other values
  (a rerun with another --params_override), says so in one line naming
  the keys."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf import config_io
  changes = ([] if checks.is_remote(model_dir) else
             config_io.changed_keys(config, model_dir))
  config_io.save_config(config, model_dir)
  if changes:
    shown = ', '.join(f'{key} {old!r} -> {new!r}'
                      for key, old, new in changes[:5])
    more = f' and {len(changes) - 5} more' if len(changes) > 5 else ''
    print(f'pdl-train: note: rewrote {os.path.join(model_dir, "params.yaml")}'
          f': {shown}{more}', file=sys.stderr)


def describe(args, config):
  """One line on what runs: experiment and config files, backbone, data
  and classes (as resolved from the data)."""
  sources = ([f'experiment {args.experiment}'] if args.experiment else []) + [
      os.path.basename(path) for path in args.config_file]
  data = config.data
  where = f' {data.train.path}' if data.train.path else ''
  return (f'{" + ".join(sources) or "run " + args.model_dir}: '
          f'{config.model.backbone.type} Panoptic-DeepLab, dataset '
          f'{data.dataset}{where}, {config.model.num_classes} classes '
          f'({len(data.thing_class_ids)} thing)')


def main(args):
  config, model_dir = check(args)
  # pylint: disable=g-import-not-at-top
  from pdl_tf.training import interrupt
  from pdl_tf.training import strategy as strategy_lib
  from pdl_tf.training import trainer as trainer_lib
  # pylint: enable=g-import-not-at-top
  strategy = strategy_lib.get_strategy(config.train.strategy)
  # Training writes params.yaml once the data opened and fit the config;
  # evaluation modes leave the training run's params.yaml as it is.
  trains = args.mode in ('train', 'train_and_eval')
  trainer = trainer_lib.Trainer(
      config, model_dir, strategy,
      on_data_ready=(lambda: save_params(config, model_dir)) if trains
      else None)
  print(f'{describe(args, config)}, {strategy.num_replicas_in_sync} '
        f'replica(s), model_dir {model_dir}, starting at step '
        f'{trainer.step}')
  for note in trainer.notes:
    print(f'pdl-train: note: {note}', file=sys.stderr)
  if args.mode in ('train', 'train_and_eval'):
    try:
      trainer.train()
    except trainer_lib.NonFiniteLossError as e:
      print(f'pdl-train: error: {e}', file=sys.stderr)
      return 1
    except interrupt.TrainingInterrupted as e:  # Ctrl-C, SIGTERM
      print(f'pdl-train: {e}', file=sys.stderr)
      return interrupt.exit_code(e)
    print(f'trained to step {trainer.step}; checkpoint '
          f'{trainer.manager.latest_checkpoint}')
  if args.mode == 'continuous_eval':
    results = trainer.continuous_evaluate(timeout=args.eval_timeout,
                                          report=print_metrics)
    print(f'evaluated {len(results)} checkpoint(s); metrics in '
          f'{os.path.join(model_dir, "metrics.json")} and TensorBoard')
    return 0
  if args.mode in ('eval', 'train_and_eval'):
    metrics = trainer.evaluate()
    print_metrics(metrics)
    print(f'metrics written to {os.path.join(model_dir, "metrics.json")}')
  return 0


entry_point = common.entry_point_for(main, build_parser)

if __name__ == '__main__':
  entry_point()
