"""pdl-data --format coco_panoptic / coco_instances and --inspect.

Round trips through the package's own coco_panoptic reader, pycocotools
and pq_compute; the statistics against labels worked out by hand."""

import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from pdl_tf.cli import data as data_cli
from pdl_tf.data.writers import coco_writers
from pdl_tf.data.writers import dataset_stats
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers import synthetic
from pdl_tf.data.readers.coco_panoptic import DatasetMetadata
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import list_coco_panoptic
from pdl_tf.data.readers.coco_panoptic import PanopticExample
from pdl_tf.evaluation import pq_compute

DIVISOR = 1000
SCENES = dict(split='validation', num_examples=6, height=48, width=64)


def run_cli(*argv):
  return data_cli.main(data_cli.build_parser().parse_args(list(argv)))


def synthetic_cli(*argv):
  return run_cli('--dataset', 'synthetic', '--split', 'validation',
                 '--num_examples', '6', '--size', '48x64', *argv)


def synthetic_examples():
  meta, sources = synthetic.list_examples(SCENES['split'],
                                          SCENES['num_examples'],
                                          SCENES['height'], SCENES['width'])
  return meta, [s.load() for s in sources]


def contiguous_instances(panoptic, meta):
  """Oracle: thing instances renumbered 1..k per class in increasing order
  (what a COCO panoptic file keeps: segments, not instance numbers)."""
  result = panoptic.copy()
  for cls in meta.thing_class_ids:
    values = [v for v in np.unique(panoptic).tolist()
              if v // DIVISOR == cls and v % DIVISOR]
    for k, value in enumerate(values, 1):
      result[panoptic == value] = cls * DIVISOR + k
  return result


def test_coco_panoptic_round_trips_through_the_reader(tmp_path, capsys):
  out = tmp_path / 'coco'
  assert synthetic_cli('--format', 'coco_panoptic', '--output',
                       str(out)) == 0
  assert 'validation: 6 examples in coco_panoptic format' in (
      capsys.readouterr().out)
  json_file, image_folder, png_folder = layouts.coco_split_files(
      str(out), 'validation')
  data = json.loads(open(json_file, encoding='utf-8').read())
  assert data['images'][0] == {'id': 0, 'file_name': 'validation_000000.png',
                               'height': 48, 'width': 64}
  assert data['categories'][3] == {'id': 3, 'name': 'disk', 'isthing': 1,
                                   'color': [220, 40, 40]}
  meta, originals = synthetic_examples()
  read_meta, sources = list_coco_panoptic(json_file, image_folder,
                                          png_folder)
  assert read_meta == meta
  for original, source in zip(originals, sources, strict=True):
    back = source.load()
    assert back.image_id == original.image_id
    np.testing.assert_array_equal(back.image, original.image)  # PNG
    np.testing.assert_array_equal(back.panoptic, original.panoptic)
  assert sorted(os.listdir(tmp_path)) == ['coco']  # no staging left


def test_instance_numbers_come_back_contiguous(tmp_path):
  # A COCO panoptic file keeps segments, not instance numbers: the reader
  # numbers them 1..k per class, so an instance hidden by others (here car
  # 2 of 1, 3) leaves no gap after a round trip.
  meta = hand_meta()
  label = np.zeros((8, 8), np.int32)
  label[:2, :2], label[4:, 4:], label[6:, :2] = 2001, 2003, 1000
  label[4:6, :2] = 1002
  source = ExampleSource('x', lambda: PanopticExample(
      4, 'x.jpg', np.zeros((8, 8, 3), np.uint8), label))
  coco_writers.write_coco_panoptic(meta, [source], str(tmp_path), 'val',
                                   progress=False)
  _, (back,) = list_coco_panoptic(*layouts.coco_split_files(str(tmp_path),
                                                            'val'))
  back = back.load()
  assert back.image_id == 4 and back.file_name == 'x.png'
  expected = contiguous_instances(label, meta)
  assert sorted(np.unique(expected).tolist()) == [0, 1000, 1001, 2001, 2002]
  np.testing.assert_array_equal(back.panoptic, expected)


def test_written_ground_truth_scores_pq_1_against_itself(tmp_path):
  out = tmp_path / 'coco'
  assert synthetic_cli('--format', 'coco_panoptic', '--output', str(out),
                       '--image_format', 'jpeg') == 0
  json_file, image_folder, png_folder = layouts.coco_split_files(
      str(out), 'validation')
  assert sorted(os.listdir(image_folder))[0] == 'validation_000000.jpg'
  result = pq_compute(json_file, json_file, png_folder, png_folder,
                      num_workers=1)
  for part in ('All', 'Things', 'Stuff'):
    assert result[part]['pq'] == pytest.approx(1.0), (part, result[part])
  assert result['Things']['n'] == 3 and result['Stuff']['n'] == 3


def test_coco_instances_masks_crowds_and_categories(tmp_path):
  out = tmp_path / 'coco'
  assert synthetic_cli('--format', 'coco_instances', '--output',
                       str(out)) == 0
  instances_file, stuff_file, image_folder = layouts.coco_instances_paths(
      str(out), 'validation')
  meta, originals = synthetic_examples()
  things, stuff = COCO(instances_file), COCO(stuff_file)
  # The instances JSON lists every class in class order (stuff as isthing
  # 0), so the coco_instances reader keeps the class indices.
  assert [(c['name'], c['isthing']) for c in things.loadCats(
      things.getCatIds())] == [('sky', 0), ('grass', 0), ('road', 0),
                               ('disk', 1), ('square', 1), ('triangle', 1)]
  assert [c['id'] for c in stuff.loadCats(stuff.getCatIds())] == [0, 1, 2]
  crowds = 0
  for original in originals:
    label = original.panoptic
    image = things.loadImgs(original.image_id)[0]
    assert (image['height'], image['width']) == label.shape
    assert os.path.isfile(os.path.join(image_folder, image['file_name']))
    for coco, want_thing in ((things, True), (stuff, False)):
      expected = {v for v in np.unique(label).tolist()
                  if v // DIVISOR < 6 and meta.is_thing[v // DIVISOR] ==
                  want_thing}
      found = set()
      for ann in coco.loadAnns(coco.getAnnIds(imgIds=original.image_id)):
        mask = coco.annToMask(ann).astype(bool)
        value = int(label[mask][0])
        np.testing.assert_array_equal(mask, label == value)  # exactly
        assert ann['category_id'] == value // DIVISOR
        assert ann['iscrowd'] == int(want_thing and value % DIVISOR == 0)
        assert ann['area'] == mask.sum() == mask_utils.area(
            ann['segmentation'])
        assert isinstance(ann['segmentation']['counts'], str)
        crowds += ann['iscrowd']
        found.add(value)
      assert found == expected
  assert crowds >= 1  # the scenes hold a crowd region


def hand_meta():
  return DatasetMetadata(class_names=['wall', 'person', 'car'],
                         category_ids=[7, 11, 13],
                         is_thing=[False, True, True],
                         colors=[(1, 2, 3), (4, 5, 6), (7, 8, 9)],
                         label_divisor=DIVISOR, ignore_label=255)


def hand_labels():
  """Two labels worked out by hand (the numbers in the comments)."""
  a = np.zeros((40, 80), np.int32)  # 3200 pixels, wall (class 0)
  a[0:10, 0:10] = 1001  # person 1: 100 pixels (< 32^2)
  a[0:33, 40:73] = 2001  # car 1: 33 * 33 = 1089 (32^2 <= area < 64^2)
  a[35:40, 0:20] = 1000  # person crowd: 100
  a[35:40, 30:40] = 255000  # void: 50; wall: 3200 - 1339 = 1861
  b = np.full((70, 70), 2001, np.int32)  # 4900 pixels
  b[0:10, 0:10] = 255000  # void: 100; car 1: 4800 (64^2 <= area < 96^2)
  return a, b


def test_label_stats_by_hand():
  meta = hand_meta()
  a, b = hand_labels()
  stats = dataset_stats.label_stats(a, meta, overlap_pixels=7)
  assert (stats.pixels, stats.void_pixels, stats.crowd_pixels,
          stats.overlap_pixels) == (3200, 50, 100, 7)
  assert stats.class_pixels.tolist() == [1861, 200, 1089]
  assert stats.class_instances.tolist() == [0, 1, 1]
  assert sorted(stats.instance_areas) == [100, 1089]
  split = dataset_stats.SplitStats(meta)
  split.add(stats)
  split.add(dataset_stats.label_stats(b, meta))
  assert split.area_histogram().tolist() == [1, 1, 1, 0]
  assert split.class_images.tolist() == [1, 1, 2]
  assert split.void_share == pytest.approx(150 / 8100)
  assert split.crowd_share == pytest.approx(100 / 8100)
  assert dataset_stats.area_histogram([1023, 1024, 4095, 4096, 9216]
                                      ).tolist() == [1, 2, 1, 1]
  with pytest.raises(ValueError, match=r'label values \[3001\] have no '):
    dataset_stats.label_stats(np.full((2, 2), 3001), meta)
  with pytest.raises(ValueError, match=r'\[5\] give stuff classes instance'):
    dataset_stats.label_stats(np.full((2, 2), 5), meta)


def test_inspect_split_adds_the_readers_overlap_pixels():
  # A reader that resolves overlapping instances (coco_instances) reports
  # the pixels it had to give to one of them in PanopticExample.stats.
  meta = hand_meta()
  a, b = hand_labels()

  def load(label, overlap):
    example = PanopticExample(1, 'x.png', np.zeros(label.shape + (3,),
                                                    np.uint8), label)
    if overlap is not None:
      example.stats = {'overlap_pixels': overlap}
    return example

  sources = [ExampleSource('a', lambda: load(a, 12)),
             ExampleSource('b', lambda: load(b, None)),
             ExampleSource('bad', lambda: load(np.full((2, 2), 3001), 1))]
  stats = dataset_stats.inspect_split(meta, sources, progress=False)
  assert (stats.num_images, stats.overlap_pixels, stats.pixels) == (2, 12,
                                                                    8100)
  assert [p['name'] for p in stats.problems] == ['bad']
  assert 'label values [3001] have no class' in stats.problems[0]['error']


def hand_dataset(folder):
  """The hand labels (and a third image, to be broken) in COCO panoptic
  format under ``folder``."""
  a, b = hand_labels()
  labels = {'a': a, 'b': b, 'c': a}
  sources = [ExampleSource(name, lambda name=name, label=label:
                           PanopticExample(0, name + '.png', np.zeros(
                               label.shape + (3,), np.uint8), label))
             for name, label in labels.items()]
  summary = coco_writers.write_coco_panoptic(hand_meta(), sources,
                                             str(folder), 'val',
                                             progress=False)
  assert not summary['dataset_image_ids']  # three ids 0: numbered 1..3
  (folder / 'val' / 'c.png').write_bytes(b'\x89PNG\r\n\x1a\n')  # truncated


def test_inspect_prints_the_hand_worked_numbers(tmp_path, capsys):
  hand_dataset(tmp_path / 'hand')
  before = sorted(str(p) for p in tmp_path.rglob('*'))
  assert run_cli('--dataset', 'coco_panoptic', '--input',
                 str(tmp_path / 'hand'), '--split', 'val', '--inspect') == 1
  captured = capsys.readouterr()
  lines = [' '.join(line.split()) for line in captured.out.splitlines()]
  assert lines[0] == 'split val: 2 images (1 more with problems, not counted)'
  assert lines[1] == ('pixels: 8100; void 1.85%, crowd 1.23%; pixels claimed '
                      'by several instances (overlap): 0')
  assert lines[2] == 'classes (3; 2 things):'
  assert lines[4:7] == ['0 7 wall stuff 1 - 22.98%',
                        '1 11 person thing 1 1 2.47%',
                        '2 13 car thing 2 2 72.70%']
  assert lines[7].startswith('instance sizes (area in pixels; 3 instances')
  assert lines[8:12] == ['< 32^2 1', '32^2 to < 64^2 1', '64^2 to < 96^2 1',
                         '>= 96^2 0']
  assert lines[12] == 'problems: 1'
  assert lines[13].startswith('c.png: corrupt: ') and 'val/c.png' in lines[13]
  assert 'problem: c.png' in captured.err  # met while listing, on stderr
  assert sorted(str(p) for p in tmp_path.rglob('*')) == before


def broken_synthetic(count, bad):
  meta, sources = synthetic.list_examples('validation', count, 32, 32)

  def broken(name):
    raise ValueError(f'{name}.png cannot be read')

  return meta, [ExampleSource(s.name, lambda n=s.name: broken(n))
                if i in bad else s for i, s in enumerate(sources)]


@pytest.mark.parametrize('output_format', ['coco_panoptic', 'coco_instances'])
def test_bad_example_skipped_or_nothing_written(tmp_path, output_format):
  write = coco_writers.WRITERS[output_format]
  meta, sources = broken_synthetic(4, bad={2})
  with pytest.raises(ValueError, match='validation_000002.png cannot be'):
    write(meta, sources, str(tmp_path / 'out'), 'validation', progress=False)
  assert not (tmp_path / 'out').exists()  # nothing half-written
  summary = write(meta, sources, str(tmp_path / 'out'), 'validation',
                  skip_bad=True, progress=False)
  assert summary['num_examples'] == 3
  assert summary['skipped'] == [{'name': 'validation_000002',
                                 'error': 'validation_000002.png cannot be '
                                          'read'}]
  data = json.loads(open(summary['files'][0], encoding='utf-8').read())
  assert [image['id'] for image in data['images']] == [0, 1, 3]
  assert sorted(os.listdir(tmp_path / 'out' / 'validation')) == [
      'validation_000000.png', 'validation_000001.png',
      'validation_000003.png']
  with pytest.raises(FileExistsError, match='already holds split'):
    write(meta, sources, str(tmp_path / 'out'), 'validation', progress=False)


def test_a_failure_after_some_files_leaves_an_existing_folder_as_it_was(
    tmp_path):
  (tmp_path / 'keep.txt').write_text('mine')
  meta, sources = broken_synthetic(3, bad={1})
  with pytest.raises(ValueError, match='validation_000001'):
    coco_writers.write_coco_panoptic(meta, sources, str(tmp_path), 'validation',
                                     progress=False)
  assert sorted(os.listdir(tmp_path)) == ['keep.txt']


def test_a_failure_while_placing_the_files_takes_them_back(tmp_path,
                                                           monkeypatch):
  # The images are moved in place and instances_<split>.json is written;
  # then stuff_<split>.json fails (a full disk, say).
  write_json = coco_writers._write_json  # pylint: disable=protected-access

  def failing(path, data):
    if 'stuff_' in path:
      raise OSError(28, 'No space left on device')
    write_json(path, data)

  monkeypatch.setattr(coco_writers, '_write_json', failing)
  meta, sources = synthetic.list_examples('validation', 2, 16, 16)
  (tmp_path / 'keep.txt').write_text('mine')
  with pytest.raises(OSError, match='No space left'):
    coco_writers.write_coco_instances(meta, sources, str(tmp_path),
                                      'validation', progress=False)
  assert sorted(os.listdir(tmp_path)) == ['keep.txt']


def test_duplicate_file_stems_are_a_bad_example(tmp_path):
  meta, sources = synthetic.list_examples('validation', 2, 16, 16)
  twin = ExampleSource('twin', lambda: PanopticExample(
      5, 'sub/validation_000000.jpg', *synthetic.make_scene(1, 16, 16)))
  with pytest.raises(ValueError, match="twin has the file stem "
                     "'validation_000000' of validation_000000"):
    coco_writers.write_coco_panoptic(meta, sources + [twin], str(tmp_path),
                                     'validation', progress=False)


def test_unknown_format_is_refused_by_the_parser(capsys):
  with pytest.raises(SystemExit):
    data_cli.build_parser().parse_args(['--dataset', 'synthetic', '--split',
                                        'train', '--format', 'coco'])
  assert "argument --format: invalid choice: 'coco'" in capsys.readouterr().err


def test_tfrecord_folder_to_coco_panoptic_keeps_the_labels(tmp_path):
  # pdl-data's TFRecords carry no image ids (numbered 1..N here) and are
  # read interleaved: compare by file name.
  assert synthetic_cli('--output', str(tmp_path / 'records'),
                       '--num_shards', '2') == 0
  assert run_cli('--dataset', 'tfrecord', '--input', str(tmp_path / 'records'),
                 '--split', 'validation', '--format', 'coco_panoptic',
                 '--output', str(tmp_path / 'coco')) == 0
  meta, originals = synthetic_examples()
  read_meta, sources = list_coco_panoptic(*layouts.coco_split_files(
      str(tmp_path / 'coco'), 'validation'))
  assert read_meta == meta
  back = {os.path.splitext(s.name)[0]: s.load() for s in sources}
  assert sorted(e.image_id for e in back.values()) == [1, 2, 3, 4, 5, 6]
  for original in originals:
    example = back[original.file_name]
    np.testing.assert_array_equal(example.image, original.image)
    np.testing.assert_array_equal(example.panoptic, original.panoptic)


def test_tfds_coco_panoptic_to_coco_panoptic_matches_the_files(tmp_path):
  from test_data_sources import coco_examples  # pylint: disable=g-import-not-at-top
  from test_data_sources import mock_coco  # pylint: disable=g-import-not-at-top
  with mock_coco():
    assert run_cli('--dataset', 'tfds_coco_panoptic', '--split',
                   'validation', '--format', 'coco_panoptic', '--output',
                   str(tmp_path)) == 0
  expected_meta, expected = coco_examples()
  meta, sources = list_coco_panoptic(*layouts.coco_split_files(
      str(tmp_path), 'validation'))
  assert meta == expected_meta
  for source, example in zip(sources, expected, strict=True):
    back = source.load()
    assert back.file_name == os.path.splitext(example.file_name)[0] + '.png'
    np.testing.assert_array_equal(back.image, example.image)
    np.testing.assert_array_equal(back.panoptic, example.panoptic)
