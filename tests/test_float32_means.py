"""Issue 23 fault 4: every reduction over pixels accumulates in float32
under mixed_float16 (a float16 tf.reduce_mean on CPU returns 0.25 for a
mean of 0.80 over 129x257 pixels). Each layer that pools is checked under
mixed_float16 against a float32 twin with the same weights, at the feature
size it sees for the published 1025x2049 input."""

import numpy as np
import pytest
import tensorflow as tf

from pdl_tf import keys
from pdl_tf import losses
from pdl_tf.model import backbones
from pdl_tf.model.backbones import deeplab2 as deeplab2_backbones
from pdl_tf.model.common import layers
from pdl_tf.model.panoptic_deeplab import _policy_scope  # pylint: disable=protected-access
from pdl_tf.model.panoptic_deeplab import PanopticDeepLab

OS8 = (129, 257)  # the stride-8 features of 1025x2049
OS16 = (65, 129)  # the ASPP input at output stride 16


def features(size, channels, seed=0):
  """float32 [1, h, w, channels] with mean 0.8 (post-activation-like)."""
  rng = np.random.default_rng(seed)
  return rng.uniform(0.0, 1.6, [1, *size, channels]).astype(np.float32)


def mixed_and_float32(make, inputs):
  """Outputs of ``make()`` built under mixed_float16 (float16 inputs) and
  of a float32 twin with the same weights (float32 inputs)."""
  with _policy_scope('mixed_float16'):
    mixed = make()
    got = mixed(tf.cast(inputs, tf.float16))
  with _policy_scope('float32'):
    twin = make()
    twin(inputs)
  twin.set_weights(mixed.get_weights())
  assert got.dtype == tf.float16
  return got.numpy().astype(np.float32), twin(inputs).numpy()


def assert_close(got, want):
  # float16 keeps ~3 decimal digits; the float16 mean was off by 70%.
  error = np.abs(got - want).max() / np.abs(want).max()
  assert error < 5e-3, error


def test_spatial_mean_accumulates_in_float32():
  x = features(OS8, 8)
  mean = layers.spatial_mean(tf.constant(x, tf.float16))
  assert mean.dtype == tf.float16 and mean.shape == [1, 1, 1, 8]
  want = x.astype(np.float16).astype(np.float64).mean(axis=(1, 2))
  np.testing.assert_allclose(mean.numpy()[:, 0, 0].astype(np.float64), want,
                             rtol=1e-3)


def test_model_garden_squeeze_excite_of_mobilenet_v3_large():
  with _policy_scope('mixed_float16'):
    backbone = backbones.build_backbone('mobilenet_v3_large', 16)
  excites = [block._squeeze_excitation for block in backbone.layers  # pylint: disable=protected-access
             if getattr(block, '_squeeze_excitation', None) is not None]
  assert len(excites) == 8  # MobileNetV3-Large's SE blocks
  assert all(type(e) is backbones.Float32MeanSqueezeExcitation  # pylint: disable=unidiomatic-typecheck
             for e in excites)
  config = excites[0].get_config()  # the stride-8 one, 72 channels
  del config['dtype']  # the policy of the scope it is rebuilt in
  make = lambda: backbones.Float32MeanSqueezeExcitation.from_config(config)
  got, want = mixed_and_float32(make, features(OS8, config['in_filters']))
  assert_close(got, want)


def test_deeplab2_squeeze_excite():
  make = lambda: deeplab2_backbones.SqueezeExcite(72, 24)
  got, want = mixed_and_float32(make, features(OS8, 72))
  assert_close(got, want)


