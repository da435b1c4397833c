"""The checks of a deeplab2 import that need no TensorFlow (pdl-import runs
them before TensorFlow starts; ``importers.deeplab2`` runs them again)."""

import os

from pdl_tf.config import ConfigError
from pdl_tf.model.common import names


def check_experiment(config, experiment=None):
  """Raises ConfigError unless ``config`` builds a deeplab2 network."""
  model = config.model
  name = f'experiment {experiment!r}' if experiment else 'the config'
  if model.backbone.type not in names.DEEPLAB2_BACKBONES:
    raise ConfigError(
        f'{name} is not a deeplab2 one: model.backbone.type is '
        f'{model.backbone.type!r}, expected one of '
        f'{names.DEEPLAB2_BACKBONES} (e.g. --experiment '
        'cityscapes_deeplab2_mnv3_small_os16).')
  if model.input_normalization != 'inception':
    raise ConfigError(
        f"{name}: model.input_normalization must be 'inception' (x / 127.5 "
        f'- 1, as deeplab2 trains), got {model.input_normalization!r}.')


def check_model_dir(model_dir):
  """Raises FileExistsError unless ``model_dir`` is new or an empty folder."""
  if os.path.exists(model_dir) and (not os.path.isdir(model_dir) or
                                    os.listdir(model_dir)):
    raise FileExistsError(f'--model_dir {model_dir!r} already exists and is '
                          'not empty; nothing was written.')


def check_checkpoint_path(path):
  """Raises FileNotFoundError unless ``path`` is a folder or a checkpoint
  prefix (its ``.index`` file exists); the folder's content is read later."""
  if not os.path.isdir(path) and not os.path.isfile(path + '.index'):
    raise FileNotFoundError(
        f'no checkpoint at {path!r} (expected {path}.index and '
        f'{path}.data-*; a folder or a ckpt-N prefix).')
