"""The exported graph: preprocessing, network, XLA merge, un-fitting.

``PanopticServingModule`` is a tf.Module with two signatures:

* ``serving_default``: ``image_bytes`` string [B] (JPEG/PNG/GIF/BMP/WebP,
  any sizes; TF Serving's REST API takes them as ``{"b64": ...}``), decoded
  by ``pdl_tf.data.decoding.image_decode`` exactly as the readers decode
  training and evaluation images, and turned upright by their EXIF
  orientation;
* ``serve_images``: ``images`` uint8 [B, H, W, 3] (any B >= 1, any H, W),
  taken as they are (upright: the sender decoded them).

Each image may have at most ``max_image_pixels`` pixels (checked on the
encoded header before decoding; InvalidArgument "too large: ..." above).
Both return, at each image's upright original size (a batch of differently
sized images is padded to the largest, see ``image_sizes``):
  ``panoptic`` int32 [B, H, W] (class * label_divisor + instance, -1 void),
  ``semantic`` int32 [B, H, W] (-1 outside the image),
  ``instance`` int32 [B, H, W] (class-agnostic id, 0 none),
  ``center_heatmap`` float32 [B, H, W],
  ``instance_scores`` float32 [B, top_k], ``instance_classes`` int32
  [B, top_k] (-1 empty slot; slot i is instance id i + 1),
  ``image_sizes`` int32 [B, 2], the original (height, width),
and with ``include_logits`` also ``semantic_logits`` float32
[B, input_h, input_w, C] at network input resolution with
``input_valid_sizes`` int32 [B, 2], its valid region.
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf import normalization
from pdl_tf import postprocess
from pdl_tf.data.decoding import image_decode
from pdl_tf.export import image_fit

IMAGE_BYTES = 'image_bytes'
IMAGES = 'images'
IMAGE_SIZES = 'image_sizes'
INPUT_VALID_SIZES = 'input_valid_sizes'
SERVE_IMAGES = 'serve_images'


def _check_batch(batch_input, name):
  check = tf.debugging.assert_positive(
      tf.shape(batch_input)[0],
      message=f'{name}: empty batch; send at least one image')
  with tf.control_dependencies([check]):
    return tf.identity(batch_input)


class PanopticServingModule(tf.Module):
  """Network + merge with in-graph preprocessing, ready for tf.saved_model.

  Args:
    model: a built PanopticDeepLab.
    input_size: (height, width) the network runs at; valid for the model's
      output stride.
    merge_arguments: keyword arguments of ``postprocess.panoptic_merge``.
    jit_compile_merge: compile the merge with XLA (the default); False
      exports the same graph without the must-compile attribute, for TF
      Serving builds without the XLA JIT.
    include_logits: also return the raw semantic logits.
    max_image_pixels: largest accepted height x width per image; bounds
      the memory of one request (bench/README.md).
  """

  def __init__(self, model, *, input_size, merge_arguments,
               jit_compile_merge=True, include_logits=False,
               max_image_pixels=image_decode.MAX_IMAGE_PIXELS):
    super().__init__(name='panoptic_deeplab_serving')
    self.model = model
    self.input_size = tuple(int(s) for s in input_size)
    self.pad_rgb = normalization.pad_rgb(
        model.get_config().get('input_normalization', 'imagenet'))
    self._merge = postprocess.merge_fn(jit_compile=jit_compile_merge,
                                       **merge_arguments)
    self._include_logits = include_logits
    self.max_image_pixels = int(max_image_pixels)
    self.serve_bytes = tf.function(
        self._serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])
    self.serve_images = tf.function(
        self._serve_images, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES)])

  def signatures(self):
    """The signature dict for ``tf.saved_model.save``."""
    return {'serving_default': self.serve_bytes.get_concrete_function(),
            SERVE_IMAGES: self.serve_images.get_concrete_function()}

  def predict_fitted(self, images, valid_sizes):
    """Network and merge on fitted images.

    Args:
      images: float32 [B, input_h, input_w, 3] in [0, 255].
      valid_sizes: int32 [B, 2], the valid region of each image.

    Returns:
      The network outputs and the merge outputs (``panoptic_merge`` keys) at
      input resolution, in one dict.
    """
    images = tf.ensure_shape(images, (None,) + self.input_size + (3,))
    outputs = self.model(images, training=False)
    merged = self._merge(outputs[keys.SEMANTIC_LOGITS],
                         outputs[keys.CENTER_HEATMAP],
                         outputs[keys.CENTER_OFFSETS], valid_sizes)
    return dict(outputs, **merged)

  def _fit_all(self, images):
    return tf.map_fn(
        lambda image: image_fit.fit_image(image, self.input_size,
                                          self.pad_rgb), images,
        fn_output_signature=(
            tf.TensorSpec(self.input_size + (3,), tf.float32),
            tf.TensorSpec([2], tf.int32)))

  def _serve_bytes(self, image_bytes):
    image_bytes = _check_batch(image_bytes, IMAGE_BYTES)

    def decode_and_fit(contents):
      image = image_decode.decode_image(contents, self.max_image_pixels)
      fitted, valid = image_fit.fit_image(image, self.input_size,
                                          self.pad_rgb)
      return fitted, valid, tf.shape(image)[:2]

    fitted, valid, original = tf.map_fn(
        decode_and_fit, image_bytes, fn_output_signature=(
            tf.TensorSpec(self.input_size + (3,), tf.float32),
            tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)))
    return self._finish(fitted, valid, original)

  def _serve_images(self, images):
    images = _check_batch(images, IMAGES)
    size = image_decode.too_large_check(tf.shape(images)[1:3],
                                        self.max_image_pixels, 'images')
    with tf.control_dependencies([size]):
      fitted, valid = self._fit_all(images)
    original = tf.tile(tf.shape(images)[None, 1:3], [tf.shape(images)[0], 1])
    return self._finish(fitted, valid, original)

  def _finish(self, fitted, valid, original):
    result = self.predict_fitted(fitted, valid)
    output_size = tf.reduce_max(original, axis=0)

    def unfit(value, fill):
      value = value[..., None] if value.shape.rank == 3 else value
      return tf.map_fn(
          lambda args: image_fit.unfit_map(*args, output_size, fill),
          (value, valid, original),
          fn_output_signature=tf.TensorSpec([None, None, value.shape[-1]],
                                            value.dtype))[..., 0]

    outputs = {
        keys.PANOPTIC: unfit(result[keys.PANOPTIC], postprocess.VOID),
        keys.SEMANTIC: unfit(result[keys.SEMANTIC], postprocess.VOID),
        keys.INSTANCE: unfit(result[keys.INSTANCE], 0),
        keys.CENTER_HEATMAP: unfit(result[keys.CENTER_HEATMAP], 0.0),
        keys.INSTANCE_SCORES: result[keys.INSTANCE_SCORES],
        postprocess.INSTANCE_CLASSES: result[postprocess.INSTANCE_CLASSES],
        IMAGE_SIZES: original,
    }
    if self._include_logits:
      outputs[keys.SEMANTIC_LOGITS] = result[keys.SEMANTIC_LOGITS]
      outputs[INPUT_VALID_SIZES] = valid
    return outputs
