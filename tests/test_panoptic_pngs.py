"""panoptic_pngs reader: semantic + instance-id PNG pairs against a per-pixel
numpy oracle, 8 and 16 bit, the classes file's schema, every error message,
the layout checks and the classes read before TensorFlow."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from pdl_tf.cli.shared import checks
from pdl_tf.data.formats import classes_file
from pdl_tf.data.formats import errors
from pdl_tf.data.formats import layouts
from pdl_tf.data import sources

H, W = 32, 48
VOID = 255 * 1000
CLASSES = [{'id': 7, 'name': 'road', 'isthing': False,
            'color': [128, 64, 128]},
           {'id': 26, 'name': 'car', 'isthing': True},
           {'id': 24, 'name': 'person', 'isthing': 1, 'color': [220, 20, 60]},
           {'id': 300, 'name': 'wall', 'isthing': 0}]


def scene(bits):
  """(semantic, instance) of one image: road left, wall right (16 bit
  only), cars with ids 5000 and 17 and a crowd (0), persons with ids 3 and
  17, void with a stray instance id (ignored)."""
  semantic = np.full((H, W), 7, np.int64)
  instance = np.zeros((H, W), np.int64)
  if bits == 16:
    semantic[:, 40:] = 300
  semantic[0:10, 0:10], instance[0:10, 0:10] = 26, 5000 if bits == 16 else 50
  semantic[0:10, 10:20], instance[0:10, 10:20] = 26, 17
  semantic[10:20, 0:10] = 26                    # crowd: instance 0
  semantic[20:30, 0:5], instance[20:30, 0:5] = 24, 17
  semantic[20:30, 5:10], instance[20:30, 5:10] = 24, 3
  semantic[30:, :], instance[30:, :] = 255, 9   # void: id ignored
  return semantic, instance


def save_png(path, values, bits):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(values.astype(np.uint16 if bits == 16 else np.uint8)).save(
      path)


def write(root, bits=8, stems=('x', 'y'), split='train', classes=None,
          suffix='yaml'):
  """A panoptic_pngs dataset; returns {stem: (semantic, instance)}."""
  classes = CLASSES if classes is None else classes
  if suffix == 'yaml':
    (root / 'classes.yaml').write_text(yaml.safe_dump(classes))
  else:
    (root / 'classes.json').write_text(json.dumps(classes))
  pairs = {}
  for folder in ('images', 'semantic', 'instance'):
    (root / split / folder).mkdir(parents=True, exist_ok=True)
  for k, stem in enumerate(stems):
    semantic, instance = scene(bits)
    semantic, instance = np.roll(semantic, k, 1), np.roll(instance, k, 1)
    image = root / split / 'images' / f'{stem}.{"png" if k else "jpg"}'
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 40 * k, np.uint8)).save(image)
    save_png(root / split / 'semantic' / f'{stem}.png', semantic, bits)
    save_png(root / split / 'instance' / f'{stem}.png', instance, bits)
    pairs[stem] = semantic, instance
  return pairs


def oracle(semantic, instance, classes):
  """Per pixel: class index by id, instances renumbered per class by
  increasing instance value, crowd 0, void 255."""
  index = {c['id']: i for i, c in enumerate(classes)}
  label = np.full((H, W), VOID, np.int64)
  numbers = {}
  for i, c in enumerate(classes):
    if c['isthing']:
      ids = sorted(set(instance[semantic == c['id']].tolist()) - {0})
      numbers[i] = {v: n + 1 for n, v in enumerate(ids)}
  for y in range(H):
    for x in range(W):
      value = int(semantic[y, x])
      if value == 255:
        continue
      cls = index[value]
      label[y, x] = cls * 1000 + (numbers[cls][int(instance[y, x])]
                                  if cls in numbers and instance[y, x] else 0)
  return label


def load(root, split='train', **kwargs):
  meta, split_sources = sources.list_split('panoptic_pngs', str(root), split,
                                           **kwargs)
  return meta, [s.load() for s in split_sources]


@pytest.mark.parametrize('bits,suffix', [(8, 'yaml'), (16, 'json')])
def test_pairs_match_the_oracle(tmp_path, bits, suffix):
  pairs = write(tmp_path, bits, suffix=suffix)
  meta, examples = load(tmp_path)
  assert meta.class_names == ['road', 'car', 'person', 'wall']
  assert meta.category_ids == [7, 26, 24, 300]
  assert meta.is_thing == [False, True, True, False]
  assert meta.colors == [(128, 64, 128), (0, 0, 0), (220, 20, 60), (0, 0, 0)]
  assert [e.file_name for e in examples] == ['x.jpg', 'y.png']
  for example, (semantic, instance) in zip(examples, pairs.values()):
    np.testing.assert_array_equal(example.panoptic,
                                  oracle(semantic, instance, CLASSES))
    assert example.image.shape == (H, W, 3)
  x = examples[0].panoptic
  # Hand-worked: cars 17 < 50/5000 -> instances 1, 2; persons 3 < 17.
  assert x[0, 15] == 1001 and x[0, 5] == 1002 and x[15, 5] == 1000
  assert x[25, 7] == 2001 and x[25, 2] == 2002 and (x[30:] == VOID).all()
  assert x[0, 30] == 0 and x[0, 45] == (3000 if bits == 16 else 0)


def test_the_label_divisor_bounds_the_instances(tmp_path):
  write(tmp_path, stems=('x',))
  with pytest.raises(ValueError, match=r"instance/x.png: 2 "
                     r"instances of class 1 \('car'\), but label_divisor 2"):
    load(tmp_path, label_divisor=2)


def test_pair_file_errors(tmp_path):
  write(tmp_path)
  (tmp_path / 'train' / 'instance' / 'y.png').unlink()
  with pytest.raises(errors.DatasetError, match=r"images/y.png has no pair "
                     r"file in .*train/instance \(expected .*instance/y.png"):
    load(tmp_path)
  write(tmp_path)
  (tmp_path / 'train' / 'images' / 'x.jpg').unlink()
  with pytest.raises(errors.DatasetError, match='semantic/x.png has no pair '
                     'file in .*train/images'):
    load(tmp_path)
  write(tmp_path)
  Image.new('RGB', (W, H)).save(tmp_path / 'train' / 'images' / 'x.png')
  with pytest.raises(errors.DatasetError, match='x.jpg and x.png share the '
                     "stem 'x'"):
    load(tmp_path)


def test_label_errors_name_the_file(tmp_path):
  pairs = write(tmp_path, stems=('x',))
  semantic, instance = pairs['x']
  folder = tmp_path / 'train'
  save_png(folder / 'instance' / 'x.png', instance[:, :40], 8)
  with pytest.raises(ValueError, match=r'semantic/x.png is 48x32 but '
                     r'.*instance/x.png is 40x32'):
    load(tmp_path)
  save_png(folder / 'instance' / 'x.png', instance, 8)
  bad = semantic.copy()
  bad[31, :3] = 99
  save_png(folder / 'semantic' / 'x.png', bad, 8)
  with pytest.raises(ValueError, match=r'semantic/x.png: value 99 \(3 '
                     'pixels\\) is not a class id of the classes file'):
    load(tmp_path)
  save_png(folder / 'semantic' / 'x.png', semantic, 8)
  bad = instance.copy()
  bad[25:27, 40:42] = 4
  save_png(folder / 'instance' / 'x.png', bad, 8)
  with pytest.raises(ValueError, match=r"instance/x.png: 4 pixels of stuff "
                     r"class 7 \('road'\) have an instance id \(e.g. 4\)"):
    load(tmp_path)
  Image.new('RGB', (W, H)).save(folder / 'instance' / 'x.png')
  with pytest.raises(ValueError, match="instance PNG '.*instance/x.png' has "
                     'mode RGB; it must have one channel'):
    load(tmp_path)
  save_png(folder / 'instance' / 'x.png', instance, 8)
  Image.fromarray(np.zeros((W, W, 3), np.uint8)).save(
      folder / 'images' / 'x.jpg')
  with pytest.raises(ValueError, match=r'semantic/x.png is 48x32 but its '
                     r'image .*x.jpg is 48x48'):
    load(tmp_path)


BAD_CLASSES = [
    (lambda c: c.append(dict(CLASSES[0], name='road2')),
     "entry 4 repeats id 7 of entry 0"),
    (lambda c: c.append(dict(CLASSES[0], id=8)),
     "entry 4 repeats name 'road' of entry 0"),
    (lambda c: c[1].update(id='26'), "entry 1 has id '26'; ids are ints"),
    (lambda c: c[1].update(id=255), 'entry 1 has id 255; ids are 0..65535 '
     'but 255'),
    (lambda c: c[2].pop('isthing'), "entry 2 lacks the key 'isthing'"),
    (lambda c: c[2].pop('name'), "entry 2 lacks the key 'name'"),
    (lambda c: c[0].update(is_thing=True), r"entry 0 has unknown keys "
     r"\['is_thing'\]"),
    (lambda c: c[0].update(color=[1, 2]), r'entry 0 \(id 7\) has color'),
    (lambda c: c[3].update(isthing='yes'), r"entry 3 \(id 300\) has isthing "
     "'yes'"),
    (lambda c: c.__setitem__(0, 'road'), "entry 0 is 'road', not a mapping"),
]


@pytest.mark.parametrize('suffix', ['yaml', 'json'])
@pytest.mark.parametrize('change,message', BAD_CLASSES)
def test_bad_classes_files_name_the_entry(tmp_path, change, message, suffix):
  classes = json.loads(json.dumps(CLASSES))
  change(classes)
  write(tmp_path, classes=classes, suffix=suffix, stems=())
  path = tmp_path / f'classes.{suffix}'
  with pytest.raises(ValueError, match=f'{path}: {message}'):
    classes_file.read_classes(str(path))
  with pytest.raises(errors.DatasetError, match=f'{path}: {message}'):
    sources.list_split('panoptic_pngs', str(tmp_path), 'train')


def test_classes_file_must_be_a_list(tmp_path):
  (tmp_path / 'classes.yaml').write_text('road: 7\n')
  with pytest.raises(ValueError, match='classes.yaml must hold a non-empty '
                     'list of classes'):
    classes_file.read_classes(str(tmp_path / 'classes.yaml'))


def test_layout_checks_and_class_names(tmp_path):
  with pytest.raises(FileNotFoundError, match='no classes file: .*classes.'
                     'yaml'):
    layouts.check_split('panoptic_pngs', str(tmp_path), 'train')
  (tmp_path / 'classes.yaml').write_text(yaml.safe_dump(CLASSES))
  with pytest.raises(FileNotFoundError, match="no images folder for split "
                     "'train': .*train/images"):
    layouts.check_split('panoptic_pngs', str(tmp_path), 'train')
  write(tmp_path)
  layouts.check_split('panoptic_pngs', str(tmp_path), 'train')
  with pytest.raises(FileNotFoundError, match="no images folder for split "
                     "'val'"):
    checks.dataset_files('panoptic_pngs', str(tmp_path), 'val')
  (tmp_path / 'train' / 'semantic' / 'x.png').rename(tmp_path / 'x.png')
  (tmp_path / 'train' / 'semantic' / 'y.png').unlink()
  (tmp_path / 'train' / 'semantic').rmdir()
  with pytest.raises(FileNotFoundError, match="no semantic folder"):
    layouts.check_split('panoptic_pngs', str(tmp_path), 'train')
  assert [c['name'] for c in classes_file.read_classes(
      layouts.panoptic_pngs_classes_file(str(tmp_path)))] == [
          'road', 'car', 'person', 'wall']
  (tmp_path / 'train' / 'semantic').mkdir()
  (tmp_path / 'classes.yaml').write_text('- {id: 1, name: a}\n')
  with pytest.raises(checks.UsageError, match="classes.yaml: entry 0 lacks "
                     "the key 'isthing'"):
    checks.dataset_files('panoptic_pngs', str(tmp_path), 'train')
  (tmp_path / 'classes.json').write_text('[]')
  with pytest.raises(checks.UsageError, match='keep one classes file'):
    checks.dataset_files('panoptic_pngs', str(tmp_path), 'train')
