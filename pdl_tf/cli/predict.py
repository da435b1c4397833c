"""pdl-predict: panoptic predictions for image files.

Writes, per image, ``STEM_panoptic.png`` (COCO panoptic id encoding),
``STEM_overlay.png`` (with ``--labels``: names, scores and a legend),
``STEM.json`` (segments with classes and scores) and, with
``--side_by_side``, ``STEM_side_by_side.png``;
see ``pdl_tf.serving.outputs``. Every image is decoded here first, with the
model's own decode (``pdl_tf.data.decoding.image_decode``: upright by
EXIF, at most ``export.max_image_pixels``), so that a bad file is named
with its reason and skipped; the others are still predicted, and the exit
status is 1 if any failed.

Images go to the model ``--batch_size`` at a time (any sizes in one batch:
the SavedModel and TF Serving take a batch of encoded images and return
each result at its own size; TFLite runs them one by one), decoded ahead in
threads while the model runs (``pdl_tf.serving.batch_predict``); a batch
that fails is sent again one image at a time, so only the bad file fails.
Inputs and ``--output`` may be local or any tf.io.gfile path (gs://...),
inputs also globs. A rerun skips the images whose three outputs are all in
``--output`` already (each is written whole or not at all), unless
``--overwrite``.
"""

import glob
import os
import sys

from pdl_tf import run_params
from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')
# Measured on this 2-core CPU (bench/README.md, bench_predict_scale.py).
DEFAULT_BATCH_SIZE = 4


def build_parser():
  parser = common.new_parser(
      'pdl-predict', 'Predict panoptic maps for images with a SavedModel, a '
      'TFLite file or a TF Serving endpoint.')
  parser.add_argument('inputs', nargs='+', help='image files or folders')
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--saved_model', help='exported SavedModel folder (or '
                      'its base folder with numbered versions)')
  source.add_argument('--tflite', help='exported .tflite file')
  source.add_argument('--server', help='TF Serving address, e.g. '
                      'localhost:8501 (REST) or localhost:8500 with --grpc')
  parser.add_argument('--grpc', action='store_true',
                      help='talk gRPC instead of REST to --server')
  parser.add_argument('--model_name', default='panoptic_deeplab',
                      help='model name on the TF Serving endpoint')
  parser.add_argument('--label_divisor', type=int, default=None,
                      help='panoptic id = class * label_divisor + instance '
                           "in the outputs (default: data.label_divisor of "
                           "the export's params.yaml, else 1000); one that "
                           "does not fit the model's ids is refused")
  parser.add_argument('--output', required=True, help='output folder '
                      '(local or a tf.io.gfile path such as gs://...)')
  parser.add_argument('--batch_size', type=int, default=DEFAULT_BATCH_SIZE,
                      help='images per call of the model (any sizes); '
                      f'default {DEFAULT_BATCH_SIZE}, measured on a 2-core '
                      'CPU (bench/README.md)')
  parser.add_argument('--overwrite', action='store_true',
                      help='predict again the images whose outputs are '
                      'already in --output (default: skip them)')
  parser.add_argument('--labels', action='store_true',
                      help='draw class names (and scores for things) on the '
                           'overlay\'s segments and a legend of the classes '
                           'present beside it')
  parser.add_argument('--side_by_side', action='store_true',
                      help='also write STEM_side_by_side.png: the image '
                           'beside its overlay')
  return parser


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def _is_glob(path):
  return any(character in path for character in '*?[')


def _images_in(names):
  return sorted(name for name in names
                if name.lower().endswith(IMAGE_EXTENSIONS))


def _expand(path):
  """The image files one input names: a file, a folder (one level) or a
  glob; local or any tf.io.gfile path (TensorFlow is imported only for a
  remote one)."""
  remote = '://' in path
  if _is_glob(path):
    found = _images_in(_gfile().glob(path) if remote else glob.glob(path))
    if not found:
      raise FileNotFoundError(f'glob {path!r} matches no image files '
                              f'({", ".join(IMAGE_EXTENSIONS)}).')
    return found
  is_dir = _gfile().isdir(path) if remote else os.path.isdir(path)
  if is_dir:
    names = ([name.rstrip('/') for name in _gfile().listdir(path)]
             if remote else os.listdir(path))
    join = ((lambda name: path.rstrip('/') + '/' + name) if remote
            else (lambda name: os.path.join(path, name)))
    found = [join(name) for name in _images_in(names)]
    if not found:
      raise FileNotFoundError(f'folder {path!r} holds no image files '
                              f'({", ".join(IMAGE_EXTENSIONS)}).')
    return found
  if (_gfile().exists(path) if remote else os.path.isfile(path)):
    return [path]
  raise FileNotFoundError(f'input {path!r} does not exist.')


