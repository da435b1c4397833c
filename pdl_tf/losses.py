"""Panoptic-DeepLab losses: bootstrapped CE, center MSE, offset L1.

Every loss is first reduced to one value per image, then summed over the
local batch and divided by the *global* batch size. Under tf.distribute each
replica therefore returns its share of the global mean, and the gradients
summed across replicas are exactly the gradients of the global mean. With
``global_batch_size=None`` the local batch size is used (plain mean).

Per-image normalization (the convention of the authors' TF2 code, deeplab2):
a weighted per-pixel loss is summed and divided by the number of pixels that
count (weight > 0 among the selected pixels); an image with no such pixel
contributes 0.
"""

import tensorflow as tf

from pdl_tf import keys

DEFAULT_LOSS_WEIGHTS = {keys.SEMANTIC_LOSS: 1.0, keys.CENTER_LOSS: 200.0,
                        keys.OFFSET_LOSS: 0.01}


def _flatten_per_image(tensor):
  """[B, H, W, ...] -> [B, H*W*...] float32."""
  return tf.reshape(tf.cast(tensor, tf.float32), [tf.shape(tensor)[0], -1])


def _num_pixels(tensor):
  """H*W as a Python int when static (XLA needs a constant top-k size)."""
  static = tensor.shape[1:3]
  if static.is_fully_defined():
    return static[0] * static[1]
  return tf.shape(tensor)[1] * tf.shape(tensor)[2]


def _reduce_over_batch(per_image, global_batch_size):
  """Sum of per-image losses divided by the global batch size."""
  if global_batch_size is None:
    global_batch_size = tf.shape(per_image)[0]
  return tf.reduce_sum(per_image) / tf.cast(global_batch_size, tf.float32)


def _masked_mean(loss, counts):
  """Per image: sum(loss) / number of counted pixels (0 when none count).

  Not ``divide_no_nan``: a NaN in the loss must stay NaN, never become 0.
  """
  return tf.reduce_sum(loss, axis=1) / tf.maximum(
      tf.reduce_sum(counts, axis=1), 1.0)


def bootstrapped_cross_entropy(labels, logits, weights, *, ignore_label=255,
                               top_k_percent=0.2, global_batch_size=None):
  """Weighted bootstrapped cross entropy (DeeperLab, Panoptic-DeepLab).

  Per image, the pixel-wise softmax cross entropy is multiplied by the pixel
  weights (0 on ``ignore_label``), the ``round(top_k_percent * H * W)`` largest
  weighted losses are kept, and their sum is divided by how many of the kept
  pixels have a weight > 0.

  Args:
    labels: int [B, H, W] semantic labels; ``ignore_label`` is ignored.
    logits: float [B, H, W, C].
    weights: float [B, H, W] per-pixel weights (e.g. 3 on small instances).
    ignore_label: label value that contributes nothing.
    top_k_percent: fraction in (0, 1] of pixels kept per image.
    global_batch_size: see the module docstring.

  Returns:
    float32 scalar.
  """
  if not 0.0 < top_k_percent <= 1.0:
    raise ValueError(f'top_k_percent must be in (0, 1], got {top_k_percent}.')
  labels = tf.cast(labels, tf.int32)
  valid = tf.not_equal(labels, ignore_label)
  safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
  pixel_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
      safe_labels, tf.cast(logits, tf.float32))
  weights = tf.cast(weights, tf.float32) * tf.cast(valid, tf.float32)
  pixel_loss = _flatten_per_image(pixel_loss * weights)
  counted = _flatten_per_image(tf.cast(weights > 0, tf.float32))
  if top_k_percent < 1.0:
    num_pixels = _num_pixels(labels)
    if isinstance(num_pixels, int):
      k = max(1, int(round(top_k_percent * num_pixels)))
    else:
      k = tf.maximum(1, tf.cast(tf.math.round(
          top_k_percent * tf.cast(num_pixels, tf.float32)), tf.int32))
    pixel_loss, indices = tf.math.top_k(pixel_loss, k=k, sorted=False)
    counted = tf.gather(counted, indices, batch_dims=1)
  return _reduce_over_batch(_masked_mean(pixel_loss, counted),
                            global_batch_size)


