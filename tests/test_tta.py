"""Test-time augmentation: identity at one scale, flip handling, scales."""

import numpy as np
import pytest
import tensorflow as tf

from pdl_tf import keys
from pdl_tf.evaluation import tta
from pdl_tf.model.panoptic_deeplab import PanopticDeepLab


class PointwiseModel:
  """Outputs computed pixel by pixel from the input, so flips and resizes
  commute with the model: logits = channels 0..2, heatmap = channel 0,
  offsets = (dy, dx) = (channel 1, channel 2)."""
  output_stride = 16

  def __call__(self, images, training=False):
    return {keys.SEMANTIC_LOGITS: images,
            keys.CENTER_HEATMAP: images[..., :1],
            keys.CENTER_OFFSETS: images[..., 1:3]}


def test_scaled_size_keeps_the_convention():
  assert tta.scaled_size(1025, 0.5, 16) == 513
  assert tta.scaled_size(1024, 0.75, 16) == 768
  assert tta.scaled_size(1025, 1.75, 32) == 1793
  assert tta.scaled_size(64, 0.1, 32) == 32  # never below one stride


def test_single_scale_without_flip_is_the_model():
  model = PanopticDeepLab(num_classes=4, backbone='tiny', aspp_channels=8,
                          semantic_decoder_channels=8,
                          instance_decoder_channels=8,
                          semantic_head_channels=8, instance_head_channels=8)
  images = tf.random.uniform([2, 64, 96, 3], 0, 255, seed=2)
  plain = model(images, training=False)
  result = tta.predict_with_tta(model, images)
  np.testing.assert_allclose(tf.nn.softmax(result[keys.SEMANTIC_LOGITS]),
                             tf.nn.softmax(plain[keys.SEMANTIC_LOGITS]),
                             atol=1e-5)
  for name in (keys.CENTER_HEATMAP, keys.CENTER_OFFSETS):
    np.testing.assert_allclose(result[name], plain[name], atol=1e-5)


def test_flip_negates_dx_and_keeps_the_rest():
  # The pointwise model's dx is the input's channel 2, whatever the flip: the
  # flipped pass, flipped back and negated, gives -dx, so the average of the
  # plain and flipped passes is 0; dy, heatmap and probabilities are kept.
  images = tf.random.uniform([1, 32, 48, 3], seed=3)
  result = tta.predict_with_tta(PointwiseModel(), images, flip=True)
  np.testing.assert_allclose(result[keys.CENTER_OFFSETS][..., 1], 0.0,
                             atol=1e-6)
  np.testing.assert_allclose(result[keys.CENTER_OFFSETS][..., 0],
                             images[..., 1], atol=1e-6)
  np.testing.assert_allclose(result[keys.CENTER_HEATMAP], images[..., :1],
                             atol=1e-6)
  np.testing.assert_allclose(tf.nn.softmax(result[keys.SEMANTIC_LOGITS]),
                             tf.nn.softmax(images), atol=1e-6)


def test_scales_of_a_constant_image_agree():
  # On a constant image every scale predicts the same constants; offsets are
  # rescaled back to input pixels: a pass at scale s sees offsets c in its
  # own pixels, worth c * (H - 1) / (h - 1) input pixels.
  images = tf.fill([1, 33, 65, 3], 0.5)
  result = tta.predict_with_tta(PointwiseModel(), images, scales=(0.5, 1.0))
  np.testing.assert_allclose(result[keys.CENTER_HEATMAP], 0.5, atol=1e-6)
  dy_scale = np.mean([(33 - 1) / (17 - 1), 1.0])
  dx_scale = np.mean([(65 - 1) / (33 - 1), 1.0])
  np.testing.assert_allclose(result[keys.CENTER_OFFSETS][..., 0],
                             0.5 * dy_scale, atol=1e-6)
  np.testing.assert_allclose(result[keys.CENTER_OFFSETS][..., 1],
                             0.5 * dx_scale, atol=1e-6)


def test_no_scales_is_an_error():
  with pytest.raises(ValueError, match='at least one scale'):
    tta.predict_with_tta(PointwiseModel(), tf.zeros([1, 32, 32, 3]), ())
