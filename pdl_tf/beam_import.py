"""Apache Beam, imported only where a pipeline is built (the ``beam``
extra), so that every pdl_tf module imports without it."""

INSTALL = ('Apache Beam is not installed: pip install "pdl_tf[beam]" '
           '(with -c requirements-beam-lock.txt; see '
           'docs/inference_at_scale.md).')


def import_beam():
  """The apache_beam module.

  Raises:
    ImportError: it is not installed; the message says how to install it.
  """
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(INSTALL) from e
  return apache_beam
