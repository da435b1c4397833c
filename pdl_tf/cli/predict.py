"""pdl-predict: panoptic predictions for image files.

Writes, per image, ``STEM_panoptic.png`` (COCO panoptic id encoding),
``STEM_overlay.png`` (with ``--labels``: names, scores and a legend),
``STEM.json`` (segments with classes and scores) and, with
``--side_by_side``, ``STEM_side_by_side.png``;
see ``pdl_tf.serving.outputs``. Every image is decoded here first, with the
model's own decode (``pdl_tf.data.image_decode``: upright by EXIF, at most
``export.max_image_pixels``), so that a bad file is named with its reason
and skipped; the others are still predicted, and the exit status is 1 if
any failed.
"""

import os
import sys

from pdl_tf.cli import checks
from pdl_tf.cli import common

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')


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
  parser.add_argument('--output', required=True, help='output folder')
  parser.add_argument('--labels', action='store_true',
                      help='draw class names (and scores for things) on the '
                           'overlay\'s segments and a legend of the classes '
                           'present beside it')
  parser.add_argument('--side_by_side', action='store_true',
                      help='also write STEM_side_by_side.png: the image '
                           'beside its overlay')
  return parser


def list_images(inputs):
  """Image files named by ``inputs`` (files, or folders searched one level),
  sorted per folder, each once (a file named twice, e.g. alone and in its
  folder, is predicted once).

  Raises:
    FileNotFoundError: an input does not exist or a folder has no images.
  """
  files = []
  for path in inputs:
    if os.path.isdir(path):
      found = sorted(os.path.join(path, name) for name in os.listdir(path)
                     if name.lower().endswith(IMAGE_EXTENSIONS))
      if not found:
        raise FileNotFoundError(f'folder {path!r} holds no image files '
                                f'({", ".join(IMAGE_EXTENSIONS)}).')
      files.extend(found)
    elif os.path.isfile(path):
      files.append(path)
    else:
      raise FileNotFoundError(f'input {path!r} does not exist.')
  seen, unique = set(), []
  for path in files:
    if os.path.realpath(path) not in seen:
      seen.add(os.path.realpath(path))
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


def _params_file(model_path):
  """params.yaml beside a local model; None for a server."""
  if not model_path:
    return None
  folder = (model_path if os.path.isdir(model_path)
            else os.path.dirname(model_path))
  return os.path.join(folder, 'params.yaml')


def _export_params(model_path):
  """The export's params.yaml beside a local model, as a dict ({} if none:
  a server, or a model copied without it)."""
  params = _params_file(model_path)
  if not params or not os.path.isfile(params):
    return {}
  import yaml  # pylint: disable=g-import-not-at-top
  with open(params, encoding='utf-8') as f:
    return yaml.safe_load(f) or {}


def _labels(args, params):
  """(label_divisor, class names by index or None, dataset category ids by
  index or None) for the JSON files: --label_divisor, else the export's
  params.yaml, else 1000; the classes the export's params.yaml lists
  (``data.class_names``, ``data.category_ids``, taken from the training
  data), else the fixed classes of its dataset (synthetic, Cityscapes,
  TFDS COCO); never guessed from a class count."""
  from pdl_tf.data import class_names  # pylint: disable=g-import-not-at-top
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
  from pdl_tf.data import class_names  # pylint: disable=g-import-not-at-top
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


def _predict_one(path, backend, max_pixels):
  """(upright image, backend result) of one file.

  Raises:
    OSError (unreadable file), image_decode.ImageDecodeError (bad image,
    reason first), ValueError (outputs not in the image's frame), the
    backend's errors (ServingError, tf.errors.OpError).
  """
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data import image_decode
  # pylint: enable=g-import-not-at-top
  with open(path, 'rb') as f:
    contents = f.read()
  image, _ = image_decode.decode_bytes(contents, path, max_pixels)
  result = backend.predict(contents)
  if result['panoptic'].shape != image.shape[:2]:
    raise ValueError(
        f'model output: {path}: the maps are {result["panoptic"].shape} '
        f'but the upright image is {image.shape[:2]}; was the model '
        'exported before EXIF orientation support? Export it again.')
  return image, result


def _failure_line(path, error):
  """One line, the reason first, for a file that could not be predicted."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.data import image_decode
  # pylint: enable=g-import-not-at-top
  if isinstance(error, image_decode.ImageDecodeError):
    return str(error)
  if isinstance(error, tf.errors.OpError):
    return f'model error: {path}: {image_decode.graph_message(error)}'
  if isinstance(error, OSError):
    return f'unreadable: {path}: {error.strerror or error}'
  first_line = str(error).strip().splitlines()[0]
  if isinstance(error, ValueError):  # already 'model output: PATH: ...'
    return first_line
  return f'server error: {path}: {first_line}'


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
        f'in {_params_file(model_path)}); leave --label_divisor out.')
  checks.output_dir(args.output, '--output')
  return files


def main(args):
  files = check(args)
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import tqdm
  from pdl_tf.data import image_decode
  from pdl_tf.serving import backends
  from pdl_tf.serving import outputs
  # pylint: enable=g-import-not-at-top
  backend = _open_backend(args)
  params = _export_params(getattr(backend, 'path', None))
  divisor, names, category_ids = _labels(args, params)
  max_pixels = int(params.get('export', {}).get(
      'max_image_pixels', image_decode.MAX_IMAGE_PIXELS))
  if hasattr(backend, 'max_image_pixels'):  # TFLite: decoded here
    backend.max_image_pixels = max_pixels
  failed = []
  stems = output_stems(files)
  for index, path in enumerate(tqdm.tqdm(files, unit='image',
                                         disable=len(files) < 2)):
    try:
      image, result = _predict_one(path, backend, max_pixels)
      outputs.check_label_divisor(result, divisor)
    except (backends.ServerUnreachable,  # once, not once per image
            outputs.LabelDivisorMismatch) as e:
      tqdm.tqdm.write(f'pdl-predict: error: {e}; stopped at {path} '
                      f'({index - len(failed)} of {len(files)} image(s) '
                      'predicted)', file=sys.stderr)
      return 2
    except (OSError, ValueError, backends.ServingError,
            tf.errors.OpError) as e:
      failed.append(path)
      tqdm.tqdm.write(_failure_line(path, e), file=sys.stderr)
      continue
    record = outputs.write_prediction(image, result, stems[path], args.output,
                                      label_divisor=divisor,
                                      class_names=names,
                                      category_ids=category_ids,
                                      class_colors=_colors(params),
                                      labels=args.labels,
                                      side_by_side=args.side_by_side)
    if len(files) == 1:
      print(f'{path}: {len(record["segments_info"])} segments')
  done = len(files) - len(failed)
  print(f'wrote {done} prediction(s) to {args.output}' + (
      f'; {len(failed)} of {len(files)} image(s) failed: '
      f'{", ".join(os.path.basename(p) for p in failed)}' if failed else ''))
  return 1 if failed else 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
