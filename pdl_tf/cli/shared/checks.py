"""Checks of the commands' arguments that run before TensorFlow starts.

Each function checks one kind of argument with the file system alone
(``os.path``), raises ``FileNotFoundError`` / ``FileExistsError`` /
``ConfigError`` with one line naming the flag or config key and the path,
and writes nothing. Paths with a scheme (``gs://...``) are left to the
TensorFlow code that reads them. The library functions that later open the
same paths keep their own checks: these only make the common mistakes fail
in a fraction of a second instead of after TensorFlow and the model load.

Import nothing heavy here (no TensorFlow, numpy or pdl_tf module that
imports them): ``tests/test_cli.py`` runs every command with bad arguments
and fails if TensorFlow was imported.
"""

import os
import urllib.parse

from pdl_tf.config import ConfigError
from pdl_tf.data.catalog import dataset_classes
from pdl_tf.data.formats import layouts
from pdl_tf.data.catalog import names as data_names


class UsageError(ValueError):
  """An argument value is out of range or contradicts another."""


def is_remote(path):
  """True for a URL-like path (``gs://``, ``s3://``...) that os.path cannot
  check."""
  return '://' in str(path)


def existing_file(path, flag):
  """Raises FileNotFoundError unless ``path`` is a file."""
  if is_remote(path):
    return path
  if os.path.isdir(path):
    raise FileNotFoundError(f'{flag} {path!r} is a folder, not a file.')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{flag} {path!r} does not exist.')
  return path


def existing_dir(path, flag):
  """Raises FileNotFoundError unless ``path`` is a folder."""
  if is_remote(path):
    return path
  if not path or not os.path.isdir(path):
    what = 'is a file, not a folder' if os.path.isfile(path) else (
        'does not exist')
    raise FileNotFoundError(f'{flag} {path!r} {what}.')
  return path


def output_dir(path, flag):
  """Raises FileExistsError if ``path`` exists and is not a folder, or
  cannot be created because a folder above it is a file (a new or existing
  folder is fine; it is created later, by the work)."""
  if not path or is_remote(path):
    return path
  bare = path.rstrip(os.sep) or path  # 'afile/' names the file 'afile'
  if os.path.lexists(bare) and not os.path.isdir(bare):
    what = ('is a file, not a folder' if os.path.exists(bare) else
            'is a broken link, not a folder')
    raise FileExistsError(f'{flag} {path!r} {what}; name a folder (it is '
                          'created if missing).')
  parent = os.path.dirname(os.path.abspath(bare))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise FileExistsError(f'{flag} {path!r} cannot be created: {parent!r} '
                          'is a file, not a folder.')
  return path


def tflite_file(path, flag):
  """Raises FileNotFoundError unless ``path`` is a file, UsageError unless
  it is a TFLite flatbuffer (its bytes 4-8 are the file identifier
  'TFL3')."""
  existing_file(path, flag)
  if is_remote(path):
    return path
  with open(path, 'rb') as f:
    header = f.read(8)
  if header[4:8] != b'TFL3':
    raise UsageError(f'{flag} {path!r} is not a TFLite model (no '
                     "'TFL3' file identifier); pass a .tflite file written "
                     'by pdl-export.')
  return path


# gRPC name schemes grpc.insecure_channel resolves itself (unix sockets,
# DNS, literal addresses); a target with one is passed on as it is.
GRPC_SCHEMES = ('unix:', 'unix-abstract:', 'dns:', 'ipv4:', 'ipv6:',
                'vsock:')


