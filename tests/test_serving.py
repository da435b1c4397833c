"""Serving contract: the REST and gRPC clients against local STAND-INS of
TF Serving (tests/serving_standin.py; the TF Serving binary is not
installable here), bad input at the signatures, and pdl-predict's files."""

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from helpers import make_lively
from helpers import require_coco_sample
from pdl_tf import config_io
from pdl_tf import keys
from pdl_tf.cli.shared import common
from pdl_tf.cli import predict as predict_cli
from pdl_tf.data.readers import synthetic
from pdl_tf.data.readers import coco_panoptic
from pdl_tf.export import saved_model
from pdl_tf.export import serving_module
from pdl_tf.model import factory
from pdl_tf.labels.panoptic_format import read_id_map
from pdl_tf.serving import backends
from pdl_tf.serving import native_stderr
from pdl_tf.serving import outputs
from serving_standin import GrpcStandIn
from serving_standin import RestStandIn
from test_export import OVERRIDE
from test_export import block_images
from test_export import png_bytes
from test_image_decode import encode
from test_image_decode import pil_upright
from test_image_decode import png_header_only


@pytest.fixture(scope='module')
def served(tmp_path_factory):
  """A lively small demo model exported without XLA, behind both stand-ins."""
  root = tmp_path_factory.mktemp('serving')
  config = config_io.load_config('demo', [], [OVERRIDE])
  tf_keras.utils.set_random_seed(1)
  model = make_lively(factory.build_model(config.model, input_size=(64, 64)))
  module = serving_module.PanopticServingModule(
      model, input_size=(64, 64),
      merge_arguments=factory.merge_arguments(config),
      jit_compile_merge=False)
  path = saved_model.export_saved_model(module, str(root / 'model'), 1,
                                        config)
  rest = RestStandIn(path, 'panoptic_deeplab')
  grpc_server = GrpcStandIn(path, 'panoptic_deeplab')
  yield dict(path=path, base=str(root / 'model'), rest=rest,
             grpc=grpc_server, root=root)
  rest.close()
  grpc_server.close()


def test_rest_and_grpc_round_trip_equal_local_saved_model(served):
  contents = png_bytes(block_images(20, 1, 48, 64)[0])
  local = backends.SavedModelBackend(served['path']).predict(contents)
  rest = backends.RestBackend(served['rest'].url).predict(contents)
  remote = backends.GrpcBackend(served['grpc'].address,
                                'panoptic_deeplab').predict(contents)
  for result in (rest, remote):
    for key in backends.MAP_KEYS + backends.VECTOR_KEYS:
      np.testing.assert_array_equal(result[key], local[key], err_msg=key)
  assert local[keys.PANOPTIC].shape == (48, 64)


def test_bad_input_gives_readable_invalid_argument(served):
  signatures = tf.saved_model.load(served['path']).signatures
  serve_bytes, serve_images = (signatures['serving_default'],
                               signatures['serve_images'])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='not an image: the bytes are not JPEG'):
    serve_bytes(image_bytes=tf.constant([b'not an image']))
  with pytest.raises(tf.errors.InvalidArgumentError, match='empty file'):
    serve_bytes(image_bytes=tf.constant([b'']))
  with pytest.raises(tf.errors.InvalidArgumentError, match='empty batch'):
    serve_bytes(image_bytes=tf.constant([], tf.string))
  with pytest.raises(tf.errors.InvalidArgumentError, match='empty batch'):
    serve_images(images=tf.zeros([0, 8, 8, 3], tf.uint8))
  # The header claims 60000 x 60000 and holds no pixels: refused from the
  # header, before decoding.
  with pytest.raises(tf.errors.InvalidArgumentError, match=(
      'too large: the encoded image is 60000 x 60000 = 3600000000 pixels, '
      'more than the limit of 40000000')):
    serve_bytes(image_bytes=tf.constant([png_header_only(60000, 60000)]))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='too large: images is 8001 x 5000'):
    serve_images(images=tf.zeros([1, 5000, 8001, 3], tf.uint8))
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError),
                     match='uint8|dtype'):
    serve_images(images=tf.zeros([1, 8, 8, 3], tf.float32))


