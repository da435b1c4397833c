"""pdl-export: export a checkpoint to SavedModel and/or TFLite.

Layout of ``--output DIR`` (DIR is TF Serving's model base path):
  DIR/<version>/                 SavedModel (+ params.yaml)
  DIR/panoptic_deeplab_<q>.tflite  one per --quantization (+ DIR/params.yaml)
"""

import os

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common

FORMATS = ('saved_model', 'tflite', 'both')
QUANTIZATIONS = ('float32', 'float16', 'int8')


def build_parser():
  parser = common.new_parser(
      'pdl-export', 'Export network + XLA panoptic merge to SavedModel / '
      'TFLite.')
  common.add_config_flags(parser)
  parser.add_argument('--checkpoint', required=True,
                      help='checkpoint prefix or model directory')
  parser.add_argument('--output', required=True,
                      help='export folder (TF Serving model base path)')
  parser.add_argument('--format', choices=FORMATS, default='saved_model',
                      help='saved_model: OUTPUT/VERSION/ for TF Serving; '
                           'tflite: OUTPUT/panoptic_deeplab_Q.tflite per '
                           '--quantization; both: the two')
  parser.add_argument('--version', type=int, default=1,
                      help='SavedModel version folder under --output')
  parser.add_argument('--no_xla', action='store_true',
                      help='export the merge without XLA must-compile '
                           '(for TF Serving builds without the XLA JIT)')
  parser.add_argument('--include_logits', action='store_true',
                      help='SavedModel also returns raw semantic logits')
  parser.add_argument('--quantization', choices=QUANTIZATIONS,
                      action='append', default=None,
                      help='TFLite variant; may be repeated (default: '
                           'float32)')
  parser.add_argument('--calibration_images', type=int, default=32,
                      help='int8: training-split images used for calibration')
  return parser


def tflite_path(output_dir, quantization):
  return os.path.join(output_dir, f'panoptic_deeplab_{quantization}.tflite')


