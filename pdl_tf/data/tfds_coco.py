"""TFDS ``coco/2017_panoptic`` -> (image, panoptic label), for users who have it.

TFDS stores each example's panoptic PNG (segment id = R + 256 G + 256^2 B)
and a list of segments (``panoptic_objects``: id, label, is_crowd), where
``label`` indexes the 133 COCO panoptic categories in the order of
``panoptic_coco_categories.json`` (shipped with this package, from the COCO
panoptic API, BSD licence; the first 80 are things). Labels come out in the package encoding, exactly as
``coco_panoptic.read_coco_panoptic`` makes them from the original files:
contiguous class * label_divisor + instance (numbered from 1 per class in
segment order), crowd = instance 0, void = ignore_label * label_divisor.
An example whose PNG and panoptic_objects disagree, or with as many
instances of a class as label_divisor, stops the pipeline with an error
naming its PNG.

Nothing is downloaded: the dataset must already be prepared in ``data_dir``
(``tfds.builder('coco/2017_panoptic').download_and_prepare()`` on a machine
with internet access, or the files copied over).

Example:
  >>> meta, dataset = read_tfds_coco_panoptic('validation', '/data/tfds')
"""

import tensorflow as tf
import tensorflow_datasets as tfds

from pdl_tf.data.catalog import fixed_classes
from pdl_tf.data.decoding import image_decode

NAME = 'coco/2017_panoptic'
_SENTINEL = 2 ** 62  # sorts after every real segment id


coco_categories = fixed_classes.coco_categories
coco_metadata = fixed_classes.coco_metadata


def _instance_numbers(labels, counted):
  """1 + earlier counted segments of the same class, or 0: int32 [N]."""
  size = tf.shape(labels)[0]
  earlier = tf.range(size)[None, :] < tf.range(size)[:, None]
  same = (labels[:, None] == labels[None, :]) & counted[None, :] & earlier
  return tf.where(counted,
                  1 + tf.reduce_sum(tf.cast(same, tf.int32), axis=1), 0)


def _check_objects(objects, labels, numbers, sorted_ids, position, found,
                   flat, names, label_divisor, png_name):
  """In-graph checks of one example's segments against its PNG: every PNG
  id but 0 is an object and every object is in the PNG; no class has as
  many instances as label_divisor. Returns the Assert ops."""
  num_objects = tf.size(objects['id'])
  in_png = tf.math.bincount(
      tf.cast(tf.boolean_mask(position, found & (flat != 0)), tf.int32),
      minlength=num_objects + 1, maxlength=num_objects + 1)[:num_objects]
  worst = tf.argmax(tf.concat([numbers, [0]], 0), output_type=tf.int32)
  worst_label = tf.gather(tf.concat([labels, [0]], 0), worst)
  return [
      tf.debugging.Assert(
          tf.reduce_all(found | (flat == 0)),
          ['panoptic PNG has segment ids missing from panoptic_objects:',
           png_name]),
      tf.debugging.Assert(
          tf.reduce_all(in_png > 0),
          ['panoptic_objects ids missing from the panoptic PNG', png_name,
           tf.boolean_mask(sorted_ids[:num_objects], in_png == 0)]),
      tf.debugging.Assert(
          tf.reduce_max(tf.concat([numbers, [0]], 0)) < label_divisor,
          [png_name, 'has', tf.gather(tf.concat([numbers, [0]], 0), worst),
           'instances of class', worst_label, tf.gather(names, worst_label),
           f'but label_divisor {label_divisor} allows at most '
           f'{label_divisor - 1} per class; raise data.label_divisor'],
          summarize=3),
  ]


def panoptic_from_tfds(example, is_thing, label_divisor, ignore_label,
                       class_names=None):
  """(image uint8 [H, W, 3], panoptic int32 [H, W], image file name) of one
  TFDS example.

  The image is decoded here, by ``image_decode`` (TFDS's own decoding is
  skipped: its JPEG inverse DCT is not PIL's, and it ignores EXIF), and the
  label turned like it (``image_decode.upright_label``).

  Args:
    example: a ``coco/2017_panoptic`` example dict, ``image`` still encoded
      (``decoders={'image': tfds.decode.SkipDecoding()}``).
    is_thing: bool [num_classes], by TFDS label index.
    class_names: string [num_classes] for the messages (default: indices).

  Raises:
    InvalidArgumentError (when run), naming the PNG's file name: a PNG
      segment id missing from panoptic_objects or the reverse, or more
      instances of a class than label_divisor allows (with the class and
      the count).
  """
  if class_names is None:
    class_names = tf.strings.as_string(tf.range(tf.size(is_thing)))
  image, orientation = image_decode.decode_with_orientation(
      example['image'])
  rgb = tf.cast(example['panoptic_image'], tf.int64)
  ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
  objects = example['panoptic_objects']
  labels = tf.cast(objects['label'], tf.int32)
  counted = tf.gather(is_thing, labels) & ~objects['is_crowd']
  numbers = _instance_numbers(labels, counted)
  values = labels * label_divisor + numbers
  order = tf.argsort(objects['id'])
  sorted_ids = tf.concat([tf.gather(objects['id'], order),
                          [tf.constant(_SENTINEL, tf.int64)]], 0)
  void = ignore_label * label_divisor
  sorted_values = tf.concat([tf.gather(values, order), [void]], 0)
  flat = tf.reshape(ids, [-1])
  position = tf.searchsorted(sorted_ids, flat)
  found = tf.gather(sorted_ids, position) == flat
  checks = _check_objects(objects, labels, numbers, sorted_ids, position,
                          found, flat, class_names, label_divisor,
                          example['panoptic_image/filename'])
  with tf.control_dependencies(checks):
    panoptic = tf.where(flat == 0, void, tf.gather(sorted_values, position))
  panoptic = image_decode.upright_label(tf.reshape(panoptic, tf.shape(ids)),
                                        orientation, tf.shape(image)[:2])
  return image, panoptic, example['image/filename']


def read_tfds_coco_panoptic(split, data_dir=None, label_divisor=1000,
                            ignore_label=255, input_context=None,
                            deterministic=True):
  """Metadata and a dataset of (image uint8, panoptic int32, file name).

  Args:
    split: a TFDS split, 'train' or 'validation'.
    data_dir: the TFDS data folder, or None for TFDS's default.
    input_context: tf.distribute.InputContext, or None; with one, each input
      pipeline reads its own files.

  Raises:
    ValueError: the dataset is not prepared in data_dir (from TFDS, with its
      message), or its label list is not the 133 COCO categories.
  """
  meta = coco_metadata(label_divisor, ignore_label)
  builder = tfds.builder(NAME, data_dir=data_dir)
  labels = builder.info.features['panoptic_objects']['label']
  if labels.num_classes != meta.num_classes:
    raise ValueError(f'{NAME} in {data_dir} has {labels.num_classes} '
                     f'labels, expected the {meta.num_classes} COCO panoptic '
                     'categories.')
  read_config = tfds.ReadConfig(input_context=input_context)
  options = tf.data.Options()
  options.deterministic = deterministic
  read_config.options = options
  dataset = tfds.load(NAME, split=split, data_dir=data_dir, download=False,
                      shuffle_files=False, read_config=read_config,
                      decoders={'image': tfds.decode.SkipDecoding()})
  is_thing = tf.constant(meta.is_thing)
  class_names = tf.constant(meta.class_names)
  return meta, dataset.map(
      lambda example: panoptic_from_tfds(example, is_thing, label_divisor,
                                         ignore_label, class_names),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