def _post(url, body):
  """POSTs JSON; returns (status, parsed answer)."""
  request = urllib.request.Request(url + ':predict', method='POST',
                                   data=json.dumps(body).encode())
  try:
    with urllib.request.urlopen(request) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_rest_errors_reach_the_client_and_the_server_keeps_serving(served):
  client = backends.RestBackend(served['rest'].url)
  gif = io.BytesIO()
  Image.fromarray(block_images(22, 1, 32, 32)[0]).save(gif, 'GIF')
  with pytest.raises(backends.ServingError, match='400.*Invalid GIF data'):
    client.predict(gif.getvalue()[:200])
  with pytest.raises(backends.ServingError, match='400.*not an image'):
    client.predict(b'plain text')
  # An empty batch, in TF Serving's columnar format.
  status, answer = _post(served['rest'].url, {'inputs': {'image_bytes': []}})
  assert status == 400 and 'empty batch' in answer['error']
  contents = png_bytes(block_images(21, 1, 32, 32)[0])
  assert client.predict(contents)[keys.PANOPTIC].shape == (32, 32)


def test_pdl_predict_writes_png_overlay_and_json(served, capsys):
  folder = served['root'] / 'images'
  folder.mkdir()
  for i, (height, width) in enumerate([(64, 64), (100, 80)]):
    Image.fromarray(block_images(30 + i, 1, height, width)[0]).save(
        folder / f'img{i}.png')
  output = served['root'] / 'predictions'
  parser = predict_cli.build_parser()
  assert common.run(predict_cli.main, [str(folder), '--server',
                                       served['rest'].address, '--output',
                                       str(output)], parser) == 0
  local = backends.SavedModelBackend(served['base'])
  for i, (height, width) in enumerate([(64, 64), (100, 80)]):
    with open(folder / f'img{i}.png', 'rb') as f:
      expected = local.predict(f.read())[keys.PANOPTIC]
    ids = read_id_map(str(output / f'img{i}_panoptic.png'))
    with open(output / f'img{i}.json', encoding='utf-8') as f:
      record = json.load(f)
    assert (record['height'], record['width']) == (height, width)
    assert (ids > 0).sum() == (expected >= 0).sum()
    for segment in record['segments_info']:
      mask = ids == segment['id']
      assert mask.sum() == segment['area']
      values = np.unique(expected[mask])
      assert len(values) == 1  # one predicted segment per PNG segment
      assert values[0] // 1000 == segment['category_id']
      assert segment['isthing'] == (values[0] % 1000 > 0)
      assert (segment['score'] is not None) == segment['isthing']
    overlay = np.asarray(Image.open(output / f'img{i}_overlay.png'))
    assert overlay.shape == (height, width, 3)
  assert 'wrote 2 prediction(s)' in capsys.readouterr().out


def test_pdl_predict_labels_and_side_by_side(served):
  folder = served['root'] / 'labelled'
  folder.mkdir()
  Image.fromarray(block_images(31, 1, 100, 80)[0]).save(folder / 'a.png')
  parser = predict_cli.build_parser()
  outputs_of = {}
  for name, flags in (('plain', []), ('labels', ['--labels',
                                                 '--side_by_side'])):
    output = served['root'] / f'out_{name}'
    assert common.run(predict_cli.main, [
        str(folder / 'a.png'), '--saved_model', served['base'], '--output',
        str(output)] + flags, parser) == 0
    outputs_of[name] = output
  plain, labelled = outputs_of['plain'], outputs_of['labels']
  assert sorted(p.name for p in plain.iterdir()) == [
      'a.json', 'a_overlay.png', 'a_panoptic.png']
  assert (plain / 'a.json').read_text() == (labelled / 'a.json').read_text()
  assert (plain / 'a_panoptic.png').read_bytes() == (
      labelled / 'a_panoptic.png').read_bytes()
  overlay = np.asarray(Image.open(plain / 'a_overlay.png'))
  drawn = np.asarray(Image.open(labelled / 'a_overlay.png'))
  assert overlay.shape == (100, 80, 3) and drawn.shape[0] == 100
  assert drawn.shape[1] > 80  # the legend
  assert (drawn[:, :80] != overlay).any()  # the labels
  both = np.asarray(Image.open(labelled / 'a_side_by_side.png'))
  np.testing.assert_array_equal(both[:, 84:], drawn)


