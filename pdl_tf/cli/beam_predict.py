"""pdl-beam-predict: pdl-predict's outputs for a collection of images, as
an Apache Beam pipeline (``pdl_tf.serving.beam_predict``).

Flags this command does not know are Beam's pipeline options and pass
through (``--runner DirectRunner|DataflowRunner|...``,
``--direct_num_workers 2``, ``--direct_running_mode multi_processing``,
``--project``, ``--region``, ``--temp_location``, ``--setup_file``, ...).
Writes per image the files pdl-predict writes, plus ``index.jsonl`` (one
line per image) and ``dead_letter.jsonl`` (one line per bad file, with
the reason). A rerun predicts only the images whose outputs are not all
there yet. Needs the ``beam`` extra (``pip install "pdl_tf[beam]"``).
"""

import importlib.util
import sys

from pdl_tf import beam_import
from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common
from pdl_tf.cli import predict

# BatchElements' upper bound, measured on this 2-core CPU (bench/README.md).
DEFAULT_MAX_BATCH_SIZE = predict.DEFAULT_BATCH_SIZE


def build_parser():
  parser = common.new_parser(
      'pdl-beam-predict', 'Predict panoptic maps for a collection of images '
      'with an Apache Beam pipeline; other flags are Beam pipeline options '
      '(--runner, --direct_num_workers, ...).', common.BeamOptionsParser)
  parser.add_argument('--input', action='append', required=True,
                      help='image files, folders or globs (local or '
                      'gs://...); repeat for several')
  parser.add_argument('--saved_model', required=True, help='exported '
                      'SavedModel folder (or its base with numbered '
                      'versions), local or gs://')
  parser.add_argument('--output', required=True, help='output folder '
                      '(local or gs://...)')
  parser.add_argument('--min_batch_size', type=int, default=1,
                      help="BatchElements' lower bound (images)")
  parser.add_argument('--max_batch_size', type=int,
                      default=DEFAULT_MAX_BATCH_SIZE,
                      help="BatchElements' upper bound (images)")
  parser.add_argument('--large_model', action='store_true',
                      help='one model per machine, shared by its worker '
                      'processes (default: one per worker process)')
  return parser


def _saved_model(path):
  if '://' in path:
    return path
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving.backends import find_saved_model
  return find_saved_model(checks.existing_dir(path, '--saved_model'))


def check(args):
  """Flags, inputs, model and output (nothing written); returns the
  image files."""
  if not 1 <= args.min_batch_size <= args.max_batch_size:
    raise checks.UsageError(
        f'batch sizes must be 1 <= --min_batch_size <= --max_batch_size, '
        f'got {args.min_batch_size} and {args.max_batch_size}.')
  if importlib.util.find_spec('apache_beam') is None:
    raise checks.UsageError(beam_import.INSTALL)
  files = predict.list_images(args.input)
  checks.output_dir(args.output, '--output')
  return files


def main(args):
  files = check(args)
  from pdl_tf.serving import beam_predict  # pylint: disable=g-import-not-at-top
  beam = beam_predict.import_beam()
  options = beam_options(args.beam_args)  # before any work
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.serving import outputs
  # pylint: enable=g-import-not-at-top
  saved_model = _saved_model(args.saved_model)
  # pylint: disable=protected-access
  params = predict._export_params(saved_model)
  args.label_divisor = None  # the export's own
  labels = predict._labels(args, params) + (predict._colors(params),)
  # pylint: enable=protected-access
  max_pixels = int(params.get('export', {}).get(
      'max_image_pixels', image_decode.MAX_IMAGE_PIXELS))
  stems = predict.output_stems(files)
  existing = outputs.existing_names(args.output)
  done, todo = [], []
  for path in files:
    complete = outputs.is_complete(stems[path], args.output, existing)
    (done if complete else todo).append((path, stems[path]))
  print(f'{len(todo)} image(s) to predict, {len(done)} already in '
        f'{args.output}', file=sys.stderr)
  handler = beam_predict.model_handler(
      saved_model, min_batch_size=args.min_batch_size,
      max_batch_size=args.max_batch_size, large_model=args.large_model)
  with beam.Pipeline(options=options) as pipeline:
    beam_predict.build_pipeline(
        pipeline, todo, done, saved_model=saved_model, output=args.output,
        labels=labels, max_pixels=max_pixels, handler=handler)
  index, dead = (_join(args.output, name) for name in (
      beam_predict.INDEX, beam_predict.DEAD_LETTER))
  bad = _count_lines(dead)
  print(f'{len(todo) - bad} predicted, {len(done)} already there, {bad} '
        f'bad file(s); index: {index}; bad files: {dead}')
  return 0


def _join(folder, name):
  """``folder/name`` for local and gs:// folders (no doubled slash)."""
  return folder.rstrip('/') + '/' + name


def _count_lines(path):
  """Non-empty lines of a local or gs:// text file (0 if it is empty)."""
  from pdl_tf.serving import batch_predict  # pylint: disable=g-import-not-at-top
  return sum(1 for line in batch_predict.read_file(path).splitlines()
             if line.strip())


def beam_options(beam_args):
  """Beam's PipelineOptions of the flags pdl-beam-predict passes through.

  Raises:
    UsageError: a flag that no Beam option knows (Beam itself only logs
      that it discards it, and would run on its default runner), or a
      ``--runner`` Beam does not have (with Beam's list of runners).
  """
  # pylint: disable=g-import-not-at-top
  import logging
  from apache_beam.options import pipeline_options
  from apache_beam.runners import runner as runner_lib
  # pylint: enable=g-import-not-at-top
  discarded = []

  class _Discarded(logging.Handler):

    def emit(self, record):
      if record.getMessage().startswith('Discarding unparseable args'):
        discarded.extend(record.args[0] if record.args else [])

  handler = _Discarded()
  logger = logging.getLogger(pipeline_options.__name__)
  logger.addHandler(handler)
  try:
    options = pipeline_options.PipelineOptions(beam_args)
    options.get_all_options()
  finally:
    logger.removeHandler(handler)
  if discarded:
    raise checks.UsageError(
        f'unrecognized arguments: {" ".join(discarded)} (neither '
        "pdl-beam-predict's nor a Beam pipeline option)")
  runner = options.view_as(pipeline_options.StandardOptions).runner
  if runner:
    try:
      runner_lib.create_runner(runner)
    except (ValueError, ImportError) as e:
      raise checks.UsageError(f'--runner {runner}: {e}') from e
  return options


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
