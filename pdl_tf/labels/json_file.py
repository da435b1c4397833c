"""Reading a dataset's JSON file, with errors that name it.

Standard library only, so the commands' checks (data.catalog) read a
dataset's classes with it before TensorFlow, numpy or PIL load; the readers
and ``pq_compute`` read their JSON files with it too.
"""

import json
import os


def load_json(path, what):
  """The parsed JSON file ``path``.

  Args:
    path: a local file.
    what: what the file is, for messages (e.g. 'Ground-truth', 'COCO
      instances').

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is not valid JSON.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} JSON {path!r} does not exist.')
  with open(path, encoding='utf-8') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{what} JSON {path!r} is not valid JSON: {e}') from e
