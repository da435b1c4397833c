"""One interface over the four ways to run an exported model.

Each backend is an object with ``predict(image_bytes)``
taking one encoded image (JPEG/PNG bytes), and ``predict_batch(list of
image bytes)`` taking several (any sizes) in one call of the model where the
model allows it (SavedModel, TF Serving REST and gRPC; TFLite, whose input
size and batch are fixed at export, runs them one after the other), each
result returning numpy arrays at the image's original size: ``panoptic``,
``semantic``, ``instance`` int32
[H, W], ``center_heatmap`` float32 [H, W], ``instance_scores`` float32 [K]
and ``instance_classes`` int32 [K].

Backends: a local SavedModel folder (or a TF Serving base folder with
numbered versions: the highest is used), a local ``.tflite`` file, TF
Serving's REST API (``http://host:8501/v1/models/NAME``) or its gRPC API
(``host:8500`` and the model name).
"""

import base64
import contextlib
import json
import os
import urllib.error
import urllib.request

import numpy as np

from pdl_tf.serving import native_stderr

MAP_KEYS = ('panoptic', 'semantic', 'instance', 'center_heatmap')
VECTOR_KEYS = ('instance_scores', 'instance_classes')
_DTYPES = {'panoptic': np.int32, 'semantic': np.int32, 'instance': np.int32,
           'center_heatmap': np.float32, 'instance_scores': np.float32,
           'instance_classes': np.int32}


class ServingError(RuntimeError):
  """The model server answered with an error; the message is the server's."""


class ServerUnreachable(ServingError):
  """No answer from the model server at all (refused, unknown host, no
  route): every other image would fail the same way."""


def _single(outputs):
  """Batch-of-1 outputs -> per-image numpy arrays, cropped to image_sizes."""
  height, width = np.asarray(outputs['image_sizes'])[0]
  result = {}
  for key in MAP_KEYS:
    result[key] = np.asarray(outputs[key], _DTYPES[key])[0, :height, :width]
  for key in VECTOR_KEYS:
    result[key] = np.asarray(outputs[key], _DTYPES[key])[0]
  return result


def _split(outputs):
  """Batch outputs (numpy, [B, ...]) -> B per-image results, each cropped
  to its own ``image_sizes`` (a batch is padded to its largest image)."""
  return [_single({key: value[i:i + 1] for key, value in outputs.items()})
          for i in range(len(outputs['image_sizes']))]


def find_saved_model(path):
  """``path`` itself if it holds saved_model.pb, else its highest numbered
  sub-folder that does (TF Serving's model base path layout)."""
  if os.path.isfile(os.path.join(path, 'saved_model.pb')):
    return path
  versions = sorted((int(name) for name in os.listdir(path)
                     if name.isdigit() and os.path.isfile(
                         os.path.join(path, name, 'saved_model.pb'))))
  if not versions:
    raise FileNotFoundError(f'{path!r} holds no saved_model.pb, neither '
                            'itself nor in a numbered version folder.')
  return os.path.join(path, str(versions[-1]))


def check_uint8_images(images):
  """``images`` if it is what the ``serve_images`` signature takes: a uint8
  array (numpy or tf) [B, H, W, 3] of RGB values.

  The signature is typed uint8, but TensorFlow's Python call of a signature
  casts a numpy array of another dtype to uint8 without a check (float32
  1.7 becomes 1 and 300.0 becomes 44), so clients check first.

  Raises:
    TypeError: another dtype, or not an array; the message says how to
      convert.
    ValueError: not [B, H, W, 3].
  """
  dtype = getattr(images, 'dtype', None)
  if getattr(dtype, 'name', None) != 'uint8':
    raise TypeError(
        'images must be a uint8 array [B, H, W, 3] of RGB values 0-255, got '
        f'{dtype or type(images).__name__}; the serve_images signature takes '
        'uint8 only (TensorFlow would cast other dtypes silently: 1.7 -> 1, '
        '300.0 -> 44). Convert on purpose, e.g. '
        'np.clip(np.round(x), 0, 255).astype(np.uint8), or send the encoded '
        'file to serving_default.')
  shape = tuple(images.shape)
  if len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f'images must be [B, H, W, 3], got shape {shape}.')
  return images


