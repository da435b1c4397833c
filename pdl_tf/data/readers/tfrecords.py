"""Sharded TFRecords of panoptic examples: writer (resumable) and reader.

A converted dataset is a folder holding, per split, ``<split>-KKKKK-of-
NNNNN.tfrecord`` shards, one ``.json`` sidecar per finished shard (its
example count and skipped examples), and ``metadata.json`` (the dataset's
classes, thing flags, colours and label encoding, and per split the number
of examples and shards).

Each record is a ``tf.train.Example`` with ``image/encoded`` (PNG or JPEG,
of the upright image; read back with ``image_decode``, the one decode),
``image/filename``, ``image/height``, ``image/width`` and
``panoptic/encoded``: the int32 label (package encoding) as a lossless RGB
PNG, value = R + 256 G + 256^2 B; and, where the source lists segments that
the label merges (several stuff or crowd segments of a class in COCO
panoptic files), ``panoptic/segment_keys``: the segment key map
(pdl_tf/labels/segment_keys.py) as a serialized int64 tensor, which
evaluation reads so that its PQ is the source files' (records without it
read as before).

Conversion is resumable: a shard is written to ``*.incomplete`` and renamed
when done, then its sidecar is written; a rerun skips the shards whose
sidecar exists.

Example:
  >>> meta, sources = coco_panoptic.list_coco_panoptic(...)
  >>> write_split(meta, sources, '/data/coco_tfrecords', 'val2017', 8)
  >>> meta, dataset = read_split('/data/coco_tfrecords', 'val2017')
"""

import dataclasses
import functools
import glob
import json
import os

import tensorflow as tf
import tqdm

from pdl_tf.data.decoding import image_decode
from pdl_tf.data.formats import errors
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers.coco_panoptic import DatasetMetadata

METADATA_FILE = layouts.TFRECORD_METADATA
FORMAT = 'pdl_tf panoptic tfrecords'
# Optional feature: the label's segment key map (serialized int64 tensor).
KEYS_FEATURE = 'panoptic/segment_keys'
MAX_LABEL_VALUE = 256 ** 3 - 1
IMAGE_FORMATS = ('png', 'jpeg')


def shard_path(folder, split, index, num_shards):
  return os.path.join(folder,
                      f'{split}-{index:05d}-of-{num_shards:05d}.tfrecord')