def center_loss(heatmap_true, heatmap_pred, weights, *,
                global_batch_size=None):
  """Mean squared error on the center heatmap, weighted per pixel.

  Args:
    heatmap_true: float [B, H, W] or [B, H, W, 1] Gaussian targets.
    heatmap_pred: float, same number of elements as heatmap_true.
    weights: float [B, H, W] (0 on crowd and ignore).
    global_batch_size: see the module docstring.

  Returns:
    float32 scalar.
  """
  error = _flatten_per_image(heatmap_pred) - _flatten_per_image(heatmap_true)
  weights = _flatten_per_image(weights)
  return _reduce_over_batch(
      _masked_mean(tf.square(error) * weights,
                   tf.cast(weights > 0, tf.float32)),
      global_batch_size)


def offset_loss(offsets_true, offsets_pred, weights, *,
                global_batch_size=None):
  """L1 on center offsets, averaged over (dy, dx) and over weighted pixels.

  Args:
    offsets_true: float [B, H, W, 2] (dy, dx) targets.
    offsets_pred: float [B, H, W, 2].
    weights: float [B, H, W] (1 on non-crowd thing pixels, 0 elsewhere).
    global_batch_size: see the module docstring.

  Returns:
    float32 scalar.
  """
  error = tf.abs(tf.cast(offsets_pred, tf.float32) -
                 tf.cast(offsets_true, tf.float32))
  pixel_loss = _flatten_per_image(tf.reduce_mean(error, axis=-1))
  weights = _flatten_per_image(weights)
  return _reduce_over_batch(
      _masked_mean(pixel_loss * weights, tf.cast(weights > 0, tf.float32)),
      global_batch_size)


def panoptic_deeplab_loss(outputs, targets, *, ignore_label=255,
                          top_k_percent=0.2, loss_weights=None,
                          global_batch_size=None):
  """All Panoptic-DeepLab losses and their weighted sum.

  Args:
    outputs: model outputs keyed by ``keys.SEMANTIC_LOGITS`` [B,H,W,C],
      ``keys.CENTER_HEATMAP`` [B,H,W,1] and ``keys.CENTER_OFFSETS`` [B,H,W,2].
    targets: keyed by ``keys.SEMANTIC``, ``keys.SEMANTIC_WEIGHTS``,
      ``keys.CENTER_HEATMAP``, ``keys.CENTER_WEIGHTS``, ``keys.OFFSETS`` and
      ``keys.OFFSET_WEIGHTS`` (as generated by the input pipeline).
    ignore_label: semantic label to ignore.
    top_k_percent: bootstrapping fraction for the semantic loss.
    loss_weights: dict of weights per loss term; defaults 1 / 200 / 0.01.
    global_batch_size: see the module docstring.

  Returns:
    dict of float32 scalars: ``keys.SEMANTIC_LOSS``, ``keys.CENTER_LOSS``,
    ``keys.OFFSET_LOSS`` (unweighted) and ``keys.TOTAL_LOSS`` (weighted sum).
  """
  unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
  if unknown:
    raise ValueError(f'Unknown loss_weights keys {sorted(unknown)}; known: '
                     f'{sorted(DEFAULT_LOSS_WEIGHTS)}.')
  loss_weights = dict(DEFAULT_LOSS_WEIGHTS, **(loss_weights or {}))
  losses = {
      keys.SEMANTIC_LOSS: bootstrapped_cross_entropy(
          targets[keys.SEMANTIC], outputs[keys.SEMANTIC_LOGITS],
          targets[keys.SEMANTIC_WEIGHTS], ignore_label=ignore_label,
          top_k_percent=top_k_percent, global_batch_size=global_batch_size),
      keys.CENTER_LOSS: center_loss(
          targets[keys.CENTER_HEATMAP], outputs[keys.CENTER_HEATMAP],
          targets[keys.CENTER_WEIGHTS], global_batch_size=global_batch_size),
      keys.OFFSET_LOSS: offset_loss(
          targets[keys.OFFSETS], outputs[keys.CENTER_OFFSETS],
          targets[keys.OFFSET_WEIGHTS], global_batch_size=global_batch_size),
  }
  losses[keys.TOTAL_LOSS] = tf.add_n(
      [loss_weights[name] * losses[name] for name in keys.LOSS_TERMS])
  return losses
