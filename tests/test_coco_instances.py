"""coco_instances reader: masks against pycocotools' COCO.annToMask, crowd,
stuff (JSON and PNGs), the overlap rule and its count, class order, every
bad-annotation message, the layout checks, pdl-data and the pipeline."""

import copy
import json
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_api
from pycocotools.coco import COCO

from helpers import run_python
from pdl_tf import config_io
from pdl_tf.cli.shared import checks
from pdl_tf.cli import data as data_cli
from pdl_tf.data.formats import errors
from pdl_tf.data.formats import instances_json
from pdl_tf.data.formats import layouts
from pdl_tf.data import pipeline
from pdl_tf.data import sources
from pdl_tf.data.readers import tfrecords

H, W = 32, 48
VOID = 255 * 1000


def box(top, left, bottom, right):
  """bool [H, W], rows top..bottom-1, columns left..right-1."""
  mask = np.zeros((H, W), bool)
  mask[top:bottom, left:right] = True
  return mask


def compressed(mask):
  rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {'size': [H, W], 'counts': rle['counts'].decode()}


def uncompressed(mask):
  """COCO's uncompressed RLE: run lengths in column-major order, from 0s."""
  flat = mask.T.reshape(-1).astype(int)
  changes = np.flatnonzero(np.diff(flat)) + 1
  runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
  return {'size': [H, W], 'counts': ([0] if flat[0] else []) + runs}


def rectangle(top, left, bottom, right):
  """A polygon (x, y pairs) around pixels top..bottom-1, left..right-1 as
  pycocotools rasterises it."""
  return [[left, top, right, top, right, bottom, left, bottom]]


IMAGES = [{'id': 1, 'file_name': 'a.png', 'height': H, 'width': W},
          {'id': 2, 'file_name': 'b.png', 'height': H, 'width': W},
          {'id': 3, 'file_name': 'c.png', 'height': H, 'width': W}]


def instances():
  """Things: car (id 3), person (id 1). Image 1: a big car polygon with a
  smaller person (compressed RLE) on it; a car (uncompressed RLE) inside a
  car crowd region; two persons of one size overlapping (later id wins).
  Image 2: a person. Image 3: nothing."""
  return {
      'images': copy.deepcopy(IMAGES),
      'categories': [{'id': 3, 'name': 'car', 'color': [0, 0, 142]},
                     {'id': 1, 'name': 'person', 'isthing': 1}],
      'annotations': [
          {'id': 10, 'image_id': 1, 'category_id': 3, 'iscrowd': 0,
           'segmentation': rectangle(2, 2, 14, 20)},
          {'id': 11, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
           'segmentation': compressed(box(8, 15, 16, 26))},
          {'id': 12, 'image_id': 1, 'category_id': 3, 'iscrowd': 0,
           'segmentation': uncompressed(box(20, 30, 28, 41))},
          {'id': 13, 'image_id': 1, 'category_id': 3, 'iscrowd': 1,
           'segmentation': compressed(box(18, 25, 31, 46))},
          {'id': 15, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
           'segmentation': rectangle(22, 2, 30, 8)},
          {'id': 14, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
           'segmentation': rectangle(24, 5, 32, 11)},
          {'id': 20, 'image_id': 2, 'category_id': 1, 'iscrowd': 0,
           'segmentation': [[4, 4, 20, 6, 12, 25], [30, 10, 40, 10, 35, 20]]},
      ]}


def stuff():
  """COCO-Stuff style: sky under the top of image 1, 'other' (skipped) and
  road on image 2."""
  return {
      'images': copy.deepcopy(IMAGES),
      'categories': [{'id': 149, 'name': 'road', 'supercategory': 'ground'},
                     {'id': 106, 'name': 'sky', 'color': [70, 130, 180]},
                     {'id': 183, 'name': 'other'}],
      'annotations': [
          {'id': 100, 'image_id': 1, 'category_id': 106, 'iscrowd': 0,
           'segmentation': compressed(box(0, 0, 10, W))},
          {'id': 101, 'image_id': 1, 'category_id': 183, 'iscrowd': 0,
           'segmentation': compressed(box(10, 0, 32, W))},
          {'id': 102, 'image_id': 2, 'category_id': 149, 'iscrowd': 0,
           'segmentation': rectangle(20, 0, 32, W)},
      ]}