def list_images(inputs):
  """Image files named by ``inputs`` (files, globs, or folders searched one
  level; local or tf.io.gfile paths), sorted per folder or glob, each once
  (a file named twice, e.g. alone and in its folder, is predicted once).

  Raises:
    FileNotFoundError: an input does not exist or a folder or glob has no
      images.
  """
  files = [found for path in inputs for found in _expand(path)]
  seen, unique = set(), []
  for path in files:
    key = path if '://' in path else os.path.realpath(path)
    if key not in seen:
      seen.add(key)
      unique.append(path)
  return unique


def _model_path(args):
  """The SavedModel version folder or .tflite file, None for a server."""
  if args.saved_model:
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf.serving.backends import find_saved_model
    return find_saved_model(checks.existing_dir(args.saved_model,
                                                '--saved_model'))
  return args.tflite


def _export_params(model_path):
  """The export's params.yaml beside a model, as a dict ({} if none: a
  server, a model copied without it, or a remote one that cannot be
  read)."""
  try:
    return run_params.read_params(model_path) or {}
  except OSError:
    if '://' in model_path:
      return {}
    raise


def _labels(args, params):
  """(label_divisor, class names by index or None, dataset category ids by
  index or None) for the JSON files: --label_divisor, else the export's
  params.yaml, else 1000; the classes the export's params.yaml lists
  (``data.class_names``, ``data.category_ids``, taken from the training
  data), else the fixed classes of its dataset (synthetic, Cityscapes,
  TFDS COCO); never guessed from a class count."""
  from pdl_tf.data.catalog import class_names  # pylint: disable=g-import-not-at-top
  if not params:
    return ((1000 if args.label_divisor is None else args.label_divisor),
            None, None)
  data, count = params['data'], params['model']['num_classes']
  names, ids = data.get('class_names') or None, data.get(
      'category_ids') or None
  if names is None:
    names = class_names.class_names(data['dataset'])
    ids = None
  if names is not None and len(names) != count:
    names = None  # a dataset relabelled for this model: ids only
  if ids is not None and len(ids) != count:
    ids = None
  divisor = (int(data['label_divisor']) if args.label_divisor is None
             else args.label_divisor)
  return divisor, names, ids


def _colors(params):
  """Class colours for the overlays: the export's ``data.class_colors``,
  else those of its fixed dataset, else None (a fixed palette)."""
  from pdl_tf.data.catalog import class_names  # pylint: disable=g-import-not-at-top
  if not params:
    return None
  data = params['data']
  colors = data.get('class_colors') or class_names.class_colors(
      data['dataset'])
  return colors if colors and len(colors) == params['model'][
      'num_classes'] else None


def _open_backend(args):
  # pylint: disable=g-import-not-at-top
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  if args.saved_model:
    return backends.SavedModelBackend(args.saved_model)
  if args.tflite:
    return backends.TFLiteBackend(args.tflite)
  if args.grpc:
    return backends.GrpcBackend(args.server, args.model_name)
  server = args.server if '://' in args.server else f'http://{args.server}'
  return backends.RestBackend(f'{server}/v1/models/{args.model_name}')


def output_stems(files):
  """{path: the name its outputs start with}: the file name without its
  extension, or with it ('good.jpg' -> 'good_jpg') where two inputs share a
  stem, then a counter ('x_png_2') where they share the whole name, so no
  output overwrites another."""
  stems, taken = {}, set()
  names = [os.path.splitext(os.path.basename(path)) for path in files]
  counts = {}
  for stem, _ in names:
    counts[stem] = counts.get(stem, 0) + 1
  for path, (stem, extension) in zip(files, names):
    name = stem if counts[stem] == 1 else f'{stem}_{extension.lstrip(".")}'
    unique, index = name, 1
    while unique in taken:
      index += 1
      unique = f'{name}_{index}'
    taken.add(unique)
    stems[path] = unique
  return stems


