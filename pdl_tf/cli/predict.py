"""pdl-predict: panoptic predictions for image files.

Writes, per image, ``STEM_panoptic.png`` (COCO panoptic id encoding),
``STEM_overlay.png`` and ``STEM.json`` (segments with classes and scores);
see ``pdl_tf.serving.outputs``.
"""

import io
import os
import sys

from pdl_tf.cli import checks
from pdl_tf.cli import common

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


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
                      help="default: data.label_divisor of the export's "
                           'params.yaml, else 1000')
  parser.add_argument('--output', required=True, help='output folder')
  return parser


def list_images(inputs):
  """Image files named by ``inputs`` (files, or folders searched one level),
  sorted per folder.

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
  return files


def _export_params(backend):
  """The params.yaml written beside the model by pdl-export, as a dict, or
  None (a TF Serving endpoint, or a model exported elsewhere)."""
  model_path = getattr(backend, 'path', None)
  if model_path:
    folder = (model_path if os.path.isdir(model_path)
              else os.path.dirname(model_path))
    params = os.path.join(folder, 'params.yaml')
    if os.path.isfile(params):
      import yaml  # pylint: disable=g-import-not-at-top
      with open(params, encoding='utf-8') as f:
        return yaml.safe_load(f)
  return None


def _labels(args, params):
  """(label_divisor, class names by index or None) for the JSON files:
  --label_divisor, else the export's params.yaml, else 1000."""
  from pdl_tf.data import class_names  # pylint: disable=g-import-not-at-top
  if not params:
    return (1000 if args.label_divisor is None else args.label_divisor), None
  data = params['data']
  names = class_names.class_names(data['dataset'], data['eval']['path'])
  if names is not None and len(names) != params['model']['num_classes']:
    names = None  # a dataset relabelled for this model: ids only
  divisor = (int(data['label_divisor']) if args.label_divisor is None
             else args.label_divisor)
  return divisor, names


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


def check(args):
  """Inputs, model and output folder (no TensorFlow, nothing written);
  returns the image files."""
  files = list_images(args.inputs)
  if args.saved_model:
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf.serving.backends import find_saved_model
    find_saved_model(checks.existing_dir(args.saved_model, '--saved_model'))
  if args.tflite:
    checks.existing_file(args.tflite, '--tflite')
  checks.output_dir(args.output, '--output')
  return files


def main(args):
  files = check(args)
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  import tqdm
  from PIL import Image
  from pdl_tf.serving import backends
  from pdl_tf.serving import outputs
  # pylint: enable=g-import-not-at-top
  backend = _open_backend(args)
  divisor, names = _labels(args, _export_params(backend))
  for path in tqdm.tqdm(files, unit='image', disable=len(files) < 2):
    with open(path, 'rb') as f:
      contents = f.read()
    try:
      result = backend.predict(contents)
    except (backends.ServingError, tf.errors.InvalidArgumentError) as e:
      message = getattr(e, 'message', None) or str(e)
      print(f'pdl-predict: error: {path}: {message.strip()}',
            file=sys.stderr)
      return 1
    with Image.open(io.BytesIO(contents)) as image:
      rgb = np.asarray(image.convert('RGB'))
    stem = os.path.splitext(os.path.basename(path))[0]
    record = outputs.write_prediction(rgb, result, stem, args.output,
                                      label_divisor=divisor,
                                      class_names=names)
    if len(files) == 1:
      print(f'{path}: {len(record["segments_info"])} segments')
  print(f'wrote {len(files)} prediction(s) to {args.output}')
  return 0


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
