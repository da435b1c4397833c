"""Losses against a plain numpy oracle and hand-worked tiny cases."""

import numpy as np
import pytest
import tensorflow as tf

from pdl_tf import keys
from pdl_tf import losses


# ---------------------------------------------------------------- oracle ---
def np_bootstrapped_ce(labels, logits, weights, ignore_label, top_k_percent,
                       global_batch):
  total = 0.0
  for b in range(labels.shape[0]):
    z = logits[b].reshape(-1, logits.shape[-1]).astype(np.float64)
    y = labels[b].reshape(-1)
    w = weights[b].reshape(-1).astype(np.float64)
    valid = y != ignore_label
    w = np.where(valid, w, 0.0)
    log_softmax = z - z.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    ce = -log_softmax[np.arange(len(y)), np.where(valid, y, 0)]
    pixel = ce * w
    k = max(1, int(round(top_k_percent * len(y))))
    order = sorted(range(len(y)), key=lambda i: -pixel[i])[:k]
    counted = sum(1 for i in order if w[i] > 0)
    total += sum(pixel[i] for i in order) / max(counted, 1)
  return total / global_batch


def np_weighted_mean(pixel_loss, weights, global_batch):
  total = 0.0
  for b in range(pixel_loss.shape[0]):
    p, w = pixel_loss[b].reshape(-1), weights[b].reshape(-1)
    total += (p * w).sum() / max((w > 0).sum(), 1)
  return total / global_batch


def random_case(seed, batch=2, height=6, width=5, classes=4):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, classes, (batch, height, width)).astype(np.int32)
  labels[rng.random(labels.shape) < 0.2] = 255
  logits = rng.normal(size=(batch, height, width, classes)).astype(np.float32)
  weights = rng.choice([1.0, 3.0], size=labels.shape).astype(np.float32)
  return labels, logits, weights


# ------------------------------------------------------ bootstrapped CE ---
@pytest.mark.parametrize('top_k_percent', [1.0, 0.5, 0.2, 0.01])
@pytest.mark.parametrize('seed', [0, 1])
def test_bootstrapped_ce_matches_numpy(top_k_percent, seed):
  labels, logits, weights = random_case(seed)
  got = losses.bootstrapped_cross_entropy(
      labels, logits, weights, top_k_percent=top_k_percent)
  want = np_bootstrapped_ce(labels, logits, weights, 255, top_k_percent, 2)
  np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_bootstrapped_ce_hand_worked():
  # One image, 4 pixels, 2 classes. Logits (0, 0) give CE = ln 2 everywhere,
  # except pixel 1 whose logits (0, ln 3) with label 0 give CE = ln 4.
  # Weights (1, 1, 3, 1); pixel 3 is ignored (label 255, weight 0).
  # Weighted losses: ln2, ln4, 3 ln2, 0 -> top 50% (k=2): 3 ln2 and ln4 = 2 ln2
  # -> sum 5 ln2 over 2 counted pixels = 2.5 ln2.
  logits = np.zeros([1, 1, 4, 2], np.float32)
  logits[0, 0, 1, 1] = np.log(3.0)
  labels = np.array([[[0, 0, 1, 255]]], np.int32)
  weights = np.array([[[1.0, 1.0, 3.0, 1.0]]], np.float32)
  got = losses.bootstrapped_cross_entropy(labels, logits, weights,
                                          top_k_percent=0.5)
  np.testing.assert_allclose(got.numpy(), 2.5 * np.log(2.0), rtol=1e-6)
  # With k = all pixels, the ignored pixel is selected but not counted:
  # (ln2 + ln4 + 3 ln2) / 3 = 6 ln2 / 3.
  got = losses.bootstrapped_cross_entropy(labels, logits, weights,
                                          top_k_percent=1.0)
  np.testing.assert_allclose(got.numpy(), 2.0 * np.log(2.0), rtol=1e-6)


def test_bootstrapped_ce_all_ignored_is_zero_not_nan():
  labels = np.full([1, 2, 2], 255, np.int32)
  got = losses.bootstrapped_cross_entropy(
      labels, np.zeros([1, 2, 2, 3], np.float32), np.ones([1, 2, 2]))
  assert got.numpy() == 0.0


def test_nan_logits_stay_nan():
  labels, logits, weights = random_case(0)
  logits[0, 0, 0, 0] = np.nan
  got = losses.bootstrapped_cross_entropy(labels, logits, weights,
                                          top_k_percent=1.0)
  assert np.isnan(got.numpy())


def test_bad_top_k_percent():
  labels, logits, weights = random_case(0)
  with pytest.raises(ValueError, match='top_k_percent'):
    losses.bootstrapped_cross_entropy(labels, logits, weights,
                                      top_k_percent=0.0)


