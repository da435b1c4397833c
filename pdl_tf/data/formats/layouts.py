"""Where each dataset keeps its files, without TensorFlow.

The readers (``coco_panoptic``, ``cityscapes``, ``mapillary_vistas``,
``coco_instances``, ``panoptic_pngs``, ``tfrecords``) and the commands'
argument checks (``cli/shared/checks.py``, run before TensorFlow starts) take their paths from here, so a root that lacks
a split's files is refused in a second, naming the file it looked for.

Layouts (``root`` is ``data.<split>.path``, ``split`` its ``split``):
  coco_panoptic     root/annotations/panoptic_<split>.json,
                    root/annotations/panoptic_<split>/*.png, root/<split>/
  (coco_instances   root/annotations/instances_<split>.json and
                    stuff_<split>.json, root/<split>/: what pdl-data
                    --format coco_instances writes)
  cityscapes        root/leftImg8bit/<split>/<city>/*_leftImg8bit.png,
                    root/gtFine/<split>/<city>/*_gtFine_instanceIds.png
  mapillary_vistas  one of VISTAS_LAYOUTS under root/<split>/, images in
                    root/<split>/images/
  coco_instances    root/annotations/instances_<split>.json, root/<split>/;
                    stuff (optional): root/annotations/stuff_<split>.json
                    or root/annotations/stuff_<split>/<image stem>.png
  panoptic_pngs     root/classes.yaml (or .json), root/<split>/images/,
                    root/<split>/semantic/*.png, root/<split>/instance/*.png
  tfrecord          root/metadata.json, root/<split>-*-of-*.tfrecord
"""

import glob
import json
import os

from pdl_tf.data.formats import classes_file

# Mapillary Vistas: (label folder under root/<split>, JSON name), in the
# order tried: the v1.2 download, v2.0's v1.2 labels, v2.0's own labels
# (124 classes).
VISTAS_LAYOUTS = (('panoptic', 'panoptic_2018.json'),
                  (os.path.join('v1.2', 'panoptic'), 'panoptic_2018.json'),
                  (os.path.join('v2.0', 'panoptic'), 'panoptic_2020.json'))
TFRECORD_METADATA = 'metadata.json'


def _json_object_file(path, what):
  """Raises ValueError unless ``path`` starts like a JSON object (its first
  non-blank byte is '{'): an empty or truncated-to-nothing file is named
  here, before TensorFlow starts; the full parse comes with the reading."""
  with open(path, 'rb') as f:
    start = f.read(4096).lstrip()
  if not start.startswith(b'{'):
    raise ValueError(f'{what} {path!r} is not a JSON object: it '
                     + ('is empty.' if not start else
                        f'starts with {start[:12]!r}.'))
  return path


def coco_panoptic_paths(root, split):
  """(panoptic JSON, image folder, panoptic PNG folder) of a COCO panoptic
  split under ``root``, as panopticapi and detectron2 expect them: root/
  annotations/panoptic_<split>.json, root/<split>/, root/annotations/
  panoptic_<split>/ (nothing checked)."""
  annotations = os.path.join(root, 'annotations')
  return (os.path.join(annotations, f'panoptic_{split}.json'),
          os.path.join(root, split),
          os.path.join(annotations, f'panoptic_{split}'))


def coco_instances_paths(root, split):
  """(instances JSON, stuff JSON, image folder) of a COCO detection split
  under ``root``: root/annotations/instances_<split>.json, root/annotations/
  stuff_<split>.json (COCO-Stuff style), root/<split>/ (nothing checked)."""
  annotations = os.path.join(root, 'annotations')
  return (os.path.join(annotations, f'instances_{split}.json'),
          os.path.join(annotations, f'stuff_{split}.json'),
          os.path.join(root, split))


def coco_output_paths(output_format, root, split):
  """The paths pdl-data's ``output_format`` ('coco_panoptic' or
  'coco_instances') writes for ``split`` under ``root``."""
  if output_format == 'coco_panoptic':
    return coco_panoptic_paths(root, split)
  if output_format == 'coco_instances':
    return coco_instances_paths(root, split)
  raise ValueError(f'no COCO output format {output_format!r}.')