class SavedModelBackend:
  """Runs the signatures of a local SavedModel: ``serving_default``
  (``predict``, encoded bytes) and ``serve_images`` (``predict_images``,
  uint8 arrays)."""

  def __init__(self, path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path = find_saved_model(path)
    self._tf = tf
    self._signatures = tf.saved_model.load(self.path).signatures
    self._signature = self._signatures['serving_default']

  def predict(self, image_bytes):
    return self.predict_batch([image_bytes])[0]

  def predict_batch(self, image_bytes_list):
    """One ``serving_default`` call on B encoded images of any sizes;
    returns B results as ``predict``'s. Raises tf.errors.OpError (e.g.
    InvalidArgument) if any image of the batch is bad."""
    outputs = self._signature(
        image_bytes=self._tf.constant(list(image_bytes_list)))
    return _split({k: v.numpy() for k, v in outputs.items()})

  def predict_images(self, images):
    """Results (as ``predict``'s) for each image of uint8 [B, H, W, 3].

    Raises:
      TypeError, ValueError: see ``check_uint8_images``.
    """
    images = check_uint8_images(images)
    outputs = self._signatures['serve_images'](
        images=self._tf.convert_to_tensor(images))
    outputs = {k: v.numpy() for k, v in outputs.items()}
    return [_single({k: v[i:i + 1] for k, v in outputs.items()})
            for i in range(len(outputs['image_sizes']))]


def export_pad_rgb(folder):
  """Padding value of the model exported to ``folder``: from the
  ``params.yaml`` pdl-export writes there (model.input_normalization),
  else the ImageNet mean (exports made before that setting existed)."""
  # pylint: disable=g-import-not-at-top
  import yaml
  from pdl_tf import normalization
  # pylint: enable=g-import-not-at-top
  params = os.path.join(folder, 'params.yaml')
  name = 'imagenet'
  if os.path.isfile(params):
    with open(params, encoding='utf-8') as f:
      name = (yaml.safe_load(f) or {}).get('model', {}).get(
          'input_normalization', 'imagenet')
  return normalization.pad_rgb(name)


def available_cores():
  """CPU cores this process may run on (its affinity mask where known)."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


class TFLiteBackend:
  """Runs a .tflite export with LiteRT; decoding (``image_decode``, as the
  SavedModel does), fitting and un-fitting in TF, each a graph traced once
  per backend (eager ops cost about 0.1 s per image, more than the
  network of a small model; bench/README.md).

  Args:
    path: the .tflite file.
    max_image_pixels: refuse larger images (InvalidArgument 'too large');
      0 = no limit.
    num_threads: LiteRT's threads; None: every available core (LiteRT's
      own default is one thread, while TensorFlow uses every core).
  """

  def __init__(self, path, max_image_pixels=None, num_threads=None):
    # pylint: disable=g-import-not-at-top
    from ai_edge_litert import interpreter as litert
    from pdl_tf.data.decoding import image_decode
    # pylint: enable=g-import-not-at-top
    if not os.path.isfile(path):
      raise FileNotFoundError(f'TFLite model {path!r} does not exist.')
    self.path = path
    self.max_image_pixels = (image_decode.MAX_IMAGE_PIXELS
                             if max_image_pixels is None else max_image_pixels)
    self.num_threads = num_threads or available_cores()
    self._interpreter = litert.Interpreter(model_path=path,
                                           num_threads=self.num_threads)
    self._runner = self._interpreter.get_signature_runner()
    shape = self._runner.get_input_details()['images']['shape']
    self.input_size = (int(shape[1]), int(shape[2]))
    self.pad_rgb = export_pad_rgb(os.path.dirname(os.path.abspath(path)))
    self._prepare, self._restore = _tflite_graphs(self.input_size,
                                                  self.pad_rgb)
    self._first_call = True

  def predict(self, image_bytes):
    images, sizes, original = self._prepare(image_bytes,
                                            self.max_image_pixels)
    # LiteRT logs its XNNPACK INFO line on the first invoke.
    with (native_stderr.drop_native_lines() if self._first_call else
          contextlib.nullcontext()):
      outputs = self._runner(images=images.numpy(), image_sizes=sizes.numpy())
    self._first_call = False
    maps = self._restore(*(outputs[key] for key in MAP_KEYS), sizes[0],
                         original)
    result = {key: value.numpy().astype(_DTYPES[key])
              for key, value in zip(MAP_KEYS, maps)}
    for key in VECTOR_KEYS:
      result[key] = outputs[key][0].astype(_DTYPES[key])
    return result

  def predict_batch(self, image_bytes_list):
    """``predict`` on each image in turn: the .tflite file's input is one
    image of the export's fixed size (LiteRT already uses every core for
    one image; bench/README.md)."""
    return [self.predict(contents) for contents in image_bytes_list]


def _tflite_graphs(input_size, pad_rgb):
  """The TFLite backend's TF stages as tf.functions: ``prepare(bytes,
  max_pixels)`` -> (images float32 [1, h, w, 3], image_sizes int32 [1, 2],
  original size int32 [2]) and ``restore(panoptic, semantic, instance,
  center_heatmap, valid, original)`` -> the four maps at the original
  size."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.data.decoding import image_decode
  from pdl_tf.export import image_fit
  # pylint: enable=g-import-not-at-top
  height, width = input_size

  @tf.function(input_signature=[tf.TensorSpec([], tf.string),
                                tf.TensorSpec([], tf.int64)])
  def prepare(contents, max_pixels):
    image = image_decode.decode_image(contents, max_pixels)
    fitted, valid = image_fit.fit_image(image, input_size, pad_rgb)
    return fitted[None], valid[None], tf.shape(image)[:2]

  map_spec = lambda dtype: tf.TensorSpec([1, height, width], dtype)

  @tf.function(input_signature=[
      map_spec(tf.int32), map_spec(tf.int32), map_spec(tf.int32),
      map_spec(tf.float32), tf.TensorSpec([2], tf.int32),
      tf.TensorSpec([2], tf.int32)])
  def restore(panoptic, semantic, instance, center_heatmap, valid, original):
    return [image_fit.unfit_map(value[0][..., None], valid, original,
                                original, 0)[..., 0]
            for value in (panoptic, semantic, instance, center_heatmap)]

  return prepare, restore


