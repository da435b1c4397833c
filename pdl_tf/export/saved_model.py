"""Writes the serving module as a SavedModel laid out for TF Serving."""

import os

import tensorflow as tf

from pdl_tf import atomic_write
from pdl_tf import config_io
from pdl_tf.export import serving_module


def version_dir(output_dir, version):
  """``output_dir/<version>``, the folder TF Serving loads.

  Raises:
    FileExistsError: that version already exists (nothing is overwritten).
    ValueError: version < 1.
  """
  if version < 1:
    raise ValueError(f'version must be >= 1 (TF Serving loads numbered '
                     f'folders), got {version}.')
  path = os.path.join(output_dir, str(version))
  if tf.io.gfile.exists(path):
    raise FileExistsError(
        f'{path!r} already exists; pass another --version or remove it. '
        'Nothing was overwritten.')
  return path


def export_saved_model(module, output_dir, version=1, config=None):
  """Saves ``module`` (a PanopticServingModule) to ``output_dir/<version>``.

  Args:
    module: serving_module.PanopticServingModule.
    output_dir: the model base path TF Serving is pointed at.
    version: the numbered sub-folder to write.
    config: optional ExperimentConfig, written beside the SavedModel as
      ``params.yaml``.

  Returns:
    The path of the written version folder. It is written beside under a
    temporary name and renamed when complete (``atomic_write``): an
    interrupted export leaves no version folder.
  """
  path = version_dir(output_dir, version)
  options = tf.saved_model.SaveOptions(function_aliases={
      'serve_bytes': module.serve_bytes,
      serving_module.SERVE_IMAGES: module.serve_images})
  tf.io.gfile.makedirs(output_dir)
  # Written whole or not at all: a version folder TF Serving could load
  # half-written, or that a rerun would refuse, never appears.
  with atomic_write.atomic_path(path) as temporary:
    tf.saved_model.save(module, temporary, signatures=module.signatures(),
                        options=options)
    if config is not None:
      config_io.save_config(config, temporary)
  return path
