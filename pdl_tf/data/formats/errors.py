"""The error of a dataset whose files are missing, empty or inconsistent.

No TensorFlow here: the commands (cli/shared/common.py) print a DatasetError as
one line. Raised where a split is listed (sources.list_split) and where an
example is loaded inside tf.data (sources._from_sources). There TensorFlow
wraps the Python exception into an OpError with its own text around it, so
the loader's message is raised with ``MARKER`` in front (``for_graph``),
as are the targets' own checks of a label (targets.py), and ``message_of``
finds it again in the OpError.
"""

MARKER = 'pdl_tf dataset error: '


class DatasetError(ValueError):
  """A dataset's files are missing, empty or inconsistent; the message
  names the file and the problem."""


def for_graph(error):
  """A DatasetError for an exception raised while tf.data loads an example:
  its message behind MARKER."""
  return DatasetError(f'{MARKER}{error}')


def message_of(error):
  """The loader's message inside ``error`` (e.g. the tf.errors.OpError that
  tf.data raised for a ``for_graph`` error), or None if it holds none."""
  for line in str(error).splitlines():
    if MARKER in line:
      message = line.split(MARKER, 1)[1]
      message = message.split(' [Op:')[0].split(' [[')[0].strip()
      # tf.debugging.Assert's text: 'message] [data] [more data]'.
      return ' '.join(part.strip() for part in message.split('] [')
                      ).rstrip(']').strip()
  return None
