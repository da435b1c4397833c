"""pdl-beam-predict on Beam's DirectRunner: over a folder with a corrupt
and an EXIF-rotated file it writes every good image's files (the bytes
pdl-predict writes), one dead-letter line with the reason and the index;
a rerun predicts nothing again. Skipped where the ``beam`` extra is not
installed (.ci/run installs it in one venv)."""

import json
import os

import pytest
from PIL import Image

from pdl_tf.cli import beam_predict as beam_cli
from pdl_tf.cli.shared import common
from pdl_tf.cli import predict as predict_cli
from test_export import block_images
from test_image_decode import encode
from test_serving import served  # pylint: disable=unused-import

pytest.importorskip(
    'apache_beam', reason='the beam extra is not installed: pip install -c '
    'requirements-beam-lock.txt ".[beam]" (.ci/run does, in its 3.11 venv)')


def _lines(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]


def test_direct_runner_dead_letters_the_bad_file_and_reruns_idle(served,
                                                                 capsys):
  folder = served['root'] / 'beam_in'
  folder.mkdir()
  good = block_images(24, 1, 40, 56)[0]
  Image.fromarray(good).save(folder / 'a_good.png')
  jpeg = encode(good, 'JPEG', quality=90)
  (folder / 'b_corrupt.jpg').write_bytes(jpeg[:len(jpeg) // 2])
  (folder / 'c_phone.jpg').write_bytes(encode(good, 'JPEG', 6, quality=90))
  Image.fromarray(block_images(5, 1, 64, 48)[0]).save(folder / 'd_good.png')
  output, reference = served['root'] / 'beam_out', served['root'] / 'ref'
  argv = ['--input', str(folder / '*'), '--saved_model', served['base'],
          '--output', str(output), '--max_batch_size', '4',
          '--runner', 'DirectRunner']
  assert common.run(beam_cli.main, argv, beam_cli.build_parser()) == 0
  assert capsys.readouterr().out.startswith(
      '3 predicted, 0 already there, 1 bad file(s); index: '
      f'{output}/index.jsonl; bad files: {output}/dead_letter.jsonl')
  assert common.run(predict_cli.main, [str(folder), '--saved_model',
                                       served['base'], '--output',
                                       str(reference)],
                    predict_cli.build_parser()) == 1
  capsys.readouterr()
  want = sorted(os.listdir(reference))
  assert len(want) == 9  # three good images, three files each
  for name in want:
    assert (output / name).read_bytes() == (reference / name).read_bytes()
  assert Image.open(output / 'c_phone_overlay.png').size == (40, 56)  # W, H
  dead = _lines(output / 'dead_letter.jsonl')
  assert dead == [{'image': str(folder / 'b_corrupt.jpg'), 'reason': dead[0][
      'reason']}] and dead[0]['reason'].startswith(
          f'truncated: {folder / "b_corrupt.jpg"} cannot be read: ')
  index = sorted(_lines(output / 'index.jsonl'), key=lambda r: r['stem'])
  assert [r['stem'] for r in index] == ['a_good', 'c_phone', 'd_good']
  assert (index[1]['height'], index[1]['width']) == (56, 40)
  times = {name: os.stat(output / name).st_mtime_ns for name in want}
  assert common.run(beam_cli.main, argv, beam_cli.build_parser()) == 0
  # the bad file is tried again (as pdl-predict does), the others not
  assert '1 image(s) to predict, 3 already' in capsys.readouterr().err
  assert {name: os.stat(output / name).st_mtime_ns for name in want} == times
  assert sorted(_lines(output / 'index.jsonl'),
                key=lambda r: r['stem']) == index
  assert len(_lines(output / 'dead_letter.jsonl')) == 1


def test_without_beam_the_message_says_how_to_install(monkeypatch):
  import sys  # pylint: disable=g-import-not-at-top
  from pdl_tf.serving import beam_predict  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, 'apache_beam', None)
  with pytest.raises(ImportError, match=r'pip install "pdl_tf\[beam\]"'):
    beam_predict.import_beam()


def test_pdl_data_runner_writes_the_same_shards(tmp_path, capsys):
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.cli import data as data_cli
  base = ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
          '6', '--num_shards', '3', '--output']
  plain, piped = tmp_path / 'plain', tmp_path / 'beam'
  assert common.run(data_cli.main, base + [str(plain)],
                    data_cli.build_parser()) == 0
  assert common.run(data_cli.main, base + [str(piped), '--runner',
                                           'DirectRunner',
                                           '--direct_num_workers', '1'],
                    data_cli.build_parser()) == 0
  assert 'train: 6 examples in 3 shards' in capsys.readouterr().out
  names = sorted(os.listdir(plain))
  assert names == sorted(os.listdir(piped)) and len(names) == 7
  for name in names:
    assert (piped / name).read_bytes() == (plain / name).read_bytes(), name
  with pytest.raises(SystemExit):  # Beam options need --runner
    data_cli.build_parser().parse_args(base + [str(piped),
                                               '--direct_num_workers', '1'])


@pytest.mark.parametrize('flags,message', [
    (['--runer', 'DirectRunner'], 'unrecognized arguments: --runer '
     'DirectRunner'),
    (['--runner', 'DirectRuner'], '--runner DirectRuner: Unexpected pipeline '
     'runner: DirectRuner. Valid values are'),
])
def test_a_misspelt_beam_flag_or_runner_is_one_line(flags, message):
  # Beam alone logs "Discarding unparseable args" and runs on its default
  # runner, or raises a 20-line traceback for an unknown runner.
  with pytest.raises(beam_cli.checks.UsageError) as error:
    beam_cli.beam_options(flags)
  assert str(error.value).startswith(message), error.value
  assert beam_cli.beam_options(['--runner', 'DirectRunner',
                                '--direct_num_workers', '2'])
