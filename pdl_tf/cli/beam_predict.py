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
  # pylint: disable=g-import-not-at-top
  from apache_beam.options import pipeline_options
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
  options = pipeline_options.PipelineOptions(args.beam_args)
  with beam.Pipeline(options=options) as pipeline:
    beam_predict.build_pipeline(
        pipeline, todo, done, saved_model=saved_model, output=args.output,
        labels=labels, max_pixels=max_pixels, handler=handler)
  print(f'index: {args.output}/{beam_predict.INDEX}; bad files: '
        f'{args.output}/{beam_predict.DEAD_LETTER}')
  return 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