def _metadata_dict(meta):
  values = dataclasses.asdict(meta)
  values['colors'] = [list(color) for color in meta.colors]
  return values


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def serialize_example(image, panoptic, name, image_format='png',
                      segment_keys=None):
  """One serialized tf.train.Example.

  Args:
    image: uint8 [H, W, 3].
    panoptic: int32 [H, W], values in 0..2^24-1.
    name: the example's file name.
    image_format: 'png' (lossless) or 'jpeg' (quality 95).
    segment_keys: the label's segment key map (int [H, W],
      pdl_tf/labels/segment_keys.py) where it is not the label itself, or
      None; stored as ``panoptic/segment_keys`` (a serialized int64 tensor)
      for evaluation to keep those segments apart.

  Raises:
    ValueError: a label value outside 0..2^24-1 or mismatched sizes.
  """
  panoptic = tf.convert_to_tensor(panoptic, tf.int32)
  if image.shape[:2] != tuple(panoptic.shape):
    raise ValueError(f'{name}: image {image.shape} and label '
                     f'{tuple(panoptic.shape)} differ in size.')
  low, high = int(tf.reduce_min(panoptic)), int(tf.reduce_max(panoptic))
  if low < 0 or high > MAX_LABEL_VALUE:
    raise ValueError(f'{name}: label values {low}..{high} do not fit the '
                     f'24-bit RGB encoding (0..{MAX_LABEL_VALUE}).')
  rgb = tf.stack([panoptic % 256, panoptic // 256 % 256,
                  panoptic // 65536], -1)
  encode = (tf.io.encode_png if image_format == 'png' else
            lambda x: tf.io.encode_jpeg(x, quality=95))
  features = {
      'image/encoded': _bytes(encode(image).numpy()),
      'image/filename': _bytes(name.encode()),
      'image/height': _int(image.shape[0]),
      'image/width': _int(image.shape[1]),
      'panoptic/encoded': _bytes(tf.io.encode_png(
          tf.cast(rgb, tf.uint8)).numpy()),
  }
  if segment_keys is not None:
    features[KEYS_FEATURE] = _bytes(tf.io.serialize_tensor(
        tf.constant(segment_keys, tf.int64)).numpy())
  return tf.train.Example(features=tf.train.Features(
      feature=features)).SerializeToString()


def decode_example(serialized, with_keys=False):
  """(image uint8 [H, W, 3], panoptic int32 [H, W], file name) of a record;
  with ``with_keys``, also its segment key map, int32 [H, W] (the label
  where the record stores none)."""
  features = tf.io.parse_single_example(serialized, {
      'image/encoded': tf.io.FixedLenFeature([], tf.string),
      'image/filename': tf.io.FixedLenFeature([], tf.string),
      'panoptic/encoded': tf.io.FixedLenFeature([], tf.string),
      KEYS_FEATURE: tf.io.FixedLenFeature([], tf.string, default_value='')})
  image = image_decode.decode_image(features['image/encoded'])
  rgb = tf.cast(tf.io.decode_png(features['panoptic/encoded'], channels=3),
                tf.int32)
  panoptic = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
  decoded = (tf.ensure_shape(image, [None, None, 3]), panoptic,
             features['image/filename'])
  if not with_keys:
    return decoded
  stored = features[KEYS_FEATURE]

  def keys():
    values = tf.io.parse_tensor(stored, tf.int64)
    check = tf.debugging.assert_less(
        values, tf.constant(1 << 31, tf.int64), message=tf.strings.join([
            errors.MARKER, features['image/filename'], ': its segment keys '
            'do not fit in int32 for the evaluation; lower '
            'data.label_divisor']))
    with tf.control_dependencies([check]):
      return tf.cast(values, tf.int32)

  return decoded + (tf.ensure_shape(tf.cond(
      tf.strings.length(stored) > 0, keys, lambda: panoptic), [None, None]),)


def _read_metadata_file(folder):
  path = os.path.join(folder, METADATA_FILE)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path} is not valid JSON: {e}') from e
  if data.get('format') != FORMAT:
    raise ValueError(f'{path} is not a pdl_tf TFRecord metadata file '
                     f"(format {data.get('format')!r}).")
  return data


def _write_json(path, data):
  with open(path + '.incomplete', 'w') as f:
    json.dump(data, f, indent=1)
  os.replace(path + '.incomplete', path)


def _check_existing(folder, split, num_shards, meta):
  """Refuses to mix shard counts or datasets in one folder."""
  for path in glob.glob(os.path.join(folder, f'{split}-*-of-*.tfrecord')):
    total = int(path.rsplit('-of-', 1)[1].split('.')[0])
    if total != num_shards:
      raise FileExistsError(
          f'{path} belongs to a conversion of split {split!r} into {total} '
          f'shards, not {num_shards}; delete those shards or use '
          f'--num_shards {total}.')
  existing = _read_metadata_file(folder)
  if existing and existing['metadata'] != _metadata_dict(meta):
    raise FileExistsError(
        f'{os.path.join(folder, METADATA_FILE)} describes another dataset '
        '(different classes or label encoding); use an empty folder.')


def _write_shard(path, sources, bar, skip_bad, image_format):
  """Writes one shard; returns (written count, [bad example records])."""
  written, bad = 0, []
  try:
    with tf.io.TFRecordWriter(path + '.incomplete') as writer:
      for source in sources:
        try:
          example = source.load()
          keys = example.segment_key_map()
          record = serialize_example(
              example.image, example.panoptic, source.name, image_format,
              None if keys is example.panoptic else keys)
        except (ValueError, OSError) as e:
          if not skip_bad:
            raise
          bad.append({'name': source.name, 'error': str(e)})
          tqdm.tqdm.write(f'skipped {source.name}: {e}')
        else:
          writer.write(record)
          written += 1
        bar.update(1)
  except BaseException:
    if os.path.exists(path + '.incomplete'):
      os.remove(path + '.incomplete')
    raise
  os.replace(path + '.incomplete', path)
  return written, bad


def write_split(meta, sources, folder, split, num_shards, *, skip_bad=False,
                image_format='png', progress=True):
  """Converts one split to sharded TFRecords (resumable).

  Args:
    meta: DatasetMetadata of the dataset.
    sources: list of ExampleSource (coco_panoptic.ExampleSource).
    folder: output folder (created).
    split: split name used in the file names.
    num_shards: number of shards (at most the number of examples).
    skip_bad: record and skip examples whose files are missing or bad
      (listed in the sidecars, metadata.json and the summary) instead of
      stopping at the first.
    image_format: 'png' or 'jpeg'.
    progress: show a tqdm progress bar.

  Returns:
    dict: ``num_examples`` written, ``skipped`` (list of {name, error}),
    ``files`` (shard paths).

  Raises:
    ValueError: no sources, bad arguments, or (without skip_bad) the first
      bad example, naming its file; finished shards are kept.
    FileExistsError: the folder holds another dataset or shard count.
  """
  if not sources:
    raise ValueError(f'split {split!r} has no examples to convert.')
  if num_shards < 1:
    raise ValueError(f'num_shards must be >= 1, got {num_shards}.')
  if image_format not in IMAGE_FORMATS:
    raise ValueError(f'image_format must be one of {IMAGE_FORMATS}.')
  num_shards = min(num_shards, len(sources))
  created = not os.path.isdir(folder)
  os.makedirs(folder, exist_ok=True)
  try:
    return _write_shards(meta, sources, folder, split, num_shards, skip_bad,
                         image_format, progress)
  except Exception:
    if created and not os.listdir(folder):  # nothing finished: no trace
      os.rmdir(folder)
    raise


def _write_shards(meta, sources, folder, split, num_shards, skip_bad,
                  image_format, progress):
  """write_split's work in an existing folder."""
  _check_existing(folder, split, num_shards, meta)
  bounds = [k * len(sources) // num_shards for k in range(num_shards + 1)]
  paths = [shard_path(folder, split, k, num_shards)
           for k in range(num_shards)]
  sidecar = lambda k: paths[k][:-len('.tfrecord')] + '.json'
  done = [os.path.isfile(sidecar(k)) and os.path.isfile(paths[k])
          for k in range(num_shards)]
  initial = sum(bounds[k + 1] - bounds[k] for k in range(num_shards)
                if done[k])
  with tqdm.tqdm(total=len(sources), initial=initial, unit='example',
                 desc=f'{split}', disable=not progress) as bar:
    for k in range(num_shards):
      if done[k]:
        continue
      written, bad = _write_shard(paths[k], sources[bounds[k]:bounds[k + 1]],
                                  bar, skip_bad, image_format)
      _write_json(sidecar(k), {'num_examples': written, 'skipped': bad})
  return _finish(folder, split, meta, paths, [sidecar(k)
                                              for k in range(num_shards)])


def _finish(folder, split, meta, paths, sidecars):
  """Writes metadata.json from the sidecars; returns the summary."""
  total, skipped = 0, []
  for path in sidecars:
    with open(path) as f:
      info = json.load(f)
    total += info['num_examples']
    skipped += info['skipped']
  data = _read_metadata_file(folder) or {
      'format': FORMAT, 'metadata': _metadata_dict(meta), 'splits': {}}
  data['splits'][split] = {'num_examples': total, 'num_shards': len(paths),
                           'num_skipped': len(skipped)}
  _write_json(os.path.join(folder, METADATA_FILE), data)
  return {'num_examples': total, 'skipped': skipped, 'files': paths}


def read_split(folder, split, input_context=None, deterministic=True,
               with_keys=False):
  """Metadata and a dataset of (image uint8 [H,W,3], panoptic int32 [H,W],
  file name string []), with ``with_keys`` and the segment key map int32
  [H, W] (decode_example).

  Shards are read with a parallel interleave. With an input_context and at
  least as many shards as input pipelines, each pipeline reads its own
  shards; otherwise each reads every num_input_pipelines-th example.

  Raises:
    FileNotFoundError: no metadata.json, or a shard listed there missing.
    ValueError: the split is not in metadata.json or has no examples.
  """
  layouts.tfrecord_metadata(folder)
  data = _read_metadata_file(folder)
  if split not in data['splits']:
    raise ValueError(f'{folder}: split {split!r} is not converted; '
                     f'converted: {sorted(data["splits"])}.')
  info = data['splits'][split]
  if info['num_examples'] < 1:
    raise ValueError(f'{folder}: split {split!r} has no examples.')
  paths = [shard_path(folder, split, k, info['num_shards'])
           for k in range(info['num_shards'])]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise FileNotFoundError(f'{len(missing)} shard(s) of split {split!r} '
                            f'are missing, e.g. {missing[0]}.')
  meta = data['metadata']
  meta = DatasetMetadata(**{**meta, 'colors': [tuple(c) for c in
                                               meta['colors']]})
  files = tf.data.Dataset.from_tensor_slices(paths)
  pipelines = input_context.num_input_pipelines if input_context else 1
  by_file = pipelines > 1 and len(paths) >= pipelines
  if by_file:
    files = files.shard(pipelines, input_context.input_pipeline_id)
  dataset = files.interleave(
      tf.data.TFRecordDataset, cycle_length=min(len(paths), 8),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  if pipelines > 1 and not by_file:
    dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
  return meta, dataset.map(functools.partial(decode_example,
                                             with_keys=with_keys),
                           num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=deterministic)