def server_address(address, flag, grpc=False):
  """Raises UsageError unless ``address`` is host:port or a gRPC name
  (GRPC_SCHEMES, e.g. unix:///tmp/tfs.sock) with --grpc, or
  [http(s)://]host[:port][/path] for REST, with a host and a port in
  1-65535 where one is given."""
  if grpc and address.startswith(GRPC_SCHEMES) and address.split(':', 1)[1]:
    return address
  url = address if grpc or '://' in address else f'http://{address}'
  parts = urllib.parse.urlsplit(f'//{url}' if grpc else url)
  try:
    port = parts.port
  except ValueError:
    port = -1
  if not parts.hostname or port == -1 or port == 0 or (
      grpc and port is None) or parts.netloc.endswith(':') or (
          not grpc and parts.scheme.lower() not in ('http', 'https')):
    form = 'host:port' if grpc else '[http://]host:port'
    raise UsageError(f'{flag} {address!r} is not a server address; expected '
                     f'{form}, e.g. localhost:{8500 if grpc else 8501}.')
  return address


def checkpoint(path, flag):
  """Raises FileNotFoundError unless ``path`` is a checkpoint prefix (its
  ``.index`` file exists) or a folder with a ``checkpoint`` state file, as
  ``tf.train.latest_checkpoint`` needs."""
  if is_remote(path):
    return path
  if os.path.isdir(path):
    if not os.path.isfile(os.path.join(path, 'checkpoint')):
      raise FileNotFoundError(f'no checkpoint at {path!r} ({flag}): the '
                              "folder has no 'checkpoint' file.")
  elif not os.path.isfile(path + '.index'):
    raise FileNotFoundError(f'no checkpoint at {path!r} ({flag}): neither a '
                            f'folder nor a checkpoint prefix ({path}.index).')
  return path


def data_split(config, split_key, classes=True):
  """Checks ``config.<split_key>`` ('data.train' or 'data.eval') for its
  dataset: a path that exists where the dataset needs one, scenes for the
  synthetic dataset, and with ``classes`` 'model.num_classes' where the
  class count is known (class_count; not for a split read for its images
  alone, as int8 calibration reads data.train).

  Raises:
    FileNotFoundError: the path is empty, is not a folder, or lacks the
      split's files (``data/formats/layouts.py``).
    ConfigError: synthetic with num_examples < 1 or an unknown split; a
      class count that differs from the dataset's.
  """
  name = config.data.dataset
  split = getattr(config.data, split_key.split('.')[-1])
  if name == 'synthetic' and split.num_examples < 1:
    raise ConfigError(f"'{split_key}.num_examples' must be >= 1 for the "
                      'synthetic dataset.')
  if name == 'synthetic':
    synthetic_split(split.split, f"'{split_key}.split'")
  if name not in data_names.PATH_OPTIONAL:
    if not split.path:
      raise FileNotFoundError(
          f"'{split_key}.path' is empty: data.dataset {name!r} reads "
          f"{split_key}.split {split.split!r} from a folder; set it, e.g. "
          f'--params_override {split_key}.path=/data/{name}')
    existing_dir(split.path, f"'{split_key}.path'")
    dataset_files(name, split.path, split.split)
  if classes:
    class_count(config, split_key)


def synthetic_split(split, flag):
  """Raises ConfigError unless ``split`` is one of the synthetic
  dataset's (data_names.SYNTHETIC_SPLITS)."""
  if split not in data_names.SYNTHETIC_SPLITS:
    raise ConfigError(f'{flag} {split!r} is not a synthetic split; known: '
                      f'{", ".join(data_names.SYNTHETIC_SPLITS)}.')
  return split


def class_count(config, split_key):
  """Takes the dataset's classes into the config, or checks the ones it
  sets (``dataset_classes.resolve_classes``), where the files that list
  them are on this machine: fixed classes, a COCO panoptic or Vistas
  JSON's categories, a pdl-data folder's metadata.json. Remote data is
  resolved when it opens (pipeline.check_metadata), before anything is
  written.

  Raises:
    ConfigError: a class setting that differs from the dataset's.
    UsageError: the file that lists the classes is not valid.
  """
  name = config.data.dataset
  split = getattr(config.data, split_key.split('.')[-1])
  try:
    meta = dataset_classes.read_metadata(
        name, split.path, split.split, config.data.label_divisor,
        config.data.ignore_label)
  except ValueError as e:
    raise UsageError(str(e)) from e
  if meta is not None:
    where = '' if name in dataset_classes.FIXED_DATASETS else (
        f' at {split.path}')
    dataset_classes.resolve_classes(config, meta,
                                    f'dataset {name!r}{where}')