def calibration_images(config, count):
  """(image [1, h, w, 3], image_sizes [1, 2]) pairs: the first ``count``
  training-split images, unaugmented, fitted to the export input size as
  at serving time (never the eval split that measures the int8 file)."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf import normalization
  from pdl_tf.data import sources
  from pdl_tf.export import image_fit
  # pylint: enable=g-import-not-at-top
  pad_rgb = normalization.pad_rgb(config.model.input_normalization)
  _, dataset = sources.open_split(config.data, config.data.train,
                                  'data.train')
  samples = []
  for image, _, _ in dataset.take(count):
    fitted, valid = image_fit.fit_image(image, config.export.input_size,
                                        pad_rgb)
    samples.append((fitted[None].numpy(), valid[None].numpy()))
  return samples


def _quiet_convert(*args):
  """tflite.convert(*args) without the converter's known lines on stderr
  (native_stderr.CONVERTER_NOISE) and TensorFlow's deprecation warning of
  the tf.lite.Interpreter its calibration uses; everything with
  --verbose."""
  # pylint: disable=g-import-not-at-top
  import warnings
  from pdl_tf.export import tflite
  from pdl_tf.serving import native_stderr
  # pylint: enable=g-import-not-at-top
  with warnings.catch_warnings(), native_stderr.drop_native_lines(
      native_stderr.CONVERTER_NOISE):
    if os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') != '0':
      warnings.filterwarnings('ignore', message=r'(?s).*tf\.lite\.Interpreter '
                              'is deprecated')
    return tflite.convert(*args)


def check(args):
  """The config, checkpoint and outputs (no TensorFlow, nothing written);
  returns (config, quantizations)."""
  config = common.load_config_from_args(args, checkpoint=args.checkpoint)
  if args.no_xla:
    config.override({'export': {'jit_compile_merge': False}})
  checks.checkpoint(args.checkpoint, '--checkpoint')
  checks.known_classes(config)
  checks.backbone_checkpoint(config)
  checks.output_dir(args.output, '--output')
  if args.version < 1:
    raise checks.UsageError(f'--version must be >= 1 (TF Serving loads '
                            f'numbered folders), got {args.version}.')
  if args.format != 'tflite':
    version = os.path.join(args.output, str(args.version))
    if os.path.exists(version):
      raise FileExistsError(f'{version!r} already exists; pass another '
                            '--version or remove it. Nothing was written.')
  quantizations = args.quantization or ['float32']
  for quantization in quantizations if args.format != 'saved_model' else ():
    if os.path.exists(tflite_path(args.output, quantization)):
      raise FileExistsError(f'{tflite_path(args.output, quantization)!r} '
                            'already exists; nothing was overwritten.')
  if args.format != 'saved_model' and 'int8' in quantizations:
    if args.calibration_images < 1:
      raise checks.UsageError(f'--calibration_images must be >= 1 for int8, '
                              f'got {args.calibration_images}.')
    # Calibration reads the images alone: any dataset's will do.
    checks.data_split(config, 'data.train', classes=False)
  return config, quantizations


def main(args):
  config, quantizations = check(args)
  # pylint: disable=g-import-not-at-top
  from pdl_tf import atomic_write
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  input_size = tuple(config.export.input_size)
  model = factory.restore_model(config, args.checkpoint, input_size)
  if checks.is_remote(args.output):  # no atomic rename on object stores
    for line in _export(args, config, quantizations, model, args.output):
      print(line)
    return 0
  # Everything is written into a hidden folder inside --output and moved
  # into place once all of it exists: an export stopped by Ctrl-C,
  # SIGTERM or an error leaves nothing, and a rerun just works.
  os.makedirs(args.output, exist_ok=True)
  staging = atomic_write.temporary_name(os.path.join(args.output, 'export'))
  try:
    lines = _export(args, config, quantizations, model, staging)
    for name in sorted(os.listdir(staging)):
      os.replace(os.path.join(staging, name), os.path.join(args.output, name))
  finally:
    atomic_write.remove(staging)
  for line in lines:
    print(line.replace(staging, args.output))
  return 0


def _export(args, config, quantizations, model, folder):
  """Writes the SavedModel and / or TFLite files of ``args`` to ``folder``;
  returns the lines that say what was written."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf import atomic_write
  from pdl_tf import config_io
  from pdl_tf.export import saved_model
  from pdl_tf.export import serving_module
  from pdl_tf.model import factory
  # pylint: enable=g-import-not-at-top
  input_size = tuple(config.export.input_size)
  merge_arguments = factory.merge_arguments(config)
  lines = []
  if args.format in ('saved_model', 'both'):
    module = serving_module.PanopticServingModule(
        model, input_size=input_size, merge_arguments=merge_arguments,
        jit_compile_merge=config.export.jit_compile_merge,
        include_logits=args.include_logits,
        max_image_pixels=config.export.max_image_pixels)
    path = saved_model.export_saved_model(module, folder, args.version,
                                          config)
    lines.append(f'SavedModel written to {path} (merge XLA: '
                 f'{config.export.jit_compile_merge})')
  if args.format in ('tflite', 'both'):
    for quantization in quantizations:
      samples = (calibration_images(config, args.calibration_images)
                 if quantization == 'int8' else None)
      content = _quiet_convert(model, input_size, merge_arguments,
                               quantization, samples)
      os.makedirs(folder, exist_ok=True)
      with atomic_write.atomic_path(tflite_path(folder,
                                                quantization)) as temporary:
        with open(temporary, 'wb') as f:
          f.write(content)
      lines.append(f'TFLite ({quantization}) written to '
                   f'{tflite_path(folder, quantization)} '
                   f'({len(content) / 2**20:.1f} MiB)')
    config_io.save_config(config, folder)
  return lines


entry_point = common.entry_point_for(main, build_parser)


if __name__ == '__main__':
  entry_point()
