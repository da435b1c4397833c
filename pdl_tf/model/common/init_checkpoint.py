"""Which checkpoint variables fit a network, by TensorFlow's own keys.

A ``tf.train.Checkpoint(model=model)`` saves each variable under the path
of attribute names that leads to it in its object graph, plus
``/.ATTRIBUTES/VARIABLE_VALUE`` (e.g.
``model/semantic_head/_classifier/kernel/.ATTRIBUTES/VARIABLE_VALUE``).
``variable_keys`` asks TensorFlow's checkpoint code for those keys of live
objects (no name mapping of our own), so a checkpoint's
``tf.train.list_variables`` can be compared with a network key by key:

- ``check_fits``: before a restore (resume, evaluation, backbone weights),
  raises ``CheckpointMismatchError`` naming the variables that are missing
  from the checkpoint or have another shape there, with both shapes,
  instead of TensorFlow's assertion or its value dumps.
- ``init_from_checkpoint``: fine-tuning. Restores every variable whose key
  and shape fit, leaves the given class-dependent variables (the semantic
  classifier) as initialised when their shape differs, and refuses any
  other mismatch. The checkpoint's optimizer, its slots and counters are
  not read.
"""

import collections

import tensorflow as tf
# TensorFlow's own traversal of an object graph, as tf.train.Checkpoint
# saves it (the public API lists a checkpoint's keys, not an object's).
from tensorflow.python.checkpoint import graph_view  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.checkpoint import util as checkpoint_util  # pylint: disable=g-direct-tensorflow-import

KEY_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
_LISTED = 5  # variables named per kind of mismatch

