"""Outputs written whole or not at all: write beside, then rename.

A file or folder is written under a hidden temporary name in the folder
where it belongs (``.NAME.tmp-PID``) and renamed to its name only once
complete, so an export or a params.yaml interrupted by Ctrl-C, SIGTERM or
an error leaves no half-written file under the real name (the temporary one
is removed) and a rerun is not refused. A rename within a folder is atomic
on POSIX file systems; TF Serving ignores the temporary name of a version
folder (not a number). No TensorFlow here (config_io uses it before
TensorFlow starts).

Example:
  >>> with atomic_write.atomic_path('out/model.tflite') as temporary:
  ...   with open(temporary, 'wb') as f:
  ...     f.write(content)
"""

import contextlib
import os
import shutil


def temporary_name(path):
  """The hidden name beside ``path`` that ``atomic_path`` writes to."""
  folder, name = os.path.split(os.path.normpath(path))
  return os.path.join(folder, f'.{name}.tmp-{os.getpid()}')


def remove(path):
  """Removes a file or a folder tree if it exists (a temporary one)."""
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside ``path`` to write a file or a folder
  to; renames it to ``path`` when the block ends normally, and removes it
  when the block raises (KeyboardInterrupt included).

  A remote path (``scheme://...``, e.g. gs://) is yielded as it is: object
  stores have no atomic rename of a folder.

  Args:
    path: the file or folder to write; its parent folder must exist.

  Raises:
    OSError: ``path`` is a non-empty folder by the time of the rename (a
      folder is never merged into another).
  """
  if '://' in path:
    yield path
    return
  temporary = temporary_name(path)
  remove(temporary)  # a leftover of this process id
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    remove(temporary)
    raise