def dataset_files(dataset, root, split):
  """``layouts.check_split``, its ValueError (an empty or malformed JSON)
  as a UsageError, printed as one line by the commands; remote roots
  (gs://...) are left to the readers."""
  if is_remote(root):
    return
  try:
    layouts.check_split(dataset, root, split)
  except ValueError as e:
    raise UsageError(str(e)) from e


def backbone_checkpoint(config):
  """Checks model.backbone.init_checkpoint when it is set."""
  path = config.model.backbone.init_checkpoint
  if path:
    checkpoint(path, "'model.backbone.init_checkpoint'")


def known_classes(config, require_count=True, strict=False):
  """Fills the config's unset classes from its dataset, for commands that
  need no data (export, import): with ``model.num_classes`` 0, from the
  files that list them where they are on this machine (data.eval's, then
  data.train's); with a class count set, only the names and ids of a
  fixed-class dataset (no files read): of that count, or, ``strict``, the
  count must be the dataset's (pdl-export leaves a count it got from the
  checkpoint as it is: its int8 calibration may read any dataset's
  images). A missing data folder is not an error here.

  Raises:
    ConfigError: a class setting that differs from the dataset's; with
      ``require_count``, a class count still unknown.
    UsageError: the file that lists the classes is not valid.
  """
  data = config.data
  if config.model.num_classes:
    if data.dataset in dataset_classes.FIXED_DATASETS and (
        strict or not data.class_names and config.model.num_classes == len(
            dataset_classes.read_metadata(data.dataset, '', '').class_names)):
      class_count(config, 'data.eval')
    return
  if data.dataset in dataset_classes.FIXED_DATASETS:
    class_count(config, 'data.eval')
  for key in ('data.eval', 'data.train'):
    split = getattr(data, key.split('.')[1])
    if data.class_names or not split.path or not os.path.isdir(split.path):
      continue
    try:
      class_count(config, key)
    except FileNotFoundError:  # not this split's files: the next may have
      continue
  if require_count and not config.model.num_classes:
    raise ConfigError(
        "'model.num_classes' is 0 (the dataset's class count), but neither "
        "the checkpoint's params.yaml nor the dataset's files on this "
        "machine say it; set model.num_classes (and data.thing_class_ids), "
        'or pass the training run folder as --checkpoint.')


def init_checkpoint(config, model_dir):
  """Checks train.init_checkpoint when set and used: for a new run, whose
  --model_dir has no checkpoint yet (a run with one resumes instead)."""
  path = config.train.init_checkpoint
  if path and not (is_remote(model_dir) or os.path.isfile(
      os.path.join(model_dir, 'checkpoint'))):
    checkpoint(path, '--init_checkpoint / train.init_checkpoint')
    _same_backbone(config, path)


def _same_backbone(config, path):
  """Raises ConfigError when the run ``path`` belongs to (its params.yaml)
  built another backbone than ``config``: none of its backbone's weights
  could be restored (a config file's model: section replaces a shipped
  experiment's network)."""
  from pdl_tf import run_params  # pylint: disable=g-import-not-at-top
  if is_remote(path):  # read after TensorFlow starts (factory)
    return
  saved = (run_params.read_params(path) or {}).get('model') or {}
  theirs = (saved.get('backbone') or {}).get('type')
  ours = config.model.backbone.type
  if theirs and theirs != ours:
    raise ConfigError(
        f"'train.init_checkpoint': {path} is a {theirs} network (its "
        f"params.yaml) but this run builds a {ours} network: the network "
        'comes from --experiment and any model: section of --config_file '
        "or --params_override; a config file with a model: section replaces "
        "the experiment's network (give the experiment a file with your "
        'data: and train: sections only).')