# ------------------------------------------------------- center, offset ---
def test_center_loss_matches_numpy():
  rng = np.random.default_rng(3)
  true = rng.random([3, 5, 7]).astype(np.float32)
  pred = rng.random([3, 5, 7, 1]).astype(np.float32)
  weights = (rng.random([3, 5, 7]) > 0.3).astype(np.float32)
  weights[2] = 0.0  # an image with no counted pixel contributes 0
  got = losses.center_loss(true, pred, weights)
  want = np_weighted_mean((pred[..., 0] - true) ** 2, weights, 3)
  np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_offset_loss_hand_worked():
  # Two thing pixels with errors (|1|+|3|)/2 = 2 and (|0|+|2|)/2 = 1; the
  # third pixel has weight 0 and a huge error that must not count.
  true = np.zeros([1, 1, 3, 2], np.float32)
  pred = np.array([[[[1.0, -3.0], [0.0, 2.0], [100.0, 100.0]]]], np.float32)
  weights = np.array([[[1.0, 1.0, 0.0]]], np.float32)
  got = losses.offset_loss(true, pred, weights)
  np.testing.assert_allclose(got.numpy(), 1.5, rtol=1e-6)


def test_offset_loss_matches_numpy():
  rng = np.random.default_rng(4)
  true = rng.normal(size=[2, 4, 4, 2]).astype(np.float32)
  pred = rng.normal(size=[2, 4, 4, 2]).astype(np.float32)
  weights = (rng.random([2, 4, 4]) > 0.5).astype(np.float32)
  got = losses.offset_loss(true, pred, weights)
  want = np_weighted_mean(np.abs(pred - true).mean(-1), weights, 2)
  np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


# ----------------------------------------------------------- total loss ---
def make_outputs_and_targets(seed):
  labels, logits, weights = random_case(seed)
  rng = np.random.default_rng(seed + 10)
  shape = labels.shape
  outputs = {keys.SEMANTIC_LOGITS: logits,
             keys.CENTER_HEATMAP: rng.random(shape + (1,)).astype(np.float32),
             keys.CENTER_OFFSETS: rng.normal(size=shape + (2,)).astype(
                 np.float32)}
  targets = {keys.SEMANTIC: labels, keys.SEMANTIC_WEIGHTS: weights,
             keys.CENTER_HEATMAP: rng.random(shape).astype(np.float32),
             keys.CENTER_WEIGHTS: np.ones(shape, np.float32),
             keys.OFFSETS: rng.normal(size=shape + (2,)).astype(np.float32),
             keys.OFFSET_WEIGHTS: (rng.random(shape) > 0.5).astype(
                 np.float32)}
  return outputs, targets


def test_total_is_weighted_sum_and_global_batch_scales():
  outputs, targets = make_outputs_and_targets(5)
  result = losses.panoptic_deeplab_loss(outputs, targets, top_k_percent=0.5)
  total = (result[keys.SEMANTIC_LOSS] + 200 * result[keys.CENTER_LOSS] +
           0.01 * result[keys.OFFSET_LOSS])
  np.testing.assert_allclose(result[keys.TOTAL_LOSS], total, rtol=1e-6)
  # Local batch 2 of a global batch 8: every term is a quarter of the mean.
  scaled = losses.panoptic_deeplab_loss(outputs, targets, top_k_percent=0.5,
                                        global_batch_size=8)
  for name in keys.LOSS_TERMS + (keys.TOTAL_LOSS,):
    np.testing.assert_allclose(scaled[name], result[name] / 4, rtol=1e-6)


def test_custom_weights_and_unknown_weight_key():
  outputs, targets = make_outputs_and_targets(6)
  result = losses.panoptic_deeplab_loss(
      outputs, targets, loss_weights={keys.CENTER_LOSS: 0.0})
  np.testing.assert_allclose(
      result[keys.TOTAL_LOSS],
      result[keys.SEMANTIC_LOSS] + 0.01 * result[keys.OFFSET_LOSS], rtol=1e-6)
  with pytest.raises(ValueError, match='heatmap_loss'):
    losses.panoptic_deeplab_loss(outputs, targets,
                                 loss_weights={'heatmap_loss': 1.0})


def test_xla_matches_eager():
  outputs, targets = make_outputs_and_targets(7)
  eager = losses.panoptic_deeplab_loss(outputs, targets)
  compiled = tf.function(losses.panoptic_deeplab_loss, jit_compile=True)(
      outputs, targets)
  for name in eager:
    np.testing.assert_allclose(compiled[name], eager[name], rtol=1e-5)