def test_pdl_predict_names_a_missing_input(served, capsys):
  parser = predict_cli.build_parser()
  assert common.run(predict_cli.main, [
      '/nonexistent.png', '--saved_model', served['base'], '--output',
      str(served['root'] / 'x')], parser) == 2
  assert "input '/nonexistent.png' does not exist" in capsys.readouterr().err
  assert not os.path.exists(served['root'] / 'x')


def test_pdl_predict_names_an_unreadable_image(served, capsys):
  bad = served['root'] / 'broken.png'
  bad.write_bytes(b'\x89PNG\r\n\x1a\n but not really')
  parser = predict_cli.build_parser()
  assert common.run(predict_cli.main, [
      str(bad), '--saved_model', served['base'], '--output',
      str(served['root'] / 'y')], parser) == 1
  err = capsys.readouterr().err
  assert err == (f'corrupt: {bad} cannot be read: PNG decoder: Invalid PNG. '
                 'Failed to initialize decoder.\n'), err


def test_non_uint8_arrays_are_refused_before_the_signature(served):
  backend = backends.SavedModelBackend(served['base'])
  images = block_images(40, 2, 48, 64)  # uint8 [2, 48, 64, 3]
  results = backend.predict_images(images)
  for image, result in zip(images, results):
    expected = backend.predict(png_bytes(image))  # lossless: same pixels
    np.testing.assert_array_equal(result[keys.PANOPTIC],
                                  expected[keys.PANOPTIC])
  floats = np.full([1, 8, 8, 3], 1.7, np.float32)
  floats[..., 0] = 300.0
  for bad in (floats, images.astype(np.int64), images.tolist()):
    with pytest.raises(TypeError, match='uint8 array .* got'):
      backend.predict_images(bad)
  with pytest.raises(ValueError, match=r'\[B, H, W, 3\], got shape'):
    backend.predict_images(images[0])
  # What the check guards against: TensorFlow's own call of the signature
  # casts a float array to uint8 without a word (300.0 -> 44, 1.7 -> 1).
  signature = tf.saved_model.load(served['path']).signatures['serve_images']
  assert tf.convert_to_tensor(floats, tf.uint8).numpy()[0, 0, 0].tolist() == [
      44, 1, 1]
  signature(images=floats)  # accepted: hence the client-side check


def test_pdl_predict_json_names_the_classes(served):
  image = served['root'] / 'named.png'
  Image.fromarray(block_images(33, 1, 64, 64)[0]).save(image)
  output = served['root'] / 'named'
  assert common.run(predict_cli.main, [
      str(image), '--saved_model', served['base'], '--output', str(output)],
                    predict_cli.build_parser()) == 0
  with open(output / 'named.json', encoding='utf-8') as f:
    segments = json.load(f)['segments_info']
  assert segments
  for segment in segments:  # the demo's synthetic classes, from params.yaml
    assert segment['category_name'] == synthetic.CLASS_NAMES[
        segment['category_id']]