def refuse_coco_output(output_format, root, split):
  """Raises FileExistsError if ``root`` already holds ``split`` in
  ``output_format``: any path coco_output_paths names exists."""
  for path in coco_output_paths(output_format, root, split):
    if os.path.lexists(path):
      raise FileExistsError(
          f'{path} exists: {root!r} already holds split {split!r} in '
          f'{output_format} format; delete it or choose another folder.')


def coco_split_files(root, split):
  """(panoptic JSON, image folder, panoptic PNG folder) of a COCO split.

  Raises:
    FileNotFoundError: the JSON, the image folder or the PNG folder is
      missing (its path named).
    ValueError: the JSON is empty or not an object.
  """
  json_file, image_folder, png_folder = coco_panoptic_paths(root, split)
  if not os.path.isfile(json_file):
    raise FileNotFoundError(
        f'no COCO panoptic JSON for split {split!r}: {json_file!r} does not '
        f'exist (expected root/annotations/panoptic_<split>.json).')
  _json_object_file(json_file, 'COCO panoptic JSON')
  _folder(image_folder, f'no COCO image folder for split {split!r}',
          'root/<split>/*.jpg')
  _folder(png_folder, f'no COCO panoptic PNG folder for split {split!r}',
          'root/annotations/panoptic_<split>/*.png')
  return json_file, image_folder, png_folder


def coco_instances_split_files(root, split):
  """(instances JSON, image folder, stuff JSON or None, stuff PNG folder
  or None) of a ``coco_instances`` split.

  Raises:
    FileNotFoundError: the JSON or the image folder is missing (its path
      named).
    ValueError: a JSON is empty or not an object, or both stuff sources
      exist (one must go).
  """
  annotations = os.path.join(root, 'annotations')
  json_file = os.path.join(annotations, f'instances_{split}.json')
  if not os.path.isfile(json_file):
    raise FileNotFoundError(
        f'no COCO instances JSON for split {split!r}: {json_file!r} does '
        'not exist (expected root/annotations/instances_<split>.json).')
  _json_object_file(json_file, 'COCO instances JSON')
  image_folder = os.path.join(root, split)
  _folder(image_folder, f'no image folder for split {split!r}',
          'root/<split>/*.jpg')
  stuff_file = os.path.join(annotations, f'stuff_{split}.json')
  stuff_folder = os.path.join(annotations, f'stuff_{split}')
  has_file, has_folder = (os.path.isfile(stuff_file),
                          os.path.isdir(stuff_folder))
  if has_file and has_folder:
    raise ValueError(f'both {stuff_file!r} and {stuff_folder!r} exist; keep '
                     'one source of stuff labels per split.')
  if has_file:
    _json_object_file(stuff_file, 'COCO stuff JSON')
  return (json_file, image_folder, stuff_file if has_file else None,
          stuff_folder if has_folder else None)


PANOPTIC_PNGS_CLASSES = ('classes.yaml', 'classes.json')
PANOPTIC_PNGS_FOLDERS = ('images', 'semantic', 'instance')


def panoptic_pngs_classes_file(root):
  """root/classes.yaml or root/classes.json of a ``panoptic_pngs`` root.

  Raises:
    FileNotFoundError: neither exists. ValueError: both exist.
  """
  found = [os.path.join(root, name) for name in PANOPTIC_PNGS_CLASSES
           if os.path.isfile(os.path.join(root, name))]
  if not found:
    raise FileNotFoundError(
        f'no classes file: {os.path.join(root, "classes.yaml")!r} does not '
        'exist (expected root/classes.yaml or root/classes.json, a list of '
        '{id, name, isthing, color}).')
  if len(found) == 2:
    raise ValueError(f'both {found[0]!r} and {found[1]!r} exist; keep one '
                     'classes file.')
  return found[0]


def panoptic_pngs_split_files(root, split):
  """(classes file, image folder, semantic folder, instance folder) of a
  ``panoptic_pngs`` split.

  Raises:
    FileNotFoundError: the classes file or a folder is missing (named).
    ValueError: both classes files exist.
  """
  classes = panoptic_pngs_classes_file(root)
  folders = tuple(os.path.join(root, split, name)
                  for name in PANOPTIC_PNGS_FOLDERS)
  for name, folder in zip(PANOPTIC_PNGS_FOLDERS, folders):
    _folder(folder, f'no {name} folder for split {split!r}',
            f'root/<split>/{name}/')
  return (classes,) + folders


