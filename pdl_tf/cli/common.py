"""Flags shared by the pdl-* commands and their error reporting.

Heavy modules (TensorFlow) are imported only after argument parsing, so
``--help`` stays fast.
"""

import argparse
import sys

from pdl_tf import cpu_runtime


def add_config_flags(parser, experiment_required=True):
  """Adds --experiment, --config_file and --params_override to ``parser``."""
  parser.add_argument(
      '--experiment', required=experiment_required,
      help='name of a shipped experiment (a YAML file in configs/), e.g. demo')
  parser.add_argument(
      '--config_file', action='append', default=[],
      help='YAML file overriding the experiment; may be repeated')
  parser.add_argument(
      '--params_override', action='append', default=[],
      help="overrides applied last, e.g. 'train.steps=10,model.num_classes=5' "
           'or a YAML/JSON mapping; may be repeated')


def load_config_from_args(args):
  """Returns the validated ExperimentConfig the flags describe."""
  from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
  return config_io.load_config(args.experiment, args.config_file,
                               args.params_override)


def run(main, argv=None, parser=None):
  """Parses ``argv`` with ``parser`` and runs ``main(args)``.

  Known user errors (bad config, missing or existing file) are
  printed as one line naming the problem and exit with status 2; anything
  else propagates with its traceback.
  """
  args = parser.parse_args(argv)
  # Before TensorFlow starts (see cpu_runtime).
  cpu_runtime.apply()
  from pdl_tf.config import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    return main(args)
  except (ConfigError, FileNotFoundError, FileExistsError) as e:
    print(f'{parser.prog}: error: {e}', file=sys.stderr)
    return 2


def entry_point_for(main, build_parser):
  """The console-script function of a command: parse, run, exit."""
  def entry_point(argv=None):
    sys.exit(run(main, argv, build_parser()))
  return entry_point


def new_parser(prog, description):
  return argparse.ArgumentParser(
      prog=prog, description=description,
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
