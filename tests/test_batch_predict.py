"""Batched prediction: each output of a batch (images of several sizes, one
EXIF-rotated) equals predicting that image alone, on the SavedModel and
through TF Serving's REST API (stand-in); pdl-predict --batch_size writes
the same files as --batch_size 1, names the bad file of a batch, and a
rerun skips the images already predicted."""

import os

import numpy as np
import pytest
from PIL import Image

from pdl_tf.cli.shared import common
from pdl_tf.cli import predict as predict_cli
from pdl_tf.serving import backends
from pdl_tf.serving import batch_predict
from test_export import block_images
from test_export import png_bytes
from test_image_decode import encode
from test_serving import served  # pylint: disable=unused-import

KEYS = backends.MAP_KEYS + backends.VECTOR_KEYS


def _mixed_images():
  """Encoded images of three sizes, one a JPEG with EXIF orientation 6."""
  return [png_bytes(block_images(1, 1, 40, 56)[0]),
          png_bytes(block_images(2, 1, 72, 48)[0]),
          encode(block_images(3, 1, 40, 56)[0], 'JPEG', 6, quality=90),
          png_bytes(block_images(4, 1, 33, 65)[0])]


def _assert_same(batch, alone):
  assert len(batch) == len(alone)
  for got, want in zip(batch, alone):
    for key in KEYS:
      assert got[key].shape == want[key].shape, key
      if key == 'center_heatmap':  # float: batch size may change summation
        np.testing.assert_allclose(got[key], want[key], atol=1e-5)
      else:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_saved_model_batch_equals_one_by_one(served):
  backend = backends.SavedModelBackend(served['path'])
  images = _mixed_images()
  batch = backend.predict_batch(images)
  _assert_same(batch, [backend.predict(image) for image in images])
  assert batch[2]['panoptic'].shape == (56, 40)  # upright, cropped


def test_rest_batch_is_one_request_and_equals_one_by_one(served):
  rest = served['rest']
  backend = backends.RestBackend(rest.url)
  images = _mixed_images()
  alone = [backend.predict(image) for image in images]
  before = rest.requests
  batch = backend.predict_batch(images)
  assert rest.requests == before + 1
  _assert_same(batch, alone)


def _predict(args):
  return common.run(predict_cli.main, args, predict_cli.build_parser())


def test_pdl_predict_batches_name_the_bad_file_and_rerun_skips(served,
                                                               capsys):
  folder = served['root'] / 'batched_in'
  folder.mkdir()
  for index, contents in enumerate(_mixed_images()):
    (folder / f'img{index}.{"jpg" if index == 2 else "png"}').write_bytes(
        contents)
  (folder / 'img1b.jpg').write_text('not a JPEG\n')  # inside a batch
  one, many = served['root'] / 'one_out', served['root'] / 'many_out'
  base = [str(folder), '--saved_model', served['base'], '--output']
  assert _predict(base + [str(one), '--batch_size', '1']) == 1
  capsys.readouterr()
  assert _predict(base + [str(many), '--batch_size', '3']) == 1
  captured = capsys.readouterr()
  lines = [line for line in captured.err.replace('\r', '\n').splitlines()
           if 'cannot be read' in line]
  assert len(lines) == 1 and lines[0].startswith(
      f'not an image: {folder / "img1b.jpg"} cannot be read'), captured.err
  assert 'wrote 4 prediction(s)' in captured.out, captured.out
  names = sorted(os.listdir(many))
  assert names == sorted(os.listdir(one)) and len(names) == 12
  for name in names:
    assert (many / name).read_bytes() == (one / name).read_bytes(), name
  times = {name: os.stat(many / name).st_mtime_ns for name in names}
  assert _predict(base + [str(many), '--batch_size', '3']) == 1
  captured = capsys.readouterr()
  assert 'skipped 4 image(s) already predicted' in captured.out
  assert 'wrote 0 prediction(s)' in captured.out  # only the bad one again
  assert {name: os.stat(many / name).st_mtime_ns for name in names} == times
  assert np.asarray(Image.open(many / 'img2_overlay.png')).shape[:2] == (
      56, 40)


def test_globs_and_a_bad_batch_size(served, capsys, tmp_path):
  (tmp_path / 'a.png').write_bytes(_mixed_images()[0])
  (tmp_path / 'b.txt').write_text('x')
  assert predict_cli.list_images([str(tmp_path / '*')]) == [
      str(tmp_path / 'a.png')]
  with pytest.raises(FileNotFoundError, match='matches no image'):
    predict_cli.list_images([str(tmp_path / '*.jpg')])
  assert _predict([str(tmp_path), '--saved_model', served['base'],
                   '--output', str(tmp_path / 'o'), '--batch_size',
                   '0']) == 2
  assert '--batch_size must be >= 1' in capsys.readouterr().err


class _Picky:
  """A backend whose batch call fails whenever the batch holds b'bad'."""

  def __init__(self):
    self.calls = []

  def predict_batch(self, contents):
    self.calls.append(list(contents))
    if b'bad' in contents:
      raise backends.ServingError('bad input')
    return [{'panoptic': np.zeros((2, 2), np.int32)} for _ in contents]


def test_a_failed_batch_is_retried_image_by_image():
  items = [batch_predict.Item(name, contents=name.encode(),
                              image=np.zeros((2, 2, 3), np.uint8))
           for name in ('a', 'bad', 'c')]
  backend = _Picky()
  batch_predict.predict_items(backend, items)
  assert backend.calls == [[b'a', b'bad', b'c'], [b'a'], [b'bad'], [b'c']]
  assert [item.error is None for item in items] == [True, False, True]
  assert str(items[1].error) == 'bad input' and items[0].result is not None


def test_beam_predict_without_beam_is_one_line(monkeypatch, capsys,
                                               tmp_path):
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.cli import beam_predict as beam_cli
  monkeypatch.setattr(beam_cli.importlib.util, 'find_spec',
                      lambda name: None)
  assert common.run(beam_cli.main, [
      '--input', str(tmp_path), '--saved_model', str(tmp_path),
      '--output', str(tmp_path / 'o')], beam_cli.build_parser()) == 2
  assert 'pip install "pdl_tf[beam]"' in capsys.readouterr().err
