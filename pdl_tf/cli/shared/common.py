"""What every pdl-* command shares: flags, quiet logs, check-then-work.

The pattern of a command module (``pdl_tf/cli/<name>.py``)::

  def build_parser():
    parser = common.new_parser('pdl-x', 'One line on what it does.')
    common.add_config_flags(parser)          # if it reads an experiment
    parser.add_argument('--thing', help=...)  # every option has help text
    return parser

  def check(args):
    # The light phase: no TensorFlow, nothing written.
    config = common.load_config_from_args(args)
    checks.checkpoint(args.checkpoint, '--checkpoint')
    checks.output_dir(args.output, '--output')
    return config

  def main(args):
    config = check(args)                      # first, always
    from pdl_tf.model import factory          # then the heavy imports
    ...                                       # and the work
    return 0

  entry_point = common.entry_point_for(main, build_parser)

``check`` loads and validates the config (``config_io`` imports no
TensorFlow) and checks every path the command reads or writes with
``pdl_tf.cli.shared.checks``; it may import only light modules (the standard
library, yaml, ``pdl_tf.config``, ``config_io``, ``experiments``,
``cli.shared.checks``, ``data.catalog.names``, ``model.common.names``). ``main`` calls it before
importing anything that imports TensorFlow, so an argument error costs well
under a second and leaves no file behind (bench/bench_cli_errors.py
measures it). ``run`` parses the arguments, sets TensorFlow's native log
level (``--verbose``) and the CPU runtime settings before TensorFlow starts,
runs ``main``, and prints the known user errors as one line with exit
status 2. A new command adds its bad-argument cases to
``tests/test_cli.py::BAD_ARGUMENTS``, which runs each in a fresh interpreter
and fails if TensorFlow was imported or a file was written.
"""

import argparse
import os
import sys

from pdl_tf import cpu_runtime
from pdl_tf.cli.shared import signals

LOG_LEVEL_VARIABLE = 'TF_CPP_MIN_LOG_LEVEL'


def add_config_flags(parser, experiment_required=False):
  """Adds --experiment, --config_file and --params_override to ``parser``."""
  parser.add_argument(
      '--experiment', required=experiment_required,
      help='name of a shipped experiment (a YAML file in configs/), e.g. '
           + ('cityscapes_deeplab2_mnv3_small_os16: the one whose network '
              'the checkpoint holds' if experiment_required else
              'demo; leave it out to start from the defaults (your own '
              'experiment: --config_file)'))
  parser.add_argument(
      '--config_file', action='append', default=[],
      help='YAML file overriding the experiment (or the defaults); may be '
           'repeated')
  parser.add_argument(
      '--params_override', action='append', default=[],
      help="overrides applied last, e.g. 'train.steps=10,data.train.path=x' "
           'or a YAML/JSON mapping; may be repeated')


def load_config_from_args(args, checkpoint=None):
  """The validated ExperimentConfig the flags describe (no TensorFlow).

  ``--experiment`` and ``--config_file`` apply in that order over the
  defaults. With neither, a ``checkpoint``'s own params.yaml (its training
  run's config) is the config. With a checkpoint, the classes its run was
  trained with (class count, thing classes, names, category ids) fill the
  config's unset ones and must agree with those it sets.

  Raises:
    UsageError: no experiment, config file or checkpoint params.yaml.
    ConfigError: a bad config, or classes that differ from the
      checkpoint's.
  """
  # pylint: disable=g-import-not-at-top
  from pdl_tf import config_io
  from pdl_tf import experiments
  from pdl_tf import run_params
  from pdl_tf.cli.shared import checks
  from pdl_tf.data.catalog import dataset_classes
  # pylint: enable=g-import-not-at-top
  files = list(args.config_file)
  params = run_params.existing_params_path(checkpoint, local_only=True)
  if not args.experiment and not files:
    if checkpoint and '://' not in checkpoint and not (
        os.path.exists(checkpoint) or os.path.exists(checkpoint + '.index')):
      raise FileNotFoundError(f'{checkpoint!r} does not exist: name a run '
                              'folder (or a checkpoint prefix).')
    if params is None:
      raise checks.UsageError(
          'no experiment: pass --experiment NAME (shipped: '
          f'{", ".join(experiments.list_experiments())}) or --config_file '
          'FILE (your own, over the defaults)' +
          (f', or name a run folder with its params.yaml ({checkpoint!r} '
           'has none)' if checkpoint else '') + '.')
    files = [params]
  config = config_io.load_config(args.experiment, files, args.params_override)
  if params is not None:
    dataset_classes.resolve_from_params(config, params,
                                        f'the checkpoint {checkpoint}')
  return config


def experiment_label(args):
  """What a run is called in messages and default folders: the experiment
  name, else the first config file's name without its extension."""
  if args.experiment:
    return args.experiment
  if args.config_file:
    return os.path.splitext(os.path.basename(args.config_file[0]))[0]
  return None


