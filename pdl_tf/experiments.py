"""Experiment names -> YAML files shipped in ``configs/``.

The YAML files live in the repository's top-level ``configs/`` folder, which
is installed inside the package as ``pdl_tf/configs`` so that
``--experiment NAME`` works after a plain ``pip install .`` from any folder.
"""

import importlib.resources

from pdl_tf.config import ConfigError


def _config_dir():
  return importlib.resources.files('pdl_tf') / 'configs'


def list_experiments():
  """Sorted names of the shipped experiments."""
  return sorted(entry.name[:-len('.yaml')] for entry in _config_dir().iterdir()
                if entry.name.endswith('.yaml'))


def experiment_path(name):
  """Path of the YAML file of experiment ``name``.

  Raises:
    ConfigError: unknown name; the message lists the known ones.
  """
  path = _config_dir() / f'{name}.yaml'
  if not path.is_file():
    raise ConfigError(f'unknown experiment {name!r}; known experiments: '
                      f'{", ".join(list_experiments())}.')
  return str(path)
