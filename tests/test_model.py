"""The network: shapes, parameter count, serialization, precision, errors."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from pdl_tf import config_io
from pdl_tf import keys
from pdl_tf.config import ConfigError
from pdl_tf.model import backbones
from pdl_tf.model import factory
from pdl_tf.model.common import layers
from pdl_tf.model.common import names as model_names
from pdl_tf.model import panoptic_deeplab
from pdl_tf.model.panoptic_deeplab import PanopticDeepLab

SMALL_HEADS = dict(aspp_channels=16, semantic_decoder_channels=16,
                   semantic_low_level_channels=(8, 8),
                   instance_decoder_channels=8,
                   instance_low_level_channels=(8, 8),
                   semantic_head_channels=16, instance_head_channels=8)


def trainable_count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def assert_output_shapes(outputs, batch, height, width, num_classes):
  assert outputs[keys.SEMANTIC_LOGITS].shape == (batch, height, width,
                                                 num_classes)
  assert outputs[keys.CENTER_HEATMAP].shape == (batch, height, width, 1)
  assert outputs[keys.CENTER_OFFSETS].shape == (batch, height, width, 2)
  for value in outputs.values():
    assert value.dtype == tf.float32


@pytest.mark.slow
@pytest.mark.parametrize('backbone,output_stride', [
    ('resnet50', 32), ('resnet50', 16), ('resnet101', 32),
    ('mobilenet_v3_large', 16), ('mobilenet_v3_small', 32), ('tiny', 16),
    ('tiny', 32)])
def test_output_shapes_per_backbone(backbone, output_stride):
  model = PanopticDeepLab(num_classes=7, backbone=backbone,
                          output_stride=output_stride, **SMALL_HEADS)
  # A multiple of the stride and the "multiple plus one" convention.
  sizes = [(2 * output_stride, 3 * output_stride),
           (2 * output_stride + 1, 3 * output_stride + 1)]
  for height, width in sizes:
    for batch in (1, 3):
      outputs = model(tf.zeros([batch, height, width, 3]), training=False)
      assert_output_shapes(outputs, batch, height, width, 7)


def test_an_input_size_off_the_stride_is_refused_by_name():
  model = PanopticDeepLab(num_classes=7, backbone='tiny', output_stride=16,
                          **SMALL_HEADS)
  with pytest.raises(ValueError, match='Image width 100 must be a multiple '
                     'of the output stride 16 or a multiple plus one '
                     '\\(e.g. 96, 97, 112 or 113\\); pad or resize'):
    model(tf.zeros([1, 64, 100, 3]))
  assert model_names.input_size_error((65, 129), 16) is None
  assert model_names.input_size_error((66, 64), 32) == (
      'height 66 must be a multiple of the output stride 32 or a multiple '
      'plus one (e.g. 64, 65, 96 or 97)')


def test_published_widths_and_multigrid_build():
  model = PanopticDeepLab(num_classes=19, backbone='resnet50',
                          output_stride=16, multigrid=(1, 2, 4))
  outputs = model(tf.zeros([1, 65, 97, 3]))
  assert_output_shapes(outputs, 1, 65, 97, 19)


# ------------------------------------------------------- parameter count ---
def _conv_bn(k, cin, cout):
  return k * k * cin * cout + 2 * cout  # no conv bias; BN gamma + beta


def _separable(k, cin, cout):
  return k * k * cin + 2 * cin + _conv_bn(1, cin, cout)


def _aspp(cin, c, num_rates=3):
  return (_conv_bn(1, cin, c) + num_rates * _conv_bn(3, cin, c) +
          _conv_bn(1, cin, c) + _conv_bn(1, (num_rates + 2) * c, c))


def _decoder(high, aspp, os8, os4, projections, channels):
  return (_aspp(high, aspp) + _conv_bn(1, os8, projections[0]) +
          _separable(5, aspp + projections[0], channels) +
          _conv_bn(1, os4, projections[1]) +
          _separable(5, channels + projections[1], channels))


def _head(cin, channels, outputs):
  return _separable(5, cin, channels) + channels * outputs + outputs


def test_resnet50_os32_parameter_count_matches_published_architecture():
  # ResNet-50 without its classifier: 25,557,032 published weights minus the
  # 2048x1000 + 1000 fc layer. Heads and decoders from the published widths:
  # ASPP 256 (rates 3/6/9), semantic decoder 256 (projections 64/32), instance
  # decoder 128 (projections 32/16), heads 256 / 32 / 32 channels.
  resnet50 = 25_557_032 - (2048 * 1000 + 1000)
  expected = (resnet50 +
              _decoder(2048, 256, 512, 256, (64, 32), 256) +
              _decoder(2048, 256, 512, 256, (32, 16), 128) +
              _head(256, 256, 19) + _head(128, 32, 1) + _head(128, 32, 2))
  model = PanopticDeepLab(num_classes=19, backbone='resnet50',
                          output_stride=32)
  model(tf.zeros([1, 64, 64, 3]))
  assert trainable_count(model.backbone) == resnet50
  assert abs(trainable_count(model) - expected) <= 0.02 * expected


# ------------------------------------------------------- serialization ---
def test_get_config_from_config_round_trip():
  model = PanopticDeepLab(num_classes=5, backbone='tiny', output_stride=16,
                          multigrid=None, **SMALL_HEADS)
  images = tf.random.uniform([2, 64, 48, 3], 0, 255, seed=1)
  outputs = model(images)
  config = json.loads(json.dumps(model.get_config()))
  clone = PanopticDeepLab.from_config(config)
  clone(images)
  clone.set_weights(model.get_weights())
  cloned = clone(images)
  assert clone.get_config() == model.get_config()
  for name in keys.MODEL_OUTPUTS:
    np.testing.assert_allclose(cloned[name], outputs[name], atol=1e-6)


def test_multigrid_survives_round_trip():
  model = PanopticDeepLab(num_classes=3, backbone='resnet50', output_stride=16,
                          multigrid=(1, 2, 4), **SMALL_HEADS)
  clone = PanopticDeepLab.from_config(model.get_config())
  assert clone.get_config()['multigrid'] == [1, 2, 4]


# ------------------------------------------------------------ precision ---
@pytest.mark.parametrize('precision', ['mixed_float16', 'mixed_bfloat16'])
def test_mixed_precision(precision):
  model = PanopticDeepLab(num_classes=4, backbone='tiny', precision=precision,
                          **SMALL_HEADS)
  outputs = model(tf.random.uniform([1, 64, 64, 3], 0, 255))
  assert_output_shapes(outputs, 1, 64, 64, 4)
  compute = precision.split('_')[1]
  assert model.semantic_head.compute_dtype == compute
  assert model.backbone.layers[-1].compute_dtype == compute
  assert all(v.dtype == tf.float32 for v in model.trainable_weights)
  # The global policy is left as it was.
  assert tf_keras.mixed_precision.global_policy().name == 'float32'


# --------------------------------------------------------------- layers ---
def test_resize_align_corners_keeps_corners_and_midpoints():
  # 2x2 -> 3x3 with align_corners: corners kept, centre is the mean.
  x = tf.constant([[0.0, 2.0], [4.0, 6.0]])[None, :, :, None]
  y = layers.resize_align_corners(x, [3, 3])[0, :, :, 0].numpy()
  np.testing.assert_allclose(
      y, [[0, 1, 2], [2, 3, 4], [4, 5, 6]], atol=1e-6)


def test_upsample_offsets_rescales_values():
  # 3x3 grid -> 9x9: (9 - 1) / (3 - 1) = 4 per axis; 3x5 -> 9x9: x by 2.
  offsets = tf.ones([1, 3, 3, 2])
  np.testing.assert_allclose(
      panoptic_deeplab.upsample_offsets(offsets, [9, 9]), 4.0, atol=1e-6)
  offsets = tf.ones([1, 3, 5, 2])
  result = panoptic_deeplab.upsample_offsets(offsets, [9, 9]).numpy()
  np.testing.assert_allclose(result[..., 0], 4.0, atol=1e-6)
  np.testing.assert_allclose(result[..., 1], 2.0, atol=1e-6)


def test_aspp_pooling_works_for_any_size():
  aspp = layers.ASPP(channels=8, atrous_rates=(1, 2))
  for size in [(4, 4), (7, 11), (1, 1)]:
    assert aspp(tf.ones([2, *size, 5])).shape == (2, *size, 8)


def test_xla_forward_matches_eager():
  model = PanopticDeepLab(num_classes=3, backbone='tiny', **SMALL_HEADS)
  images = tf.random.uniform([2, 64, 96, 3], 0, 255, seed=3)
  eager = model(images, training=False)
  compiled = tf.function(lambda x: model(x, training=False),
                         jit_compile=True)(images)
  for name in keys.MODEL_OUTPUTS:
    np.testing.assert_allclose(compiled[name], eager[name], atol=1e-4,
                               rtol=1e-4)


# ---------------------------------------------------------- bad input ---
@pytest.fixture(scope='module')
def tiny_model():
  return PanopticDeepLab(num_classes=3, backbone='tiny', output_stride=16,
                         **SMALL_HEADS)


@pytest.mark.parametrize('images,error,match', [
    (tf.zeros([64, 64, 3]), ValueError, 'rank 3'),
    (tf.zeros([1, 64, 64, 4]), ValueError, '3 \\(RGB\\) channels; got 4'),
    (tf.zeros([1, 64, 64, 3], tf.uint8), TypeError, 'dtype uint8'),
    (tf.zeros([1, 50, 64, 3]), ValueError, 'height 50'),
    (tf.zeros([1, 64, 70, 3]), ValueError, 'width 70'),
])
def test_bad_images_raise_clear_errors(tiny_model, images, error, match):
  with pytest.raises(error, match=match):
    tiny_model(images)


@pytest.mark.parametrize('kwargs,match', [
    (dict(backbone='resnet18'), "Unknown backbone 'resnet18'"),
    (dict(output_stride=8), 'output_stride 8 is not supported'),
    (dict(output_stride=12), 'output_stride must be one of'),
    (dict(num_classes=0), 'num_classes'),
    (dict(precision='float64'), 'precision'),
])
def test_bad_constructor_arguments(kwargs, match):
  kwargs = dict(dict(num_classes=3, backbone='tiny'), **kwargs)
  with pytest.raises(ValueError, match=match):
    PanopticDeepLab(**kwargs)


# ------------------------------------------------- backbone checkpoint ---
def test_restore_backbone_from_local_checkpoint(tmp_path):
  source = PanopticDeepLab(num_classes=3, backbone='tiny', **SMALL_HEADS)
  source(tf.zeros([1, 64, 64, 3]))
  prefix = tf.train.Checkpoint(backbone=source.backbone).write(
      str(tmp_path / 'backbone'))
  target = PanopticDeepLab(num_classes=3, backbone='tiny', **SMALL_HEADS)
  target(tf.zeros([1, 64, 64, 3]))
  backbones.restore_backbone(target.backbone, prefix)
  for a, b in zip(source.backbone.weights, target.backbone.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # A directory holding checkpoints works too (its latest checkpoint).
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(backbone=source.backbone), str(tmp_path / 'dir'), 1)
  manager.save()
  backbones.restore_backbone(target.backbone, str(tmp_path / 'dir'))


def test_restore_backbone_errors(tmp_path):
  model = PanopticDeepLab(num_classes=3, backbone='tiny', **SMALL_HEADS)
  model(tf.zeros([1, 64, 64, 3]))
  with pytest.raises(FileNotFoundError, match='does not exist'):
    backbones.restore_backbone(model.backbone, str(tmp_path / 'missing'))
  other = backbones.build_backbone('mobilenet_v3_small', 32)
  prefix = tf.train.Checkpoint(backbone=other).write(str(tmp_path / 'mnv3'))
  with pytest.raises(ValueError, match='does not fit backbone'):
    backbones.restore_backbone(model.backbone, prefix)


def test_backbone_init_checkpoint_that_does_not_fit_is_one_line(tmp_path):
  """A backbone checkpoint of another width: one ConfigError line naming
  the checkpoint and the variables with both shapes (was a 244-line
  traceback with the values)."""
  narrow = backbones.build_backbone('tiny', 32, width_multiplier=0.5)
  narrow(tf.zeros([1, 64, 64, 3]))
  prefix = tf.train.Checkpoint(backbone=narrow).write(str(tmp_path / 'bb'))
  config = config_io.load_config('demo', params_override=(
      f'model.backbone.init_checkpoint={prefix}'))
  with pytest.raises(ConfigError) as error:
    factory.build_model(config.model)
  message = str(error.value)
  assert '\n' not in message and len(message) < 1000, message
  assert message.startswith(
      f"'model.backbone.init_checkpoint': checkpoint '{prefix}' does not fit "
      "backbone 'tiny_backbone': "), message
  assert ('backbone/layer_with_weights-0/_conv/kernel (checkpoint '
          "[3, 3, 3, 8], backbone 'tiny_backbone' [3, 3, 3, 16])"
          in message), message


@pytest.mark.slow
@pytest.mark.parametrize('name,make_classifier', [
    ('mobilenet_v3_small', lambda: __import__(
        'official.vision.modeling.backbones.mobilenet',
        fromlist=['MobileNet']).MobileNet('MobileNetV3Small')),
    ('resnet50', lambda: __import__(
        'official.vision.modeling.backbones.resnet',
        fromlist=['ResNet']).ResNet(50)),
])
def test_restores_model_garden_imagenet_layout(tmp_path, name,
                                               make_classifier):
  # Model Garden's ImageNet checkpoints hold its classification backbone
  # (ResNet / MobileNet) under 'backbone'. Write one with random weights and
  # check every weight of our (dilated, re-wrapped) backbone receives it.
  classifier = make_classifier()
  for variable in classifier.weights:
    variable.assign(tf.random.normal(variable.shape, seed=1))
  prefix = tf.train.Checkpoint(backbone=classifier).write(
      str(tmp_path / name))
  ours = backbones.build_backbone(name, output_stride=16)
  backbones.restore_backbone(ours, prefix)
  assert len(ours.weights) <= len(classifier.weights)
  for a, b in zip(ours.weights, classifier.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
@pytest.mark.parametrize('backbone,output_stride,high_channels', [
    ('mobilenet_v3_large', 16, 960), ('mobilenet_v3_small', 32, 576),
    ('tiny', 16, 128)])
def test_every_weight_gets_a_gradient(backbone, output_stride, high_channels):
  # The published MobileNetV3 high-level feature is the final 1x1 conv
  # (960 / 576 channels); no weight of the network may be left unused.
  model = PanopticDeepLab(num_classes=3, backbone=backbone,
                          output_stride=output_stride, **SMALL_HEADS)
  images = tf.random.uniform([1, 64, 64, 3], 0, 255)
  with tf.GradientTape() as tape:
    outputs = model(images, training=True)
    loss = tf.add_n([tf.reduce_mean(v) for v in outputs.values()])
  gradients = tape.gradient(loss, model.trainable_variables)
  unused = [v.name for v, g in zip(model.trainable_variables, gradients)
            if g is None]
  assert not unused
  key = backbones.high_level_key(output_stride)
  assert model.backbone.output[key].shape[-1] == high_channels


def test_resumable_dropout_masks_follow_its_saved_call_count(tmp_path):
  drop = layers.ResumableDropout(0.5, seed=7)
  x = tf.ones([4, 64])
  np.testing.assert_array_equal(drop(x, training=False), x)  # inference
  first = drop(x, training=True).numpy()
  assert set(np.unique(first)) == {0.0, 2.0}  # kept values scaled by 2
  assert 0.3 < (first == 0).mean() < 0.7
  checkpoint = tf.train.Checkpoint(drop=drop)
  path = checkpoint.save(str(tmp_path / 'ckpt'))  # after 1 training call
  second = drop(x, training=True).numpy()
  assert (second != first).any()  # a new mask per call
  checkpoint.restore(path).assert_existing_objects_matched()
  np.testing.assert_array_equal(drop(x, training=True), second)
  other_seed = layers.ResumableDropout(0.5, seed=8)
  assert (other_seed(x, training=True).numpy() != first).any()
  with pytest.raises(ValueError, match='dropout rate'):
    layers.ResumableDropout(1.0, seed=0)
