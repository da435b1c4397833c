"""A pdl_tf run folder: what ``pdl-train --model_dir`` or ``pdl-import``
writes (``params.yaml`` and checkpoints), read back as a config and a
restored network.

Sits above ``config_io`` and ``model.factory`` (it reads the YAML, then asks
the factory for the network), so that the model package never reaches up
for the config loader.

Example:
  >>> from pdl_tf import run_folder
  >>> model = run_folder.load_model('runs/demo')
  >>> outputs = model(images)   # float RGB [B, H, W, 3] in [0, 255]
"""

import os

from pdl_tf import config_io
from pdl_tf import run_params
from pdl_tf.model import factory


def load_config(model_dir):
  """The ExperimentConfig of a run folder (its ``params.yaml``).

  Raises:
    FileNotFoundError: no params.yaml there.
    ConfigError: params.yaml is not a valid experiment config.
  """
  params = os.path.join(model_dir, run_params.PARAMS_FILE)
  if not os.path.isfile(params):
    raise FileNotFoundError(f'{params!r} does not exist: {model_dir!r} is '
                            'not a pdl_tf model folder.')
  return config_io.load_config(config_files=[params])


def load_model(model_dir, input_size=None):
  """The restored network of a run folder (``pdl-train``'s ``--model_dir``,
  or one written by ``pdl-import``).

  Args:
    model_dir: a folder with ``params.yaml`` and checkpoints.
    input_size: optional (height, width) of the build pass.

  Returns:
    The PanopticDeepLab of ``model_dir/params.yaml`` with the weights of
    the folder's latest checkpoint.

  Raises:
    FileNotFoundError: no params.yaml or no checkpoint there.
    ConfigError: params.yaml is not a valid experiment config, or the
      checkpoint does not match its network.
  """
  return factory.restore_model(load_config(model_dir), model_dir,
                               input_size)