class _PoolingASPP(tf.Module):
  """An inference-mode ASPP whose output comes from its image pooling
  alone: the kernels of the other branches are zero (built with one call
  at the size of ``inputs`` when first called)."""

  def __init__(self):
    super().__init__()
    self.aspp = layers.ASPP(channels=16, atrous_rates=(6, 12, 18))

  def __call__(self, x):
    if not self.aspp.built:
      self.aspp(x, training=False)
      for branch in self.aspp._branches:  # pylint: disable=protected-access
        branch.weights[0].assign(tf.zeros_like(branch.weights[0]))
    return self.aspp(x, training=False)

  def get_weights(self):
    return self.aspp.get_weights()

  def set_weights(self, values):
    self.aspp.set_weights(values)


def test_aspp_image_pooling():
  got, want = mixed_and_float32(_PoolingASPP, features(OS16, 32))
  assert np.abs(want).max() > 0.1  # the pooling reaches the output
  assert_close(got, want)


def test_losses_reduce_float16_outputs_in_float32():
  """At 1025x2049, float16 network outputs give the losses of the same
  values in float32 (numpy float64 oracle for the means)."""
  rng = np.random.default_rng(0)
  size = (1, 1025, 2049)
  outputs = {
      keys.SEMANTIC_LOGITS: rng.normal(0, 2, size + (4,)),
      keys.CENTER_HEATMAP: rng.uniform(0, 1, size + (1,)),
      keys.CENTER_OFFSETS: rng.normal(0, 8, size + (2,)),
  }
  targets = {
      keys.SEMANTIC: rng.integers(0, 4, size),
      keys.SEMANTIC_WEIGHTS: np.ones(size, np.float32),
      keys.CENTER_HEATMAP: rng.uniform(0, 1, size).astype(np.float32),
      keys.CENTER_WEIGHTS: np.ones(size, np.float32),
      keys.OFFSETS: rng.normal(0, 8, size + (2,)).astype(np.float32),
      keys.OFFSET_WEIGHTS: (rng.uniform(0, 1, size) < 0.5).astype(
          np.float32),
  }
  half = {k: tf.constant(v, tf.float16) for k, v in outputs.items()}
  got = losses.panoptic_deeplab_loss(half, targets)
  exact = {k: v.astype(np.float16).astype(np.float64)
           for k, v in outputs.items()}
  center = np.mean((exact[keys.CENTER_HEATMAP][..., 0] -
                    targets[keys.CENTER_HEATMAP]) ** 2)
  weights = targets[keys.OFFSET_WEIGHTS]
  offset = (np.abs(exact[keys.CENTER_OFFSETS] - targets[keys.OFFSETS]).mean(
      axis=-1) * weights).sum() / weights.sum()
  assert float(got[keys.CENTER_LOSS]) == pytest.approx(center, rel=1e-5)
  assert float(got[keys.OFFSET_LOSS]) == pytest.approx(offset, rel=1e-5)
  as_float32 = losses.panoptic_deeplab_loss(
      {k: tf.constant(v, tf.float32) for k, v in exact.items()}, targets)
  assert float(got[keys.SEMANTIC_LOSS]) == pytest.approx(
      float(as_float32[keys.SEMANTIC_LOSS]), rel=1e-6)


def test_a_traced_mixed_float16_network_takes_every_mean_in_float32():
  """What an export traces (tf.function of the model): every Mean op of a
  mixed_float16 MobileNetV3-Large Panoptic-DeepLab reads float32 (8
  squeeze-excites + 2 ASPP poolings)."""
  model = PanopticDeepLab(num_classes=3, backbone='mobilenet_v3_large',
                          output_stride=16, precision='mixed_float16',
                          aspp_channels=16, semantic_decoder_channels=16,
                          semantic_low_level_channels=(8, 8),
                          instance_decoder_channels=8,
                          instance_low_level_channels=(8, 8),
                          semantic_head_channels=16, instance_head_channels=8)
  graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
      tf.TensorSpec([1, 65, 65, 3], tf.float32)).graph
  means = [op for op in graph.get_operations() if op.type == 'Mean']
  assert len(means) == 10
  assert all(op.inputs[0].dtype == tf.float32 for op in means), [
      (op.name, op.inputs[0].dtype) for op in means]