def _folder(path, what, expected):
  """Raises FileNotFoundError '<what>: <path> does not exist (expected
  <expected>)' unless ``path`` is a folder."""
  if not os.path.isdir(path):
    state = 'is a file' if os.path.isfile(path) else 'does not exist'
    raise FileNotFoundError(f'{what}: {path!r} {state} (expected '
                            f'{expected}).')


def vistas_split_files(root, split):
  """(panoptic JSON, image folder, panoptic PNG folder) of a Mapillary
  Vistas split, the first of VISTAS_LAYOUTS that exists.

  Raises:
    FileNotFoundError: no JSON exists (the message lists the paths tried),
      or the image folder is missing.
    ValueError: the JSON is empty or not an object.
  """
  tried = []
  for folder, json_name in VISTAS_LAYOUTS:
    png_folder = os.path.join(root, split, folder)
    json_file = os.path.join(png_folder, json_name)
    if os.path.isfile(json_file):
      _json_object_file(json_file, 'Mapillary Vistas panoptic JSON')
      image_folder = os.path.join(root, split, 'images')
      _folder(image_folder, 'no Mapillary Vistas image folder for split '
              f'{split!r}', 'root/<split>/images/*.jpg')
      return json_file, image_folder, png_folder
    tried.append(json_file)
  raise FileNotFoundError(f'no Mapillary Vistas panoptic JSON for split '
                          f'{split!r}; tried {", ".join(tried)}.')


def cityscapes_image_pattern(root, split):
  """The glob pattern of a Cityscapes split's images.

  Raises:
    FileNotFoundError: root/leftImg8bit/<split> or root/gtFine/<split> is
      not a folder, or no image matches the pattern.
  """
  for folder in ('leftImg8bit', 'gtFine'):
    path = os.path.join(root, folder, split)
    if not os.path.isdir(path):
      raise FileNotFoundError(
          f'no Cityscapes {folder} folder for split {split!r}: {path!r} does '
          f'not exist (expected root/leftImg8bit/<split>/<city>/ and '
          f'root/gtFine/<split>/<city>/).')
  pattern = os.path.join(root, 'leftImg8bit', split, '*', '*_leftImg8bit.png')
  if next(glob.iglob(pattern), None) is None:
    raise FileNotFoundError(f'no Cityscapes images for split {split!r}: '
                            f'nothing matches {pattern!r}.')
  return pattern


def tfrecord_metadata(root):
  """Path of a pdl-data folder's metadata.json.

  Raises:
    FileNotFoundError: it is missing (the folder is not a pdl-data output).
  """
  path = os.path.join(root, TFRECORD_METADATA)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'{path} does not exist: convert the dataset with pdl-data first '
        f'(data.dataset tfrecord reads a folder pdl-data wrote).')
  with open(path, encoding='utf-8') as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path} is not valid JSON: {e}') from e
  if not isinstance(data, dict) or 'splits' not in data:
    raise ValueError(f'{path} is not a pdl-data metadata file (no '
                     "'splits'); convert the dataset with pdl-data.")
  return path


def check_split(dataset, root, split):
  """Raises FileNotFoundError (naming the path) when ``root`` lacks the
  files ``dataset`` reads for ``split``, ValueError when its JSON is
  empty or not an object or its classes file is bad; other datasets pass.
  (A JSON's annotations are checked when the split is listed, where it is
  loaded once: ``instances_json.parse_split`` for coco_instances.)"""
  if dataset == 'coco_panoptic':
    coco_split_files(root, split)
  elif dataset == 'mapillary_vistas':
    vistas_split_files(root, split)
  elif dataset == 'coco_instances':
    coco_instances_split_files(root, split)
  elif dataset == 'panoptic_pngs':  # and its classes file (a few lines)
    classes_file.read_classes(panoptic_pngs_split_files(root, split)[0])
  elif dataset == 'cityscapes':
    cityscapes_image_pattern(root, split)
  elif dataset == 'tfrecord':
    with open(tfrecord_metadata(root), encoding='utf-8') as f:
      converted = json.load(f)['splits']
    if split not in converted:
      raise FileNotFoundError(
          f'{root}: split {split!r} is not converted; converted: '
          f'{sorted(converted)} (pdl-data --split {split} writes it).')
