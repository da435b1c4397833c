"""tf.data input pipeline: read, batch, augment, generate targets.

Training examples are batched first, then augmented and given their targets
a batch at a time (one ``tf.image.crop_and_resize`` and one
``generate_targets`` call per batch instead of a few dozen ops per image;
figures in bench/README.md).

With sources.open_split, the only code that reads the data section of the
config. Works as the ``dataset_fn`` of
``strategy.distribute_datasets_from_function``.

Example:
  >>> dataset = build_dataset(config)                       # training
  >>> batch = next(iter(dataset))
  >>> batch['image'].shape, batch['center_heatmap'].shape
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf import normalization
from pdl_tf.labels import segment_keys
from pdl_tf.config import ConfigError
from pdl_tf.data.targets import augment
from pdl_tf.data.catalog import dataset_classes
from pdl_tf.data.formats import errors
from pdl_tf.data.catalog import names as data_names
from pdl_tf.data import sources
from pdl_tf.data.targets.targets import generate_targets

IMAGE = 'image'
ORIGINAL_SIZE = 'original_size'
FILE_NAME = 'file_name'
SEGMENT_KEYS = 'segment_keys'
DATASETS = sources.DATASETS


def check_metadata(config, meta):
  """Takes the dataset's classes into the config where it leaves them
  unset, or raises ConfigError if the config's differ from the dataset's
  (``dataset_classes.resolve_classes``)."""
  dataset_classes.resolve_classes(config, meta,
                                  f'dataset {config.data.dataset!r}')


def resolve_classes(config):
  """Fills the config's unset classes from its dataset before a model is
  built: from the files that list them (``dataset_classes.read_metadata``),
  or, for remote data, by opening the split. The training split is read
  when it has a path (or needs none), else the eval split.

  Raises:
    ConfigError: a class setting that differs from the dataset's.
  """
  data = config.data
  if dataset_classes.classes_resolved(config):
    return
  key = 'data.train' if (data.train.path or data.dataset in
                         data_names.PATH_OPTIONAL) else 'data.eval'
  split = getattr(data, key.split('.')[1])
  meta = dataset_classes.read_metadata(data.dataset, split.path, split.split,
                                       data.label_divisor, data.ignore_label)
  if meta is None:
    meta, _ = sources.open_split(data, split, key)
  check_metadata(config, meta)


def build_dataset(config, input_context=None, training=True, skip_steps=0):
  """A batched dataset of images and training targets.

  Args:
    config: ExperimentConfig.
    input_context: tf.distribute.InputContext or None. With one, the data is
      sharded per input pipeline and batched per replica.
    training: training split with augmentation, shuffling, repetition and
      drop_remainder; else the eval split, padded to its crop_size.
    skip_steps: training steps already taken, whose batches are skipped. The
      order and the augmentation are fixed by data.seed, so a run resumed at
      step N with skip_steps=N sees exactly the batches an uninterrupted run
      would (it reads and batches the skipped ones again, but neither
      augments them nor makes their targets). Each step took one
      per-replica batch from this input pipeline for every replica it feeds
      (``pipeline_batches_per_step``), so that many per step are skipped.

  Returns:
    tf.data.Dataset of dicts: ``image`` float32 [B, h, w, 3] in [0, 255],
    the six target keys of ``generate_targets``, ``keys.PANOPTIC`` int32
    [B, h, w] and (eval) ``original_size`` int32 [B, 2], ``file_name``
    string [B] and ``segment_keys`` int32 [B, h, w], the ground truth's
    segment key map (segment_keys.py: several stuff or crowd segments of a
    class kept apart, for panoptic quality).
  """
  data = config.data
  split = data.train if training else data.eval
  meta, dataset = sources.open_split(
      data, split, 'data.train' if training else 'data.eval', input_context,
      with_keys=not training)
  check_metadata(config, meta)
  if split.cache:  # decoded (or generated) once, augmented every epoch
    dataset = dataset.cache()
  batch = split.batch_size
  # Padding that the network normalizes to 0 (127.5 for deeplab2's models).
  pad_rgb = normalization.pad_rgb(config.model.input_normalization)
  if input_context is not None:
    batch = input_context.get_per_replica_batch_size(batch)
  if training:
    check_label_range(data)  # only augmentation resamples labels
    dataset = dataset.repeat().shuffle(data.shuffle_buffer, seed=data.seed)
    skip = skip_steps * pipeline_batches_per_step(input_context)
    dataset = _augmented_batches(dataset, data, split, batch, skip, pad_rgb)
  else:
    dataset = _eval_batches(dataset, data, split, batch, pad_rgb)
  things = tuple(meta.thing_class_ids)

  def add_targets(features):  # a batch at a time: per-op costs amortised
    features.update(generate_targets(
        features[keys.PANOPTIC], thing_class_ids=things,
        label_divisor=data.label_divisor, ignore_label=data.ignore_label,
        sigma=data.center_sigma, small_instance_area=data.small_instance_area,
        small_instance_weight=data.small_instance_weight,
        max_segments=data.max_segments))
    return features

  dataset = dataset.map(add_targets, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=data.deterministic)
  options = tf.data.Options()
  options.deterministic = data.deterministic
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def pipeline_batches_per_step(input_context):
  """The batches one input pipeline yields per training step.

  One pipeline feeds all the replicas of its worker (with
  ``distribute_datasets_from_function``): a step takes one per-replica batch
  for each of them.

  Args:
    input_context: tf.distribute.InputContext or None (one device).

  Returns:
    int, num_replicas_in_sync / num_input_pipelines (1 without a context).
  """
  if input_context is None:
    return 1
  replicas, pipelines = (input_context.num_replicas_in_sync,
                         input_context.num_input_pipelines)
  if replicas % pipelines:
    raise ConfigError(f'{replicas} replicas cannot be fed evenly by '
                      f'{pipelines} input pipelines.')
  return replicas // pipelines


def check_label_range(data):
  """Raises ConfigError if label values could reach 2^24, above which the
  float32 resampling of ``augment.random_scale_crop_flip`` is inexact."""
  largest = (data.ignore_label + 1) * data.label_divisor - 1
  if largest >= 1 << 24:
    raise ConfigError(
        f"'data.ignore_label' {data.ignore_label} and 'data.label_divisor' "
        f'{data.label_divisor} give label values up to {largest}; the '
        'augmentation needs them below 2^24 = 16777216.')


def _augmented_batches(dataset, data, split, batch, skip_batches, pad_rgb):
  """(image, panoptic, file name) examples -> augmented training batches.

  Images are batched first (each edge-padded, then padded to the largest in
  the batch) and augmented a batch at a time, each with its own draws
  seeded by (data.seed, its index), so that the augmentation does not
  depend on the batching and skipped batches need no augmentation.
  """
  def prepare(index, example):
    image, panoptic, _ = example
    if split.max_size:  # float32 after downscaling; else the source's uint8
      image, panoptic = augment.resize_longest_side(image, panoptic,
                                                    split.max_size)
    seed = tf.cast(tf.stack([tf.cast(data.seed, tf.int64), index]), tf.int32)
    return augment.pad_edges(image, panoptic) + (augment.random_draws(seed),)

  dataset = dataset.enumerate().map(prepare,
                                    num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=data.deterministic)
  image_dtype = dataset.element_spec[0].dtype
  dataset = dataset.padded_batch(
      batch, padding_values=(tf.constant(0, image_dtype),
                             data.ignore_label * data.label_divisor, 0, 0.0),
      drop_remainder=True).skip(skip_batches)

  def augment_batch(images, panoptic, sizes, draws):
    images, panoptic = augment.random_scale_crop_flip(
        images, panoptic, sizes, draws, crop_size=split.crop_size,
        min_scale=split.min_scale, max_scale=split.max_scale,
        flip=split.flip, ignore_value=data.ignore_label * data.label_divisor,
        pad_rgb=pad_rgb)
    return {IMAGE: images, keys.PANOPTIC: panoptic}

  return dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=data.deterministic)


def _eval_batches(dataset, data, split, batch, pad_rgb):
  """Examples -> batches padded to the eval crop_size, with their original
  size, file name and segment keys.

  The segment key map is resized and padded in place of the label (whose
  values are the keys' remainders), so the two cannot differ.
  """
  def prepare(image, _, file_name, segment_map):
    image, segment_map = augment.resize_longest_side(image, segment_map,
                                                     split.max_size)
    with tf.control_dependencies([_fits_crop_check(image, file_name, split)]):
      image = tf.identity(image)
    image, segment_map, original_size = augment.pad_for_eval(
        image, segment_map, size=split.crop_size,
        ignore_value=data.ignore_label * data.label_divisor, pad_rgb=pad_rgb)
    panoptic = segment_keys.labels_of(segment_map, data.label_divisor,
                                      data.ignore_label)
    return {IMAGE: image, keys.PANOPTIC: panoptic,
            ORIGINAL_SIZE: original_size, FILE_NAME: file_name,
            SEGMENT_KEYS: segment_map}

  return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=data.deterministic).batch(batch)


def _fits_crop_check(image, file_name, split):
  """Asserts that an evaluation image (after data.eval.max_size) fits in
  data.eval.crop_size; the message names the image and the settings, behind
  errors.MARKER (the commands print it as one line)."""
  size = tf.shape(image)[:2]
  crop = list(split.crop_size)
  text = lambda value: tf.strings.as_string(value)
  message = tf.strings.join([
      errors.MARKER, 'evaluation image ', file_name, ' is ', text(size[0]),
      ' x ', text(size[1]),
      f' (height x width; data.eval.max_size {split.max_size}), larger than '
      f'data.eval.crop_size {crop}: raise data.eval.crop_size to at least '
      'its size (a multiple of the output stride, or one plus it) or set '
      f'data.eval.max_size to at most {min(crop)}'])
  return tf.debugging.Assert(tf.reduce_all(size <= crop), [message])
