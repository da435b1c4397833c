"""Batched prediction of image files: decode ahead in threads, call the
model once per batch, attribute a failed batch's error to its bad image.

Used by pdl-predict (``pdl_tf.cli.predict``); the Beam pipeline
(``pdl_tf.serving.beam_predict``) uses ``read_file``, ``load`` and
``predict_items`` too, so both name a bad file the same way.

Paths may be local or any ``tf.io.gfile`` path (``gs://...``).
"""

import collections
import concurrent.futures
import dataclasses
import itertools

import numpy as np


@dataclasses.dataclass
class Item:
  """One input file on its way through.

  Attributes:
    path: the file.
    contents: its bytes (None if it could not be read).
    image: uint8 [H, W, 3], upright (None if it could not be decoded).
    error: the exception that stopped it, else None.
    result: the backend's result (numpy arrays at the image's size).
    stem: the name its outputs start with (set by the caller).
  """
  path: str
  stem: str = None
  contents: bytes = None
  image: np.ndarray = None
  error: Exception = None
  result: dict = None


def read_file(path):
  """The bytes of a local or ``tf.io.gfile`` file.

  Raises:
    OSError: it cannot be read (a gfile error is turned into one, with its
      message).
  """
  if '://' not in path:
    with open(path, 'rb') as f:
      return f.read()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      return f.read()
  except tf.errors.OpError as e:
    raise OSError(e.message) from e


def load(path, max_pixels):
  """An ``Item`` with the file read and decoded by the package's one
  decode (``image_decode.decode_bytes``: upright by EXIF, at most
  ``max_pixels``), or with ``error`` set (OSError, ImageDecodeError)."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.data.decoding import image_decode
  # pylint: enable=g-import-not-at-top
  item = Item(path)
  try:
    item.contents = read_file(path)
    item.image, _ = image_decode.decode_bytes(item.contents, path, max_pixels)
  except (OSError, ValueError, tf.errors.OpError) as e:
    item.error = e
  return item


def decoded(paths, max_pixels, threads=2, ahead=16):
  """Yields ``load(path)`` for each of ``paths`` in order, decoding up to
  ``ahead`` files in advance in ``threads`` threads (TensorFlow's decode
  ops release the GIL, so decoding overlaps the model's call)."""
  paths = iter(paths)
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    pending = collections.deque(
        pool.submit(load, path, max_pixels)
        for path in itertools.islice(paths, max(ahead, 1)))
    while pending:
      item = pending.popleft().result()
      following = next(paths, None)
      if following is not None:
        pending.append(pool.submit(load, following, max_pixels))
      yield item


def failure_line(path, error):
  """One line, the reason first, for a file that could not be predicted."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.data.decoding import image_decode
  # pylint: enable=g-import-not-at-top
  if isinstance(error, image_decode.ImageDecodeError):
    return str(error)
  if isinstance(error, tf.errors.OpError):
    return f'model error: {path}: {image_decode.graph_message(error)}'
  if isinstance(error, OSError):
    return f'unreadable: {path}: {error.strerror or error}'
  first_line = str(error).strip().splitlines()[0]
  if isinstance(error, ValueError):  # already 'model output: PATH: ...'
    return first_line
  return f'server error: {path}: {first_line}'


def _check_frame(item):
  if item.result['panoptic'].shape != item.image.shape[:2]:
    raise ValueError(
        f'model output: {item.path}: the maps are '
        f'{item.result["panoptic"].shape} but the upright image is '
        f'{item.image.shape[:2]}; was the model exported before EXIF '
        'orientation support? Export it again.')


def predict_items(backend, items):
  """Sets ``result`` (or ``error``) on each decoded item with one batched
  call of ``backend.predict_batch``; if that call fails, each image is sent
  again alone so that only the bad ones fail, with their own error.

  Args:
    backend: a ``pdl_tf.serving.backends`` backend.
    items: Items with ``contents`` and ``image``.

  Returns:
    ``items``.

  Raises:
    backends.ServerUnreachable: no server at all (every image would fail).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  try:
    results = backend.predict_batch([item.contents for item in items])
  except backends.ServerUnreachable:
    raise
  except (backends.ServingError, tf.errors.OpError, ValueError) as e:
    if len(items) == 1:
      items[0].error = e
      return items
    for item in items:
      predict_items(backend, [item])
    return items
  for item, result in zip(items, results):
    item.result = result
    try:
      _check_frame(item)
    except ValueError as e:
      item.result, item.error = None, e
  return items


def batched(items, batch_size):
  """Yields lists of up to ``batch_size`` items: each item that failed
  already (``error`` set) alone as soon as it comes, the others grouped."""
  batch = []
  for item in items:
    if item.error is not None:
      yield [item]
      continue
    batch.append(item)
    if len(batch) == batch_size:
      yield batch
      batch = []
  if batch:
    yield batch