class RestBackend:
  """TF Serving's REST predict API (row format, base64 image bytes)."""

  def __init__(self, url, timeout=600):
    self.url = url.rstrip('/') + ':predict'
    self.timeout = timeout

  def predict(self, image_bytes):
    return self.predict_batch([image_bytes])[0]

  def predict_batch(self, image_bytes_list):
    """One REST request (row format) with B instances; B results."""
    body = json.dumps({'signature_name': 'serving_default', 'instances': [
        {'image_bytes': {'b64': base64.b64encode(contents).decode()}}
        for contents in image_bytes_list]})
    request = urllib.request.Request(
        self.url, data=body.encode(), method='POST',
        headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(request, timeout=self.timeout) as response:
        answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
      raise ServingError(f'{self.url} answered {e.code}: '
                         f'{e.read().decode(errors="replace")}') from e
    except urllib.error.URLError as e:  # no HTTP answer at all
      raise ServerUnreachable(f'cannot reach the model server at '
                              f'{self.url}: {e.reason}') from e
    return [_single({key: [value] for key, value in prediction.items()})
            for prediction in answer['predictions']]


class GrpcBackend:
  """TF Serving's gRPC PredictionService (tensorflow-serving-api)."""

  def __init__(self, address, model_name, timeout=600):
    # pylint: disable=g-import-not-at-top
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    # pylint: enable=g-import-not-at-top
    self._tf, self._grpc = tf, grpc
    self.address, self.model_name, self.timeout = address, model_name, timeout
    self._channel = grpc.insecure_channel(
        address, options=[('grpc.max_receive_message_length', 1 << 30)])
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(
        self._channel)

  def predict(self, image_bytes):
    return self.predict_batch([image_bytes])[0]

  def predict_batch(self, image_bytes_list):
    """One gRPC Predict request with a [B] string tensor; B results."""
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    request = predict_pb2.PredictRequest()
    request.model_spec.name = self.model_name
    request.model_spec.signature_name = 'serving_default'
    request.inputs['image_bytes'].CopyFrom(
        self._tf.make_tensor_proto(list(image_bytes_list)))
    try:
      response = self._stub.Predict(request, timeout=self.timeout)
    except self._grpc.RpcError as e:
      if e.code() == self._grpc.StatusCode.UNAVAILABLE:
        raise ServerUnreachable(f'cannot reach the model server at '
                                f'{self.address}: {e.details()}') from e
      raise ServingError(f'gRPC Predict failed: {e.code()}: '
                         f'{e.details()}') from e
    return _split({key: self._tf.make_ndarray(proto)
                   for key, proto in response.outputs.items()})
