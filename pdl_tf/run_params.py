"""Where the params.yaml of a run or an export is, and what it says.

``pdl-train`` writes ``params.yaml`` in its ``--model_dir`` beside the
checkpoints, ``pdl-import`` in the folder it fills, and ``pdl-export``
beside the SavedModel and the TFLite file. A checkpoint prefix, a run
folder, a model folder or a model file finds it in its own folder.

Local paths need only the standard library and PyYAML, so the commands'
checks use this before TensorFlow starts; remote paths (``gs://...``) are
read through ``tf.io.gfile``, imported only for them.
"""

import os
import posixpath

import yaml

PARAMS_FILE = 'params.yaml'


def _remote(path):
  return '://' in path


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def params_path(path):
  """The params.yaml that belongs to ``path`` (str), or None for no path.

  Args:
    path: a folder (run, export, SavedModel version), a checkpoint prefix
      or a model file, local or remote.

  Returns:
    ``path/params.yaml`` for a folder, else ``dirname(path)/params.yaml``,
    whether it exists or not.
  """
  if not path:
    return None
  if _remote(path):
    folder = path.rstrip('/')
    if not _gfile().isdir(folder):
      folder = posixpath.dirname(folder)
    return f'{folder}/{PARAMS_FILE}'
  folder = path if os.path.isdir(path) else os.path.dirname(path)
  return os.path.join(folder, PARAMS_FILE)


def existing_params_path(path, local_only=False):
  """``params_path(path)`` if that file exists, else None (also for a
  remote path when ``local_only``: checks before TensorFlow starts)."""
  if not path or (local_only and _remote(path)):
    return None
  file = params_path(path)
  exists = _gfile().exists if _remote(file) else os.path.isfile
  return file if exists(file) else None


def read_params(path):
  """The params.yaml that belongs to ``path`` as a dict; None if there is
  none.

  Raises:
    OSError: it exists but cannot be read.
    yaml.YAMLError: it is not YAML.
  """
  file = existing_params_path(path)
  if file is None:
    return None
  if _remote(file):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      with _gfile().GFile(file) as f:
        text = f.read()
    except tf.errors.OpError as e:
      raise OSError(f'{file}: {e.message}') from e
  else:
    with open(file, encoding='utf-8') as f:
      text = f.read()
  return yaml.safe_load(text) or {}