def test_a_label_divisor_that_does_not_fit_is_refused(served, capsys):
  image = served['root'] / 'divisor.png'
  Image.fromarray(block_images(34, 1, 64, 64)[0]).save(image)
  parser = predict_cli.build_parser()
  # Local export: refused before TensorFlow, from its params.yaml.
  output = served['root'] / 'divisor_local'
  assert common.run(predict_cli.main, [
      str(image), '--saved_model', served['base'], '--label_divisor', '256',
      '--output', str(output)], parser) == 2
  err = capsys.readouterr().err
  assert err.startswith('pdl-predict: error: --label_divisor 256 does not '
                        'fit the export: its panoptic ids are class x 1000 '
                        '+ instance (data.label_divisor in '), err
  assert err.count('\n') == 1 and not output.exists()
  # A server: its outputs show the divisor; stopped at the first image.
  output = served['root'] / 'divisor_server'
  assert common.run(predict_cli.main, [
      str(image), '--server', served['rest'].address, '--label_divisor',
      '256', '--output', str(output)], parser) == 2
  err = capsys.readouterr().err
  assert ('label divisor 256 does not fit the model: its panoptic ids are '
          'class x 1000 + instance; give --label_divisor 1000') in err, err
  assert 'Traceback' not in err and not output.exists()
  # The right one passes, given or not.
  assert common.run(predict_cli.main, [
      str(image), '--server', served['rest'].address, '--label_divisor',
      '1000', '--output', str(output)], parser) == 0


def test_check_label_divisor_on_hand_made_outputs():
  # Stuff class 2, thing class 3 in slot 2 (its first instance: id 1; the
  # instance map holds the slot), divisor 1000.
  result = {'panoptic': np.array([[2000, 3001], [-1, 0]]),
            'semantic': np.array([[2, 4], [1, 0]]),  # the thing votes 3
            'instance': np.array([[0, 2], [0, 0]]),
            'instance_classes': np.array([1, 3, -1])}
  outputs.check_label_divisor(result, 1000)
  with pytest.raises(outputs.LabelDivisorMismatch,
                     match='label divisor 256 does not fit the model: its '
                     'panoptic ids are class x 1000 \\+ instance'):
    outputs.check_label_divisor(result, 256)


def _outputs_equal(got, want):
  for key in backends.MAP_KEYS + backends.VECTOR_KEYS + ('image_sizes',):
    np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(),
                                  err_msg=key)


def test_signature_sees_the_readers_pixels_of_a_jpeg(served):
  """The same JPEG bytes through the COCO reader and the bytes signature:
  the signature's outputs equal those of serve_images fed the reader's
  pixels, bit for bit, so the pixels were the same."""
  signatures = tf.saved_model.load(served['path']).signatures
  sample = require_coco_sample()
  for path in sorted((sample / 'input_images').glob('*.jpg')):
    pixels = coco_panoptic.read_image(str(path))
    from_bytes = signatures['serving_default'](
        image_bytes=tf.constant([path.read_bytes()]))
    from_pixels = signatures['serve_images'](images=tf.constant(pixels[None]))
    _outputs_equal(from_bytes, from_pixels)
    # TensorFlow's default JPEG decode would have fed other pixels.
    fast = tf.io.decode_jpeg(path.read_bytes(), channels=3)
    assert (fast.numpy() != pixels).mean() > 0.5


def test_signature_turns_exif_oriented_bytes_upright(served):
  signatures = tf.saved_model.load(served['path']).signatures
  stored = block_images(23, 1, 48, 64)[0]
  for orientation in range(1, 9):
    contents = encode(stored, 'JPEG', orientation, quality=95)
    upright = pil_upright(contents)
    from_bytes = signatures['serving_default'](
        image_bytes=tf.constant([contents]))
    from_pixels = signatures['serve_images'](images=tf.constant(upright[None]))
    _outputs_equal(from_bytes, from_pixels)
    assert tuple(from_bytes['image_sizes'][0].numpy()) == upright.shape[:2]


