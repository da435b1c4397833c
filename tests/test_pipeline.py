"""Synthetic data, augmentation and the tf.data pipeline."""

import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from helpers import run_python
from pdl_tf import config_io
from pdl_tf import keys
from pdl_tf.config import ConfigError
from pdl_tf.data.targets import augment
from pdl_tf.data import pipeline
from pdl_tf.data import sources
from pdl_tf.data.readers import synthetic


def test_synthetic_scenes_are_deterministic_and_varied():
  a_image, a_label = synthetic.make_scene(7)
  b_image, b_label = synthetic.make_scene(7)
  np.testing.assert_array_equal(a_image, b_image)
  np.testing.assert_array_equal(a_label, b_label)
  assert not np.array_equal(a_label, synthetic.make_scene(8)[1])
  labels = [label for _, label in synthetic.examples('train', 40)]
  classes = set(np.unique(np.concatenate([l.ravel() for l in labels]) //
                          1000).tolist())
  assert classes == {0, 1, 2, 3, 4, 5, 255}
  crowds = sum(any(v // 1000 in (3, 4, 5) and v % 1000 == 0
                   for v in np.unique(l)) for l in labels)
  assert 5 <= crowds <= 30  # about a third of the scenes
  assert all(len([v for v in np.unique(l) if v % 1000]) >= 1 for l in labels)


def padded_batch(examples, dtype=np.uint8):
  """(image, label) pairs -> the batched input of random_scale_crop_flip:
  each through pad_edges, then padded to a common size as padded_batch.
  The pipeline batches uint8 images, or float32 ones after max_size."""
  padded = [augment.pad_edges(tf.cast(image, dtype), label)
            for image, label in examples]
  height = max(int(p[0].shape[0]) for p in padded)
  width = max(int(p[0].shape[1]) for p in padded)
  images = np.zeros((len(padded), height, width, 3), dtype)
  labels = np.full((len(padded), height, width), -7, np.int32)  # never read
  for b, (image, label, _) in enumerate(padded):
    images[b, :image.shape[0], :image.shape[1]] = image
    labels[b, :label.shape[0], :label.shape[1]] = label
  return images, labels, np.stack([p[2] for p in padded])


def resize_pad_crop_flip(image, label, scaled, top, left, flipped, crop,
                         ignore_value):
  """The per-image definition: tf.image.resize, pad, crop, flip (numpy)."""
  h, w = scaled
  image = tf.image.resize(tf.cast(image, tf.float32), [h, w]).numpy()
  label = tf.image.resize(label[..., None], [h, w],
                          method='nearest').numpy()[..., 0]
  out_h, out_w = max(h, crop[0]), max(w, crop[1])
  canvas = np.empty((out_h, out_w, 3), np.float32)
  canvas[:] = augment.PAD_RGB
  canvas[:h, :w] = image
  labels = np.full((out_h, out_w), ignore_value, np.int32)
  labels[:h, :w] = label
  window = np.s_[top:top + crop[0], left:left + crop[1]]
  canvas, labels = canvas[window], labels[window]
  return (canvas[:, ::-1], labels[:, ::-1]) if flipped else (canvas, labels)


def half_way(length, scaled_length, offset, crop, flipped=False):
  """bool [crop]: output positions whose nearest-neighbour source
  coordinate (p + 0.5) * length / scaled_length is a whole number, i.e. lies
  half-way between two pixel centres (a tie either neighbour may win)."""
  positions = offset + np.arange(crop)
  ties = (2 * positions + 1) * length % (2 * scaled_length) == 0
  return ties[::-1] if flipped else ties