def write(root, split='train', data=None, stuff_data=None, images=True):
  """A coco_instances dataset under ``root``; returns the JSON paths."""
  (root / 'annotations').mkdir(parents=True, exist_ok=True)
  (root / split).mkdir(exist_ok=True)
  data = instances() if data is None else data
  rng = np.random.default_rng(0)
  if images:
    for image in IMAGES:
      Image.fromarray(rng.integers(0, 255, (H, W, 3), np.uint8)).save(
          root / split / image['file_name'])
  paths = [root / 'annotations' / f'instances_{split}.json']
  paths[0].write_text(json.dumps(data))
  if stuff_data is not None:
    paths.append(root / 'annotations' / f'stuff_{split}.json')
    paths[1].write_text(json.dumps(stuff_data))
  return paths


def load(root, split='train', **kwargs):
  meta, split_sources = sources.list_split('coco_instances', str(root),
                                           split, **kwargs)
  return meta, [source.load() for source in split_sources]


def oracle(json_paths, meta, image_id):
  """Expected label and overlap count of one image, from annToMask and the
  rule written per pixel: of the annotations covering a pixel, the winner
  has the highest (kind: thing > crowd > stuff, -area, annotation id)."""
  index = {c: i for i, c in enumerate(meta.category_ids)}
  label = np.full((H, W), VOID, np.int64)
  best = np.full((H, W, 3), -np.inf)
  claims = np.zeros((H, W), int)
  numbered = {}
  for path in json_paths:
    coco = COCO(str(path))
    for ann in coco.dataset['annotations']:
      if ann['category_id'] == 183:
        continue
      cls = index[ann['category_id']]
      instance, kind = 0, 0
      if meta.is_thing[cls]:
        kind = 1 if ann['iscrowd'] else 2
      if kind == 2:  # numbered per class in JSON order, all images
        numbered.setdefault((ann['image_id'], cls), 0)
        numbered[ann['image_id'], cls] += 1
        instance = numbered[ann['image_id'], cls]
      if ann['image_id'] != image_id:
        continue
      mask = coco.annToMask(ann).astype(bool)
      key = np.array([kind, -mask.sum(), ann['id']])
      for y, x in zip(*np.nonzero(mask)):
        claims[y, x] += 1
        if tuple(key) > tuple(best[y, x]):
          best[y, x] = key
          label[y, x] = cls * 1000 + instance
  return label, int((claims > 1).sum())