def check(args):
  """Inputs, model and output folder (no TensorFlow, nothing written);
  returns the image files."""
  if args.batch_size < 1:
    raise checks.UsageError(f'--batch_size must be >= 1, got '
                            f'{args.batch_size}.')
  if args.label_divisor is not None and args.label_divisor < 1:
    raise checks.UsageError(f'--label_divisor must be >= 1, got '
                            f'{args.label_divisor}.')
  files = list_images(args.inputs)
  if args.tflite:
    checks.tflite_file(args.tflite, '--tflite')
  if args.server is not None:
    checks.server_address(args.server, '--server', grpc=args.grpc)
  model_path = _model_path(args)
  exported = _export_params(model_path).get('data', {}).get('label_divisor')
  if args.label_divisor is not None and exported is not None and (
      args.label_divisor != int(exported)):
    raise checks.UsageError(
        f'--label_divisor {args.label_divisor} does not fit the export: its '
        f'panoptic ids are class x {exported} + instance (data.label_divisor '
        f'in {run_params.params_path(model_path)}); leave --label_divisor '
        'out.')
  checks.output_dir(args.output, '--output')
  return files


def _to_predict(files, stems, args):
  """The files whose outputs are not all in --output yet (all of them with
  --overwrite); says how many were skipped."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import outputs
  if args.overwrite:
    return files
  existing = outputs.existing_names(args.output)
  todo = [path for path in files
          if not outputs.is_complete(stems[path], args.output, existing)]
  if len(todo) < len(files):
    print(f'skipped {len(files) - len(todo)} image(s) already predicted in '
          f'{args.output} (--overwrite predicts them again)')
  return todo


def main(args):
  files = check(args)
  # pylint: disable=g-import-not-at-top
  import tqdm
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.serving import backends
  from pdl_tf.serving import batch_predict
  from pdl_tf.serving import outputs
  # pylint: enable=g-import-not-at-top
  backend = _open_backend(args)
  params = _export_params(getattr(backend, 'path', None))
  divisor, names, category_ids = _labels(args, params)
  colors = _colors(params)
  max_pixels = int(params.get('export', {}).get(
      'max_image_pixels', image_decode.MAX_IMAGE_PIXELS))
  if hasattr(backend, 'max_image_pixels'):  # TFLite: decoded here
    backend.max_image_pixels = max_pixels
  stems = output_stems(files)
  todo = _to_predict(files, stems, args)
  failed, done = [], 0
  progress = tqdm.tqdm(total=len(todo), unit='image', disable=len(todo) < 2)
  items = batch_predict.decoded(todo, max_pixels,
                                ahead=2 * args.batch_size + 2)
  for batch in batch_predict.batched(items, args.batch_size):
    try:
      if batch[0].error is None:
        batch_predict.predict_items(backend, batch)
      for item in batch:
        if item.error is None:
          outputs.check_label_divisor(item.result, divisor)
    except (backends.ServerUnreachable,  # once, not once per image
            outputs.LabelDivisorMismatch) as e:
      progress.close()
      print(f'pdl-predict: error: {e}; stopped at {batch[0].path} '
            f'({done} of {len(todo)} image(s) predicted)', file=sys.stderr)
      return 2
    for item in batch:
      progress.update(1)
      if item.error is not None:
        failed.append(item.path)
        tqdm.tqdm.write(batch_predict.failure_line(item.path, item.error),
                        file=sys.stderr)
        continue
      record = outputs.write_prediction(
          item.image, item.result, stems[item.path], args.output,
          label_divisor=divisor, class_names=names,
          category_ids=category_ids, class_colors=colors,
          labels=args.labels, side_by_side=args.side_by_side)
      done += 1
      if len(todo) == 1:
        print(f'{item.path}: {len(record["segments_info"])} segments')
  progress.close()
  print(f'wrote {done} prediction(s) to {args.output}' + (
      f'; {len(failed)} of {len(todo)} image(s) failed: '
      f'{", ".join(os.path.basename(p) for p in failed)}' if failed else ''))
  return 1 if failed else 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