class Initialised(collections.namedtuple(
    'Initialised', ['path', 'restored', 'reinitialised', 'warning'],
    defaults=('',))):
  """What init_from_checkpoint did.

  path: the checkpoint prefix read; restored: how many variables it
  restored; reinitialised: {key: (checkpoint shape, network shape)} of the
  class-dependent variables left as initialised (keys without KEY_SUFFIX),
  whose last axis is the class count; warning: what the user should know
  besides ('' = nothing).
  """

  def note(self):
    """One line for the user, e.g. 'initialised from DIR/ckpt-0 (360
    variables); re-initialised for 4 classes (checkpoint has 19): KEYS'."""
    text = f'initialised from {self.path} ({self.restored} variables)'
    if self.warning:
      text += f'; {self.warning}'
    if not self.reinitialised:
      return text
    theirs, ours = next(iter(self.reinitialised.values()))
    why = (f'checkpoint has {theirs[-1]}' if theirs[-1] != ours[-1] else
           'the checkpoint\'s are other classes')
    return (f'{text}; re-initialised for {ours[-1]} classes ({why}): '
            f'{", ".join(self.reinitialised)}')


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit a network; the message names the checkpoint,
  the variables and their shapes."""


def variable_keys(root):
  """{checkpoint key without KEY_SUFFIX: variable} of every variable that
  ``tf.train.Checkpoint`` saves for ``root``.

  Args:
    root: a tf.train.Checkpoint (e.g. ``tf.train.Checkpoint(model=m)``,
      keys ``model/...``) or any trackable object.

  Returns:
    dict key -> tf.Variable. Optimizer slot variables are left out (an
    optimizer makes them at its first step).
  """
  objects, _, _, _, names = (
      checkpoint_util.objects_ids_and_slot_variables_and_paths(
          graph_view.ObjectGraphView(root), skip_slot_variables=True))
  return {names[obj]: obj for obj in objects if isinstance(obj, tf.Variable)}


def checkpoint_shapes(path):
  """{key without KEY_SUFFIX: shape list} of the variables in checkpoint
  prefix ``path``.

  Raises:
    CheckpointMismatchError: the checkpoint cannot be read.
  """
  try:
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointMismatchError(
        f'cannot read checkpoint {path!r}: {getattr(e, "message", e)}') from e
  return {key[:-len(KEY_SUFFIX)]: list(shape)
          for key, shape in shapes.items() if key.endswith(KEY_SUFFIX)}


def mismatches(variables, shapes, optional=()):
  """What of ``variables`` the checkpoint's ``shapes`` lack or shape
  otherwise.

  Args:
    variables: {key: variable} (variable_keys).
    shapes: {key: shape list} (checkpoint_shapes).
    optional: key prefixes that may be missing (they start fresh).

  Returns:
    (missing keys, [(key, checkpoint shape, network shape)]), sorted.
  """
  missing, wrong = [], []
  for key in sorted(variables):
    ours = variables[key].shape.as_list()
    if key not in shapes:
      if not key.startswith(tuple(optional)):
        missing.append(key)
    elif shapes[key] != ours:
      wrong.append((key, shapes[key], ours))
  return missing, wrong


def _listing(items):
  more = f' and {len(items) - _LISTED} more' if len(items) > _LISTED else ''
  return ', '.join(items[:_LISTED]) + more


def describe(path, missing, wrong, network='the network'):
  """One line naming what of ``network`` checkpoint ``path`` lacks or
  shapes otherwise ('' when nothing)."""
  problems = []
  if wrong:
    problems.append(f'{len(wrong)} variable(s) of another shape: ' + _listing(
        [f'{key} (checkpoint {theirs}, {network} {ours})'
         for key, theirs, ours in wrong]))
  if missing:
    problems.append(f'{len(missing)} variable(s) of {network} missing from '
                    f'the checkpoint: {_listing(missing)}')
  if not problems:
    return ''
  return f'checkpoint {path!r} does not fit {network}: ' + '; '.join(
      problems) + '.'


def check_fits(root, path, optional=(), network='the network'):
  """Raises CheckpointMismatchError unless checkpoint ``path`` holds every
  variable of ``root`` (variable_keys) with its shape, except keys under
  the ``optional`` prefixes, which may be missing.

  Variables of the checkpoint that ``root`` lacks are not errors (an
  optimizer's slots, the loss scale of a float16 run continued in float32).
  """
  missing, wrong = mismatches(variable_keys(root), checkpoint_shapes(path),
                              optional)
  message = describe(path, missing, wrong, network)
  if message:
    raise CheckpointMismatchError(message)


def init_from_checkpoint(model, path, reinitializable=(), prefix='model',
                         reinitialize=False):
  """Restores ``model``'s weights from checkpoint ``path`` to fine-tune it.

  Every variable of ``tf.train.Checkpoint(**{prefix: model})`` is read from
  its key in the checkpoint (a pdl_tf checkpoint saves the network as
  ``model``); the variables in ``reinitializable`` (the semantic classifier,
  whose shape follows the class count) keep their initial values when the
  checkpoint's shape differs. Works across dtype policies: the network's
  variables are float32 under every policy.

  Args:
    model: a built Keras model (its variables exist).
    path: a checkpoint prefix.
    reinitializable: variables of ``model`` that may differ in shape.
    prefix: the name the checkpoint saved the model under.
    reinitialize: leave every variable of ``reinitializable`` as
      initialised, whatever its shape (the checkpoint's classes are others
      than the network's, in the same number).

  Returns:
    Initialised.

  Raises:
    CheckpointMismatchError: a variable is missing from the checkpoint, or
      another one than ``reinitializable`` has another shape there; names
      them with both shapes.
  """
  variables = variable_keys(tf.train.Checkpoint(**{prefix: model}))
  shapes = checkpoint_shapes(path)
  missing, wrong = mismatches(variables, shapes)
  # In the order of ``reinitializable`` (kernel, then bias).
  order = {id(v): index for index, v in enumerate(reinitializable)}
  candidates = list(wrong)
  if reinitialize:
    candidates += [(key, shapes[key], variables[key].shape.as_list())
                   for key in variables if id(variables[key]) in order and
                   key in shapes and key not in {k for k, _, _ in wrong}]
  reinitialised = dict(sorted(
      ((key, (theirs, ours)) for key, theirs, ours in candidates
       if id(variables[key]) in order),
      key=lambda item: order[id(variables[item[0]])]))
  refused = [item for item in wrong if item[0] not in reinitialised]
  message = describe(path, missing, refused, 'the network')
  if message:
    raise CheckpointMismatchError(message)
  reader = tf.train.load_checkpoint(path)
  restored = 0
  for key, variable in variables.items():
    if key not in reinitialised:
      variable.assign(reader.get_tensor(key + KEY_SUFFIX))
      restored += 1
  return Initialised(path, restored, reinitialised)