def test_masks_crowd_stuff_and_overlaps_match_the_oracle(tmp_path):
  paths = write(tmp_path, data=instances(), stuff_data=stuff())
  meta, examples = load(tmp_path)
  assert meta.class_names == ['car', 'person', 'road', 'sky']
  assert meta.category_ids == [3, 1, 149, 106]
  assert meta.is_thing == [True, True, False, False]
  assert meta.colors == [(0, 0, 142), (0, 0, 0), (0, 0, 0), (70, 130, 180)]
  assert [e.file_name for e in examples] == ['a.png', 'b.png', 'c.png']
  for example in examples:
    expected, overlaps = oracle(paths, meta, example.image_id)
    np.testing.assert_array_equal(example.panoptic, expected)
    assert example.stats == {'overlap_pixels': overlaps}
    assert example.image.shape == (H, W, 3)
  a, b, c = (e.panoptic for e in examples)
  # Hand-worked pixels of image 1 (y, x):
  assert a[5, 5] == 1            # car 1 (ann 10) over sky
  assert a[9, 16] == 1001        # person 1 (ann 11, 88 px) over car 1 (216)
  assert a[0, 40] == 3000        # sky alone
  assert a[22, 32] == 2          # car 2 (ann 12) inside the crowd (ann 13)
  assert a[19, 40] == 0          # the car crowd region: instance 0
  assert a[27, 6] == 1002        # ann 15 and ann 14 tie (48 px): id 15 wins
  assert a[31, 9] == 1003        # ann 14 alone
  assert a[15, 30] == VOID       # no annotation ('other' is skipped)
  # Pixels claimed twice or more: car 1 and sky (rows 2-9, columns 2-19)
  # 144, person 1 and sky outside car 1 (rows 8-9, columns 20-25) 12,
  # car 1 and person 1 below the sky (rows 10-13, columns 15-19) 20,
  # car 2 in the crowd 88, the two persons (rows 24-29, columns 5-7) 18.
  assert examples[0].stats['overlap_pixels'] == 144 + 12 + 20 + 88 + 18
  assert (b[20:] != VOID).all() and set(np.unique(b // 1000)) <= {1, 2, 255}
  assert (c == VOID).all() and examples[2].stats == {'overlap_pixels': 0}


def test_without_stuff_annotations_of_isthing_0_categories_are_stuff(
    tmp_path):
  data = instances()
  data['categories'].insert(0, {'id': 7, 'name': 'grass', 'isthing': 0})
  data['annotations'].append({'id': 30, 'image_id': 3, 'category_id': 7,
                              'segmentation': compressed(box(0, 0, 4, 4))})
  paths = write(tmp_path, data=data)
  meta, examples = load(tmp_path)
  assert meta.class_names == ['grass', 'car', 'person']  # as listed
  assert meta.category_ids == [7, 3, 1]
  assert (examples[2].panoptic[:4, :4] == 0).all()
  for example in examples:
    np.testing.assert_array_equal(example.panoptic, oracle(
        paths, meta, example.image_id)[0])


def write_stuff_pngs(root, values, bits=8):
  folder = root / 'annotations' / 'stuff_train'
  folder.mkdir(parents=True, exist_ok=True)
  for image in IMAGES:
    array = values.astype(np.uint16 if bits == 16 else np.uint8)
    Image.fromarray(array).save(folder / image['file_name'])
  return folder


@pytest.mark.parametrize('bits', [8, 16])
def test_stuff_pngs_lie_under_the_annotations(tmp_path, bits):
  data = instances()
  data['categories'] += [{'id': 40, 'name': 'wall', 'isthing': 0},
                         {'id': 300 if bits == 16 else 41, 'name': 'floor',
                          'isthing': 0}]
  write(tmp_path, data=data)
  floor = 300 if bits == 16 else 41
  values = np.zeros((H, W), int)   # 0: unlabeled
  values[:, :10] = 40
  values[:, 10:20] = floor
  values[:, 20:24] = 255           # unlabeled
  values[:, 24:28] = 3             # a thing id: unlabeled in a stuff PNG
  write_stuff_pngs(tmp_path, values, bits)
  meta, examples = load(tmp_path)
  assert meta.class_names == ['car', 'person', 'wall', 'floor']
  c = examples[2].panoptic         # no annotations: the PNG alone
  assert (c[:, :10] == 2000).all() and (c[:, 10:20] == 3000).all()
  assert (c[:, 20:] == VOID).all()
  a = examples[0].panoptic
  assert a[5, 5] == 1 and a[0, 5] == 2000  # car over wall; wall
  # Car 1 and person 1, car 2 and the crowd, the two persons; the PNG
  # claims no pixel.
  assert examples[0].stats['overlap_pixels'] == 30 + 88 + 18
  values[0, 0] = 50
  write_stuff_pngs(tmp_path, values, bits)
  with pytest.raises(ValueError, match=r'stuff_train/a.png: value 50 \(1 '
                     'pixels\\) is no category'):
    load(tmp_path)
  (tmp_path / 'annotations' / 'stuff_train' / 'b.png').unlink()
  with pytest.raises(errors.DatasetError, match=r'image 2 \(b.png\) has no '
                     'stuff PNG: .*stuff_train/b.png'):
    load(tmp_path)


def test_stuff_pngs_need_declared_stuff_and_no_stuff_annotations(tmp_path):
  write(tmp_path)
  write_stuff_pngs(tmp_path, np.zeros((H, W), int))
  with pytest.raises(errors.DatasetError, match='instances_train.json: the '
                     'stuff PNGs .* need their stuff categories declared'):
    load(tmp_path)
  data = instances()
  data['categories'].append({'id': 40, 'name': 'wall', 'isthing': 0})
  data['annotations'].append({'id': 30, 'image_id': 3, 'category_id': 40,
                              'segmentation': rectangle(0, 0, 4, 4)})
  write(tmp_path, data=data)
  with pytest.raises(errors.DatasetError, match='annotation 30: category 40 '
                     'is a stuff class, which comes from the stuff PNGs'):
    load(tmp_path)


def mutate(change):
  data = instances()
  change(data)
  return data


def annotation(data, ann_id):
  return next(a for a in data['annotations'] if a['id'] == ann_id)


BAD_ANNOTATIONS = [  # (change of the instances JSON, message) at listing
    (lambda d: annotation(d, 10).update(segmentation=[[1, 1, 5, 5]]),
     'annotation 10: polygon 0 has 4 numbers; a polygon needs at least 3 '
     r'points \(6 numbers\)'),
    (lambda d: annotation(d, 10).update(segmentation=[[1, 1, 5, 5, 9]]),
     'annotation 10: polygon 0 has 5 numbers'),
    (lambda d: annotation(d, 10).update(segmentation=[]),
     'annotation 10: segmentation is an empty polygon list'),
    (lambda d: annotation(d, 11)['segmentation'].update(size=[W, H]),
     r'annotation 11: RLE size \[48, 32\] differs from image 1 \(a.png\), '
     r'which is \[height, width\] = \[32, 48\]'),
    (lambda d: annotation(d, 12)['segmentation'].update(size=[H, 40]),
     r'annotation 12: RLE size \[32, 40\] differs from image 1'),
    (lambda d: annotation(d, 12)['segmentation']['counts'].append(3),
     'annotation 12: uncompressed RLE counts add up to 1539 pixels, but '
     'size .* has 1536'),
    (lambda d: annotation(d, 11).update(category_id=99),
     'annotation 11: unknown category_id 99'),
    (lambda d: annotation(d, 12).update(
        segmentation={'size': [H, W], 'counts': [H * W]}),
     'annotation 12: empty mask'),
    (lambda d: annotation(d, 11).update(
        segmentation=compressed(np.zeros((H, W), bool))),
     'annotation 11: empty mask'),
    (lambda d: annotation(d, 20).update(image_id=9),
     'annotation 20: unknown image_id 9'),
    (lambda d: annotation(d, 20).update(iscrowd=2),
     'annotation 20: iscrowd 2; expected 0 or 1'),
    (lambda d: annotation(d, 20).pop('segmentation'),
     'annotation 20: lacks the key segmentation'),
    (lambda d: annotation(d, 20).update(id=10),
     'annotation id 10 repeats'),
    (lambda d: d['images'][1].pop('width'),
     "image 2 lacks the key 'width'"),
    (lambda d: d['categories'].append({'id': 3, 'name': 'bus'}),
     r'category ids repeat: \[3\]'),
    (lambda d: d.pop('annotations'),
     "is not a COCO instances JSON: it lacks the key 'annotations'"),
]


@pytest.mark.parametrize('change,message', BAD_ANNOTATIONS)
def test_bad_annotations_are_refused_at_listing(tmp_path, change, message):
  json_file = write(tmp_path, data=mutate(change))[0]
  with pytest.raises(errors.DatasetError) as error:
    sources.list_split('coco_instances', str(tmp_path), 'train')
  assert str(error.value).startswith(str(json_file)), error.value
  assert '\n' not in str(error.value)
  assert re.search(message, str(error.value)), error.value
  # The same check without TensorFlow or images:
  with pytest.raises(ValueError, match=message):
    instances_json.parse_split(str(json_file))


def test_inspect_lists_every_bad_annotation_and_counts_the_rest(
    tmp_path, capsys):
  # Three bad annotations (10: a 2-point polygon, 11: an unknown category,
  # 20: a repeated id) are all listed, each naming the file and the
  # annotation; the images are still inspected without them.
  def change(data):
    annotation(data, 10).update(segmentation=[[1, 1, 5, 5]])
    annotation(data, 11).update(category_id=99)
    annotation(data, 20).update(id=12)
  json_file = write(tmp_path / 'data', data=mutate(change))[0]
  assert data_cli.main(data_cli.build_parser().parse_args([
      '--dataset', 'coco_instances', '--input', str(tmp_path / 'data'),
      '--split', 'train', '--inspect'])) == 1
  out = capsys.readouterr().out
  assert out.startswith('split train: 3 images\n'), out
  problems = out[out.index('problems: '):].splitlines()
  assert problems[0] == 'problems: 3', problems
  for line, message in zip(problems[1:], (
      'annotation 10: polygon 0 has 4 numbers', 'annotation 11: unknown '
      'category_id 99', 'annotation id 12 repeats')):
    assert line.startswith(f'  {json_file}: {message}'), line
    assert line.endswith('(left out of these counts; converting and '
                         'training refuse it)'), line
  with pytest.raises(errors.DatasetError, match='annotation 10'):
    sources.list_split('coco_instances', str(tmp_path / 'data'), 'train')


def test_missing_image_and_empty_polygon_mask(tmp_path):
  write(tmp_path)
  (tmp_path / 'train' / 'b.png').unlink()
  with pytest.raises(errors.DatasetError, match=r'instances_train.json: '
                     r"image 2: the image file '.*train/b.png' does not "
                     'exist'):
    load(tmp_path)
  # A sliver between pixel centres: a valid polygon that covers no pixel,
  # found when the mask is rasterised.
  data = mutate(lambda d: annotation(d, 20).update(
      segmentation=[[4.1, 4.1, 4.3, 4.1, 4.2, 4.3]]))
  json_file = write(tmp_path, data=data)[0]
  _, listed = sources.list_split('coco_instances', str(tmp_path), 'train')
  with pytest.raises(ValueError, match=f'{json_file}: annotation 20: empty '
                     'mask'):
    listed[1].load()


def test_stuff_json_errors_name_the_stuff_file(tmp_path):
  bad = stuff()
  bad['annotations'][0]['category_id'] = 5
  stuff_file = write(tmp_path, stuff_data=bad)[1]
  with pytest.raises(errors.DatasetError, match=f'{stuff_file}: annotation '
                     '100: unknown category_id 5'):
    load(tmp_path)
  bad = stuff()
  bad['categories'].append({'id': 3, 'name': 'car again'})
  write(tmp_path, stuff_data=bad)
  with pytest.raises(errors.DatasetError, match=f"{stuff_file}: category 3 "
                     r"\('car again'\) is also a category of .*"
                     'instances_train.json'):
    load(tmp_path)
  bad = stuff()
  bad['categories'].append({'id': 106, 'name': 'sky again'})
  write(tmp_path, stuff_data=bad)
  with pytest.raises(errors.DatasetError, match=f"{stuff_file}: category "
                     r"106 \('sky again'\) repeats in this file"):
    load(tmp_path)
  bad = stuff()  # 'other' annotations are skipped only where it is declared
  bad['categories'].pop()
  write(tmp_path, stuff_data=bad)
  with pytest.raises(errors.DatasetError, match=f'{stuff_file}: annotation '
                     '101: unknown category_id 183'):
    load(tmp_path)


def test_layout_checks_name_the_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='instances_train.json'):
    layouts.check_split('coco_instances', str(tmp_path), 'train')
  write(tmp_path, images=False)
  (tmp_path / 'train').rmdir()
  with pytest.raises(FileNotFoundError, match='no image folder for split '
                     "'train'"):
    layouts.check_split('coco_instances', str(tmp_path), 'train')
  write(tmp_path, stuff_data=stuff())
  layouts.check_split('coco_instances', str(tmp_path), 'train')
  (tmp_path / 'annotations' / 'stuff_train').mkdir()
  with pytest.raises(checks.UsageError, match='keep one source of stuff'):
    checks.dataset_files('coco_instances', str(tmp_path), 'train')
  (tmp_path / 'annotations' / 'stuff_train').rmdir()
  (tmp_path / 'annotations' / 'instances_train.json').write_text('')
  with pytest.raises(checks.UsageError, match='is not a JSON object: it is '
                     'empty'):
    checks.dataset_files('coco_instances', str(tmp_path), 'train')


def test_the_classes_read_before_tensorflow_are_the_readers(tmp_path):
  write(tmp_path, stuff_data=stuff())
  files = layouts.coco_instances_split_files(str(tmp_path), 'train')
  categories = instances_json.read_split_categories(files[0], files[2])
  meta, _ = load(tmp_path)
  assert [c['name'] for c in categories] == meta.class_names
  assert [c['id'] for c in categories] == meta.category_ids
  assert [bool(c['isthing']) for c in categories] == meta.is_thing
  _, listed = sources.list_split('coco_instances', str(tmp_path), 'train')
  assert [source.image_id for source in listed] == [1, 2, 3]  # the JSON's


def test_pdl_data_converts_it(tmp_path, capsys):
  root = tmp_path / 'data'
  write(root, stuff_data=stuff())
  out = tmp_path / 'records'
  args = data_cli.build_parser().parse_args([
      '--dataset', 'coco_instances', '--input', str(root), '--split',
      'train', '--output', str(out), '--num_shards', '2'])
  assert data_cli.main(args) == 0
  assert '3 examples in 2 shards' in capsys.readouterr().out
  meta, dataset = tfrecords.read_split(str(out), 'train')
  expected_meta, expected = load(root)
  assert meta.class_names == expected_meta.class_names
  got = {f.numpy(): p.numpy() for _, p, f in dataset}
  for example in expected:
    np.testing.assert_array_equal(got[example.file_name.encode()],
                                  example.panoptic)


def test_pipeline_batches_a_coco_instances_split(tmp_path):
  write(tmp_path, stuff_data=stuff())
  config = config_io.load_config('demo', params_override=(
      f'data.dataset=coco_instances,data.train.path={tmp_path},'
      f'data.train.split=train,data.train.num_examples=0,'
      f'data.train.batch_size=2,data.train.crop_size=[32,48],'
      'data.train.min_scale=1.0,data.train.max_scale=1.0,'
      f'model.num_classes=4,data.thing_class_ids=[0,1]'))
  batch = next(iter(pipeline.build_dataset(config)))
  assert batch[pipeline.IMAGE].shape == (2, 32, 48, 3)
  # Whole images (scale 1, crop = image size), possibly flipped: two of
  # the three labels.
  _, examples = load(tmp_path)
  labels = {e.panoptic.tobytes() for e in examples} | {
      e.panoptic[:, ::-1].tobytes() for e in examples}
  for panoptic in batch['panoptic'].numpy():
    assert panoptic.tobytes() in labels


def test_labels_turn_with_an_exif_rotated_image(tmp_path):
  # The JSON's width x height is the stored frame (48 x 32); the JPEG's EXIF
  # orientation 6 shows it turned 90 degrees clockwise, and the label turns
  # with it.
  write(tmp_path)
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(
      tmp_path / 'train' / 'a.png', format='JPEG', exif=exif.tobytes())
  meta, examples = load(tmp_path)
  stored, _ = oracle(write(tmp_path, images=False)[:1], meta, 1)
  assert examples[0].image.shape == (W, H, 3)
  np.testing.assert_array_equal(examples[0].panoptic, np.rot90(stored, -1))


def test_an_image_of_another_size_than_its_json_entry(tmp_path):
  write(tmp_path)
  Image.new('RGB', (40, 30)).save(tmp_path / 'train' / 'c.png')
  with pytest.raises(ValueError, match=r'the label of .*instances_train.json'
                     r': image 3 \(c.png\) is 48x32 but its image .*c.png is '
                     '40x30'):
    load(tmp_path)


def test_the_json_checks_run_without_tensorflow(tmp_path):
  json_file, stuff_file = write(tmp_path, stuff_data=stuff())
  result = run_python(f'''
      import sys
      from pdl_tf.data.formats import instances_json
      split = instances_json.parse_split({str(json_file)!r},
                                         {str(stuff_file)!r})
      print([c['name'] for c in split.categories],
            [len(i.segments) for i in split.images],
            'tensorflow' in sys.modules)''')
  assert result.returncode == 0, result.stderr
  assert result.stdout.split('\n')[0] == (
      "['car', 'person', 'road', 'sky'] [7, 2, 0] False")