def test_signature_decodes_palette_bmp_and_alpha_webp_like_pil(served):
  """Bytes that TensorFlow's own decoders got wrong (a palette BMP as its
  indices) or refused (WebP with alpha): the signature sees PIL's pixels;
  a BMP variant not decoded is refused as 'unsupported'."""
  # pylint: disable-next=g-import-not-at-top
  from test_image_variants import bmp, pil_rgb, saved
  signatures = tf.saved_model.load(served['path']).signatures
  stored = block_images(29, 1, 40, 56)[0]
  alpha = np.full(stored.shape[:2] + (1,), 99, np.uint8)
  rgba = Image.fromarray(np.concatenate([stored, alpha], -1))
  for contents in (saved(Image.fromarray(stored).quantize(16), 'BMP'),
                   saved(rgba, 'WEBP', lossless=True),
                   saved(rgba, 'WEBP')):
    from_bytes = signatures['serving_default'](
        image_bytes=tf.constant([contents]))
    from_pixels = signatures['serve_images'](
        images=tf.constant(pil_rgb(contents)[None]))
    _outputs_equal(from_bytes, from_pixels)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='unsupported: BMP with 16 bits per pixel'):
    signatures['serving_default'](image_bytes=tf.constant(
        [bmp(16, [b'\x1f\x7c' * 6] * 7)]))