def native_log_level(verbose, environ=None, gpu_driver=None):
  """The TF_CPP_MIN_LOG_LEVEL a command runs with.

  The user's own setting wins. ``--verbose`` shows everything ('0').
  Otherwise '1' (warnings and errors; TensorFlow's INFO lines, among them
  "Local rendezvous is aborting ... End of sequence" after each pass over a
  dataset, are hidden), or '3' on a machine without an NVIDIA driver: there
  TensorFlow always logs the error "failed call to cuInit", and its other
  native warnings and errors also reach Python as exceptions.

  Args:
    verbose: the --verbose flag.
    environ: the environment (default os.environ).
    gpu_driver: whether an NVIDIA driver is loaded (default: look at
      /proc/driver/nvidia).
  """
  environ = os.environ if environ is None else environ
  if LOG_LEVEL_VARIABLE in environ:
    return environ[LOG_LEVEL_VARIABLE]
  if verbose:
    return '0'
  if gpu_driver is None:
    gpu_driver = os.path.exists('/proc/driver/nvidia')
  return '1' if gpu_driver else '3'


def run(main, argv=None, parser=None):
  """Parses ``argv`` with ``parser`` and runs ``main(args)``.

  Known user errors (bad config, missing or existing file, a dataset
  whose files are missing, empty or inconsistent, also when tf.data meets
  them while training) are printed as one line naming the problem and exit
  with status 2; Ctrl-C and SIGTERM as one line with status 130 and 143
  (``signals``); anything else propagates with its traceback.
  """
  args = parser.parse_args(argv)
  # Before TensorFlow starts: its native log level and CPU settings.
  os.environ[LOG_LEVEL_VARIABLE] = native_log_level(
      getattr(args, 'verbose', False))
  cpu_runtime.apply()
  if not getattr(args, 'verbose', False):
    _quiet_python_logs()
  # pylint: disable=g-import-not-at-top
  from pdl_tf.cli.shared.checks import UsageError
  from pdl_tf.config import ConfigError
  from pdl_tf.data.formats import errors
  # pylint: enable=g-import-not-at-top
  previous = signals.raise_on_sigterm()
  try:
    return main(args)
  except (KeyboardInterrupt, signals.Terminated) as e:  # Ctrl-C, SIGTERM
    return signals.report(parser.prog, e)
  except (ConfigError, UsageError, FileNotFoundError, FileExistsError,
          NotADirectoryError, errors.DatasetError) as e:
    if isinstance(e, errors.DatasetError) and getattr(args, 'verbose',
                                                      False):
      raise  # --verbose: the readers' traceback too
    print(f'{parser.prog}: error: {errors.message_of(e) or e}',
          file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    # A missing or bad dataset file met inside tf.data (an OpError around
    # the loader's DatasetError): its message, one line (--verbose: the
    # traceback too). Anything else keeps its traceback.
    message = errors.message_of(e)
    if message is None or getattr(args, 'verbose', False):
      raise
    print(f'{parser.prog}: error: {message}', file=sys.stderr)
    return 2
  finally:
    signals.restore_sigterm(previous)


def _quiet_python_logs():
  """absl's Python warnings (tf_keras, Model Garden) to errors only; the
  commands print what the user needs themselves."""
  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger('absl').setLevel(logging.ERROR)
  logging.getLogger('tensorflow').addFilter(_drop_checkpoint_warnings)


def _drop_checkpoint_warnings(record):
  """False for TensorFlow's per-variable warnings about a checkpoint that
  does not fit (hundreds of lines); the command's one-line error says it."""
  message = str(record.msg)
  return not message.startswith(_CHECKPOINT_WARNINGS)


_CHECKPOINT_WARNINGS = (
    'Value in checkpoint could not be found in the restored object',
    'Detecting that an object or model or tf.train.Checkpoint is being '
    'deleted with unrestored values',
    'An attribute in the restored object could not be found in the '
    'checkpoint')


def entry_point_for(main, build_parser):
  """The console-script function of a command: parse, run, exit."""
  def entry_point(argv=None):
    sys.exit(run(main, argv, build_parser()))
  return entry_point


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Adds '(default: X)' to a help text unless it already names its default
  or the default is None/False/empty."""

  def _get_help_string(self, action):
    text = action.help or ''
    if '(default' in text or action.default in (None, False, [], '') or (
        action.default is argparse.SUPPRESS):
      return text
    return super()._get_help_string(action)


class BeamOptionsParser(argparse.ArgumentParser):
  """Keeps the flags it does not know in ``args.beam_args`` (Apache Beam's
  pipeline options pass through); where ``beam_flag`` names an argument,
  unknown flags are refused unless that argument is given."""

  beam_flag = None

  def parse_args(self, args=None, namespace=None):
    known, rest = self.parse_known_args(args, namespace)
    if rest and self.beam_flag and not getattr(known, self.beam_flag):
      self.error(f'unrecognized arguments: {" ".join(rest)} (Beam pipeline '
                 f'options need --{self.beam_flag})')
    known.beam_args = rest
    return known


def new_parser(prog, description, parser_class=argparse.ArgumentParser):
  """An ArgumentParser (or ``parser_class``) with the flags every command
  has (--verbose)."""
  parser = parser_class(prog=prog, description=description,
                        formatter_class=_HelpFormatter)
  parser.add_argument(
      '--verbose', action='store_true',
      help="show TensorFlow's native log lines and library warnings "
           '(hidden by default; TF_CPP_MIN_LOG_LEVEL, when set, wins; '
           "XLA's one-time 'Compiled cluster using XLA!' line and absl's "
           'note before it print at any level)')
  return parser
