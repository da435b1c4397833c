"""Cityscapes instance AP, the Cityscapes convention, by cityscapesScripts.

The official ``evalInstanceLevelSemanticLabeling`` of the ``cityscapesscripts``
package (``pip install "pdl_tf[cityscapes]"``): per thing class, AP averaged
over IoU 0.5:0.05:0.95, ground-truth regions under 100 pixels ignored,
predictions mostly on void or on small regions not counted as false
positives; ``ap`` is the mean over classes, ``ap50`` the same at IoU 0.5.
It reads a ground-truth folder of ``*_gtFine_instanceIds.png`` files and a
folder of ``cityscapes_writer`` results (``<stem>_pred.txt`` + masks).

Example:
  >>> write_gt_instance_ids(stem, 'eval/gt', panoptic, label_ids, 1000, 255)
  >>> cityscapes_instance_ap('eval/gt', 'eval/instance')['ap']
"""

import contextlib
import copy
import glob
import json
import math
import os
import tempfile

import numpy as np
from PIL import Image

GT_SUFFIX = '_gtFine_instanceIds.png'


def write_gt_instance_ids(stem, folder, panoptic, label_ids, label_divisor,
                          ignore_label):
  """Writes a panoptic ground truth as a gtFine ``*_instanceIds.png``.

  In cityscapesScripts' numbering: package instance k >= 1 of a thing
  becomes label_id * 1000 + k - 1 (instances count from 0 there, the first
  car is 26000), crowd (instance 0) and stuff the bare label_id (< 1000, a
  "group" region), ignored pixels 0 ('unlabeled', void in the evaluation).
  It inverts ``data.cityscapes.panoptic_from_instance_ids``.

  Args:
    stem: Cityscapes image name, e.g. ``frankfurt_000000_000294``.
    folder: output folder (created).
    panoptic: int [H, W], train_id * label_divisor + instance.
    label_ids: sequence, train id -> Cityscapes label id.
    label_divisor: as in ``panoptic``.
    ignore_label: train id of ignored pixels.

  Returns:
    the path written.

  Raises:
    ValueError: a train id outside label_ids, or an instance above 1000
      (cityscapesScripts' encoding holds instances 0..999 per class).
  """
  panoptic = np.asarray(panoptic, np.int64)
  train_ids, instances = panoptic // label_divisor, panoptic % label_divisor
  ignored = train_ids == ignore_label
  table = np.asarray(label_ids, np.int64)
  bad = np.unique(train_ids[~ignored & ((train_ids < 0) |
                                        (train_ids >= len(table)))])
  if bad.size:
    raise ValueError(f'{stem}: train ids {bad.tolist()} outside 0..'
                     f'{len(table) - 1}.')
  if instances.max(initial=0) > 1000:
    raise ValueError(f'{stem}: instance {instances.max()} does not fit '
                     'the instanceIds encoding (instances 1..1000, written '
                     'as label_id * 1000 + 0..999).')
  labels = table[np.where(ignored, 0, train_ids)]
  values = np.where(instances > 0, labels * 1000 + instances - 1, labels)
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, stem + GT_SUFFIX)
  Image.fromarray(np.where(ignored, 0, values).astype(np.uint16)).save(path)
  return path


def check_installed():
  """Raises ImportError naming the extra to install if cityscapesScripts
  is missing."""
  _import_evaluation()


def _import_evaluation():
  try:
    # pylint: disable=g-import-not-at-top
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling
  except ImportError as error:
    raise ImportError('Cityscapes AP needs cityscapesScripts: pip install '
                      '"pdl_tf[cityscapes]"') from error
  return evalInstanceLevelSemanticLabeling


def _json_default(value):
  if isinstance(value, np.generic):  # NumPy 2 scalars, e.g. pixel counts
    return value.item()
  return value.__dict__  # what cityscapesScripts' own writer does


def _write_json(data, file_name):
  with open(file_name, 'w', encoding='utf-8') as f:
    json.dump(data, f, default=_json_default, sort_keys=True, indent=4)


@contextlib.contextmanager
def _numpy2_compatible(cs_eval):
  """Runs cityscapesScripts 2.3.0 under NumPy 2, for the call only.

  It calls np.in1d (removed in NumPy 2.4; np.isin on the flattened array
  replaces it) and writes NumPy integer counts to JSON, which its writer
  cannot encode under NumPy 2.
  """
  added_in1d = not hasattr(np, 'in1d')
  if added_in1d:
    np.in1d = lambda values, test, **kwargs: np.isin(np.ravel(values), test,
                                                     **kwargs)
  writer, cs_eval.writeDict2JSON = cs_eval.writeDict2JSON, _write_json
  try:
    yield
  finally:
    cs_eval.writeDict2JSON = writer
    if added_in1d:
      del np.in1d


def _fraction(value):
  value = float(value)
  return None if math.isnan(value) else value


def cityscapes_instance_ap(gt_folder, prediction_folder):
  """Runs cityscapesScripts' instance-level evaluation.

  Args:
    gt_folder: folder of ``<stem>_gtFine_instanceIds.png`` files.
    prediction_folder: folder of ``<stem>_pred.txt`` files and their masks
      (``cityscapes_writer.write_cityscapes_results``'s ``instance``).

  Returns:
    {'ap': float, 'ap50': float, 'per_class': {name: {'ap', 'ap50'}}},
    fractions; None where no class (or that class) has ground truth or
    predictions.

  Raises:
    ImportError: cityscapesScripts is not installed.
    FileNotFoundError: no ground-truth file in ``gt_folder``.
    RuntimeError: cityscapesScripts stopped on an error (it prints the
      ERROR line naming the file just before).
  """
  cs_eval = _import_evaluation()
  gt_files = sorted(glob.glob(os.path.join(gt_folder, '*' + GT_SUFFIX)))
  if not gt_files:
    raise FileNotFoundError(f'no *{GT_SUFFIX} file in {gt_folder}')
  with (tempfile.TemporaryDirectory() as work, contextlib.chdir(work),
        _numpy2_compatible(cs_eval)):
    # The script keeps its options in a module-level object and writes
    # matches.json to the working directory: a copy, run in a temp folder.
    args = copy.copy(cs_eval.args)
    args.predictionPath = os.path.abspath(prediction_folder)
    args.predictionWalk = None
    args.gtInstancesFile = os.path.join(work, 'gtInstances.json')
    args.exportFile = os.path.join(work, 'result.json')
    args.JSONOutput = args.colorized = args.csv = False
    args.quiet = True
    try:
      predictions = [cs_eval.getPrediction(f, args) for f in gt_files]
      averages = cs_eval.evaluateImgLists(predictions, gt_files,
                                          args)['averages']
    except SystemExit as stop:
      raise RuntimeError(
          f'cityscapesScripts stopped evaluating {prediction_folder} against '
          f'{gt_folder} (its ERROR line is printed above)') from stop
  return {'ap': _fraction(averages['allAp']),
          'ap50': _fraction(averages['allAp50%']),
          'per_class': {name: {'ap': _fraction(value['ap']),
                               'ap50': _fraction(value['ap50%'])}
                        for name, value in averages['classes'].items()}}