def test_pdl_predict_folder_survives_bad_files(served, capsys):
  folder = served['root'] / 'mixed'
  folder.mkdir()
  good = block_images(24, 1, 40, 56)[0]
  Image.fromarray(good).save(folder / 'a_good.png')
  (folder / 'a_bad.jpg').write_text('this is text, not a JPEG\n')
  (folder / 'b_empty.jpg').write_bytes(b'')
  jpeg = encode(good, 'JPEG', quality=90)
  (folder / 'c_truncated.jpg').write_bytes(jpeg[:len(jpeg) // 2])
  (folder / 'd_phone.jpg').write_bytes(encode(good, 'JPEG', 6, quality=90))
  Image.fromarray(good).save(folder / 'e_good.png')
  output = served['root'] / 'mixed_out'
  code = common.run(predict_cli.main, [str(folder), '--saved_model',
                                       served['base'], '--output',
                                       str(output)],
                    predict_cli.build_parser())
  captured = capsys.readouterr()
  assert code == 1
  # stderr: the progress bar (carriage returns) and one line per bad file.
  lines = [line for line in captured.err.replace('\r', '\n').splitlines()
           if 'cannot be read' in line]
  assert len(lines) == 3, captured.err
  for line, (reason, name) in zip(lines, [
      ('not an image', 'a_bad.jpg'), ('empty file', 'b_empty.jpg'),
      ('truncated', 'c_truncated.jpg')]):
    assert line.startswith(f'{reason}: {folder / name} cannot be read: ')
  assert ('wrote 3 prediction(s) to' in captured.out and '; 3 of 6 image(s) '
          'failed: a_bad.jpg, b_empty.jpg, c_truncated.jpg' in captured.out)
  for stem, size in (('a_good', (40, 56)), ('e_good', (40, 56)),
                     ('d_phone', (56, 40))):  # upright: stored 40x56, tag 6
    with open(output / f'{stem}.json', encoding='utf-8') as f:
      record = json.load(f)
    assert (record['height'], record['width']) == size
    assert np.asarray(Image.open(output / f'{stem}_overlay.png')).shape[
        :2] == size
  assert not (output / 'a_bad.json').exists()


_LITERT_INFO = r'''
import os, sys
os.environ['TF_CPP_MIN_LOG_LEVEL'] = sys.argv[1]
import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from pdl_tf.serving import native_stderr
from pdl_tf.serving import outputs

class Conv(tf.Module):
  @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
  def f(self, x):
    return {'y': tf.nn.conv2d(x, tf.ones([3, 3, 3, 4]), 1, 'SAME')}

module = Conv()
converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [module.f.get_concrete_function()], module)
runner = litert.Interpreter(model_content=converter.convert(),
                            num_threads=1).get_signature_runner()
os.write(2, b'before\n')
with native_stderr.drop_native_lines():
  runner(x=np.zeros([1, 8, 8, 3], np.float32))  # LiteRT's first invoke
  os.write(2, b'WARNING: kept\n')
os.write(2, b'after\n')
'''


@pytest.mark.parametrize('level', ['3', '0'])
def test_litert_info_line_hidden_unless_verbose_and_nothing_else_lost(level):
  # LiteRT prints its XNNPACK INFO line from C++ on the first invoke; the
  # commands hide it (and only it) unless --verbose (level 0).
  result = subprocess.run(
      [sys.executable, '-c', _LITERT_INFO, level], capture_output=True,
      timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  lines = result.stderr.decode().splitlines()
  info = 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.'
  expected = ['before'] + ([info] if level == '0' else []) + [
      'WARNING: kept', 'after']
  assert lines[-len(expected):] == expected, lines


@pytest.mark.parametrize('grpc', [False, True])
def test_unreachable_server_is_one_line_not_one_per_image(tmp_path, capsys,
                                                          grpc):
  # Nothing listens on port 1 of this machine: the connection is refused.
  for i in range(3):
    Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(tmp_path / f'{i}.png')
  argv = [str(tmp_path), '--server', '127.0.0.1:1', '--output',
          str(tmp_path / 'out')] + (['--grpc'] if grpc else [])
  assert common.run(predict_cli.main, argv, predict_cli.build_parser()) == 2
  lines = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and 'image/s]' not in line]  # not the bar
  assert len(lines) == 1, lines
  assert lines[0].startswith('pdl-predict: error: cannot reach the model '
                             'server at '), lines
  assert 'stopped at' in lines[0] and '(0 of 3 image(s) predicted)' in lines[0]
  assert not (tmp_path / 'out').exists()


def test_the_converters_known_lines_are_dropped_and_nothing_else():
  # Lines as pdl-export printed them (2026-12-04, TensorFlow 2.20).
  noise = [
      b'WARNING: All log messages before absl::InitializeLog() is called '
      b'are written to STDERR',
      b'W0000 00:00:1796356191.894323   18682 tf_tfl_flatbuffer_helpers.cc'
      b':364] Ignored output_format.',
      b'W0000 00:00:1796356191.894402   18682 tf_tfl_flatbuffer_helpers.cc'
      b':367] Ignored drop_control_dependency.',
      b'I0000 00:00:1796356192.013477   18682 mlir_graph_optimization_pass'
      b'.cc:437] MLIR V1 optimization pass is not enabled',
      b'fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, '
      b'output_inference_type: FLOAT32']
  kept = [b'W0000 00:00:1796356191.894323   18682 lite.cc:1] Ignored '
          b'output_format. And something else', b'E0000 real error',
          b'Segmentation fault', b'']
  patterns = native_stderr.CONVERTER_NOISE
  assert not [line for line in noise
              if native_stderr.keep_line(line, patterns)]
  assert [line for line in kept if native_stderr.keep_line(line, patterns)
          ] == kept


_CRASH = r'''
import os, threading
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
from pdl_tf.serving import native_stderr
from pdl_tf.serving import outputs
inside = threading.Event()
def other():
  with native_stderr.drop_native_lines():  # overlaps the main block
    inside.set()
    os.write(2, b'from the other thread\n')
thread = threading.Thread(target=other)
with native_stderr.drop_native_lines():
  thread.start()
  inside.wait()
  thread.join()
  os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n')
  os.write(2, b'F0000 fatal: check failed\n')
  os.abort()  # as a native CHECK failure does
'''


def test_native_filter_passes_on_what_came_before_a_crash():
  # The filter is another process: the fatal line written just before the
  # abort still reaches stderr; blocks of two threads share one filter.
  result = subprocess.run([sys.executable, '-c', _CRASH], capture_output=True,
                          timeout=60, check=False)
  assert result.returncode == -6  # SIGABRT
  lines = result.stderr.decode().splitlines()
  assert lines == ['from the other thread', 'F0000 fatal: check failed'], lines