@pytest.mark.parametrize('dtype', [np.uint8, np.float32])
def test_augmentation_matches_resize_pad_crop_flip(dtype):
  # Images of three sizes in one batch, scales from 0.5 to 1.5, against the
  # per-image definition. Bilinear values agree to float rounding; labels
  # agree except on rows / columns where nearest-neighbour sampling ties.
  rng = np.random.default_rng(3)
  examples = []
  for height, width in ((20, 30), (33, 17), (40, 40)):
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    blocks = rng.integers(0, 6, (height // 4 + 1, width // 4 + 1))
    label = np.kron(blocks, np.ones((4, 4), np.int64))[:height, :width]
    examples.append((image, (label * 1000 + 1).astype(np.int32)))
  images, labels, sizes = padded_batch(examples, dtype)
  crop, mismatched = (24, 28), 0
  for seed in range(6):
    args = dict(crop_size=crop, min_scale=0.5, max_scale=1.5, flip=True)
    draws = tf.stack([augment.random_draws(tf.constant([seed, b]))
                      for b in range(3)])
    out_images, out_labels = augment.random_scale_crop_flip(
        images, labels, sizes, draws, ignore_value=255000, **args)
    params = [p.numpy() for p in augment.random_crop_params(
        sizes, draws, **args)]
    for b, (image, label) in enumerate(examples):
      scaled, top, left, flipped = (p[b] for p in params)
      want_image, want_label = resize_pad_crop_flip(
          image, label, scaled, top, left, flipped, crop, 255000)
      np.testing.assert_allclose(out_images[b], want_image, atol=0.05)
      ties = (half_way(image.shape[0], scaled[0], top, crop[0])[:, None] |
              half_way(image.shape[1], scaled[1], left, crop[1],
                       flipped)[None, :])
      differ = out_labels[b].numpy() != want_label
      assert not (differ & ~ties).any(), (seed, b)
      mismatched += differ.sum()
  assert mismatched < 0.02 * 6 * 3 * crop[0] * crop[1]


def test_augmentation_keeps_image_and_label_aligned():
  # Scale 1: no resampling (up to float rounding of the sample positions),
  # so after the crop and the (maybe) flip the image's red channel must
  # still equal the label's class at every pixel.
  label = np.repeat(np.arange(40, dtype=np.int32)[None] % 6 * 1000, 30, 0)
  image = np.stack([label // 1000 * 40] * 3, -1).astype(np.uint8)
  images, labels, sizes = padded_batch([(image, label)] * 8)
  draws = tf.stack([augment.random_draws(tf.constant([0, i]))
                    for i in range(8)])
  out_image, out_label = augment.random_scale_crop_flip(
      images, labels, sizes, draws, crop_size=(24, 32),
      min_scale=1.0, max_scale=1.0, flip=True, ignore_value=255000)
  np.testing.assert_allclose(out_image[..., 0].numpy(),
                             out_label.numpy() // 1000 * 40, atol=1e-3)
  flipped = (out_label.numpy()[:, 0, 0] > out_label.numpy()[:, 0, -1]).sum()
  assert 0 < flipped < 8  # both flipped and unflipped crops occur


def test_augmentation_pads_label_with_ignore_and_is_seeded():
  image = np.full((10, 10, 3), 200, np.uint8)
  label = np.full((10, 10), 3001, np.int32)
  batch = padded_batch([(image, label)])
  draws = augment.random_draws(tf.constant([1, 2]))[None]
  out_image, out_label = augment.random_scale_crop_flip(
      *batch, draws, crop_size=(32, 32), min_scale=1.0,
      max_scale=1.0, flip=False, ignore_value=255000)
  assert (out_label.numpy()[0, 10:] == 255000).all()
  assert (out_label.numpy()[0, :10, :10] == 3001).all()
  np.testing.assert_allclose(out_image.numpy()[0, 20, 20], augment.PAD_RGB)
  args = dict(crop_size=(32, 32), min_scale=0.5, max_scale=2.0, flip=True,
              ignore_value=255000)
  again = augment.random_scale_crop_flip(*batch, draws, **args)
  same = augment.random_scale_crop_flip(
      *batch, augment.random_draws(tf.constant([1, 2]))[None], **args)
  np.testing.assert_array_equal(again[1], same[1])
  with pytest.raises(ValueError, match='crop_size must be at least 2 x 2'):
    augment.random_scale_crop_flip(*batch, draws,
                                   **dict(args, crop_size=(1, 32)))


@pytest.fixture(scope='module')
def demo_config():
  return config_io.load_config(
      'demo', params_override='data.train.num_examples=16,'
      'data.eval.num_examples=4,data.train.batch_size=4')


def test_training_batches(demo_config):
  batch = next(iter(pipeline.build_dataset(demo_config)))
  assert batch[pipeline.IMAGE].shape == (4, 128, 128, 3)
  assert batch[keys.OFFSETS].shape == (4, 128, 128, 2)
  assert batch[keys.CENTER_HEATMAP].shape == (4, 128, 128)
  assert batch[keys.PANOPTIC].dtype == tf.int32
  heat = batch[keys.CENTER_HEATMAP].numpy()
  assert heat.max() == pytest.approx(1.0) and heat.min() >= 0.0
  again = next(iter(pipeline.build_dataset(demo_config)))
  np.testing.assert_array_equal(batch[keys.PANOPTIC], again[keys.PANOPTIC])


def test_training_batches_after_max_size():
  # max_size downscales first (float32 images in the batch, not uint8).
  config = config_io.load_config('demo', params_override=(
      'data.train.num_examples=8,data.train.batch_size=4,'
      'data.train.max_size=100'))
  batch = next(iter(pipeline.build_dataset(config)))
  image = batch[pipeline.IMAGE].numpy()
  assert image.shape == (4, 128, 128, 3)
  assert np.isfinite(image).all() and 0 <= image.min() <= image.max() <= 255
  # 128 -> 100 px, then scaled by at most 1.25: every crop holds padding.
  assert (batch[keys.PANOPTIC].numpy() == 255000).any(axis=(1, 2)).all()


def test_eval_batches_keep_original_size(demo_config):
  batches = list(pipeline.build_dataset(demo_config, training=False))
  assert len(batches) == 4  # eval batch 1, 4 examples, no repetition
  assert batches[0][pipeline.ORIGINAL_SIZE].numpy().tolist() == [[128, 128]]


def test_config_errors_before_any_data(demo_config, tmp_path):
  wrong = config_io.load_config('demo', params_override='model.num_classes=7')
  with pytest.raises(ConfigError, match="'model.num_classes' is 7 but "
                     "dataset 'synthetic' has 6"):
    pipeline.build_dataset(wrong)
  coco = config_io.load_config(
      'coco_r50_os32', params_override=f'data.train.path={tmp_path}/none')
  with pytest.raises(FileNotFoundError, match="'data.train.path'"):
    pipeline.build_dataset(coco)
  empty = config_io.load_config('demo',
                                params_override='data.train.num_examples=0')
  with pytest.raises(ConfigError, match="'data.train.num_examples'"):
    pipeline.build_dataset(empty)
  huge = config_io.load_config('demo',
                               params_override='data.label_divisor=100000')
  with pytest.raises(ConfigError, match='below 2\\^24'):
    pipeline.build_dataset(huge)


def test_under_distribute_datasets_from_function():
  result = run_python('''
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pdl_tf import config_io
    from pdl_tf.data import pipeline
    config = config_io.load_config('demo', params_override=
        'data.train.num_examples=8,data.train.batch_size=4')
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.build_dataset(config, ctx))
    batch = next(iter(dataset))
    shapes = [t.shape[0] for t in strategy.experimental_local_results(
        batch[pipeline.IMAGE])]
    print('PER_REPLICA', shapes)
  ''')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'PER_REPLICA [2, 2]' in result.stdout


@pytest.mark.parametrize('pipelines,pipeline_id,replicas', [
    (1, 0, 2),  # MirroredStrategy: one pipeline feeds both replicas
    (2, 1, 4),  # two workers of two replicas each, the second worker
])
def test_resumed_pipeline_skips_what_each_step_consumed(pipelines,
                                                        pipeline_id,
                                                        replicas):
  # Each step takes one per-replica batch per replica the pipeline feeds
  # (replicas / pipelines); a run resumed at step 1 must start with the
  # batch that step 2 of an uninterrupted run gets, not with one of step 1.
  config = config_io.load_config('demo', params_override=(
      'data.train.num_examples=16,data.train.batch_size=4,'
      'data.train.crop_size=[32,32]'))
  context = tf.distribute.InputContext(pipelines, pipeline_id, replicas)
  per_step = replicas // pipelines
  assert pipeline.pipeline_batches_per_step(context) == per_step
  straight = [b[keys.PANOPTIC].numpy() for b in pipeline.build_dataset(
      config, context).take(2 * per_step)]
  resumed = [b[keys.PANOPTIC].numpy() for b in pipeline.build_dataset(
      config, context, skip_steps=1).take(per_step)]
  for a, b in zip(straight[per_step:], resumed):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(straight[0], resumed[0])


def test_batches_per_step_without_a_context_and_uneven():
  assert pipeline.pipeline_batches_per_step(None) == 1
  with pytest.raises(ConfigError, match='3 replicas cannot be fed evenly '
                     'by 2 input pipelines'):
    pipeline.pipeline_batches_per_step(tf.distribute.InputContext(2, 0, 3))


def test_an_eval_image_larger_than_the_crop_is_named(tmp_path):
  # COCO images (640 wide) against a 65x65 eval crop: one line naming the
  # first image and the two settings, found by the commands' message_of.
  from helpers import coco_layout  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.formats import errors  # pylint: disable=g-import-not-at-top
  data = coco_layout(tmp_path / 'coco')
  config = config_io.load_config('coco_r50_os32', params_override=(
      f'data.eval.path={tmp_path}/coco,data.eval.crop_size=[65,65]'))
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    next(iter(pipeline.build_dataset(config, training=False)))
  first = data['images'][0]
  message = errors.message_of(error.value)
  assert message == (
      f"evaluation image {first['file_name']} is "
      f"{first['height']} x {first['width']} (height x width; "
      'data.eval.max_size 0), larger than data.eval.crop_size [65, 65]: '
      'raise data.eval.crop_size to at least its size (a multiple of the '
      'output stride, or one plus it) or set data.eval.max_size to at most '
      '65'), message


def test_resize_longest_side():
  image = tf.reshape(tf.range(10 * 40 * 3, dtype=tf.float32), [10, 40, 3])
  label = tf.reshape(tf.range(10 * 40), [10, 40])
  small_image, small_label = augment.resize_longest_side(image, label, 20)
  assert small_image.shape == (5, 20, 3) and small_label.shape == (5, 20)
  # Nearest neighbour at scale 1/2 (half-pixel centres): source pixel
  # (2y + 1, 2x + 1) -> values 40 (2y + 1) + 2x + 1.
  np.testing.assert_array_equal(
      small_label, 40 * (2 * np.arange(5)[:, None] + 1) +
      2 * np.arange(20)[None] + 1)
  for max_size in (0, 40, 100):  # never, exactly the size, larger
    same_image, same_label = augment.resize_longest_side(image, label,
                                                         max_size)
    np.testing.assert_array_equal(same_image, image)
    np.testing.assert_array_equal(same_label, label)


def test_generator_gate_waits_for_loads_then_refuses():
  gate = sources._GeneratorGate()  # pylint: disable=protected-access
  started, release = threading.Event(), threading.Event()

  class SlowSource:
    def load(self):
      started.set()
      release.wait(10)
      return 'example'

  results = []
  loader = threading.Thread(target=lambda: results.append(
      gate.load(SlowSource())))
  loader.start()
  assert started.wait(10)
  closer = threading.Thread(target=gate.close)
  closer.start()
  time.sleep(0.2)
  assert closer.is_alive()  # waits for the load in flight
  release.set()
  closer.join(10)
  loader.join(10)
  assert not closer.is_alive() and results == ['example']
  assert gate.load(SlowSource()) is None  # closed: no load at all


@pytest.mark.parametrize('cache', ['true', 'false'])
def test_exit_with_a_live_iterator_does_not_hang(cache):
  # tf.data reads the synthetic scenes through a Python generator; a program
  # that exited with an iterator mid-epoch used to hang in the iterator's
  # deletion during finalization (4 of 4 cached and 3 of 3 uncached tries
  # before sources._GeneratorGate). TimeoutExpired here means it hung.
  result = run_python(f'''
      from pdl_tf import config_io
      from pdl_tf.data import pipeline
      config = config_io.load_config(
          'demo', params_override='data.train.cache={cache}')
      iterator = iter(pipeline.build_dataset(config))
      for _ in range(5):
        next(iterator)
      print('exiting')
  ''', timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'exiting' in result.stdout
