"""Load a split's examples one by one, with pdl-data's bad-example handling.

An example whose files are missing or bad (its loader, or the work done on
it, raises ValueError or OSError) stops the loop with an error naming it,
or with ``skip_bad`` is recorded as ``{'name', 'error'}`` and skipped, the
loop going on. Used by the COCO writers (coco_writers.py) and by
``pdl-data --inspect`` (dataset_stats.py); numpy-free, no TensorFlow.

Example:
  >>> skipped = []
  >>> for source, areas in checked_examples(
  ...     sources, lambda s, e: e.panoptic.size, skipped, skip_bad=True):
  ...   print(source.name, areas)
"""

import sys

import tqdm


def _named(error, name):
  """``error`` if its message names ``name``, else a ValueError that does."""
  if name in str(error):
    return error
  return ValueError(f'{name}: {error}')


def checked_examples(sources, prepare, skipped, *, skip_bad=False, desc='',
                     progress=True, verb='skipped'):
  """Yields (source, prepare(source, example)) for each loadable example.

  Only ``source.load()`` and ``prepare`` are guarded: an error raised by
  the caller's own work between two items (e.g. writing a file to a full
  disk) is not an example's fault and propagates.

  Args:
    sources: iterable of ExampleSource (coco_panoptic.ExampleSource): a
      list, or record_sources.RecordSources (its ``total`` for the bar).
    prepare: function(source, PanopticExample) -> value; raises ValueError
      for an example it cannot handle (its message should say why).
    skipped: a list; each skipped example is appended as {'name', 'error'}.
    skip_bad: skip and record bad examples instead of stopping.
    desc: the progress bar's label.
    progress: show a tqdm progress bar (on stderr).
    verb: the word before a skipped example's name in the line printed
      (stderr) when it is met.

  Raises:
    ValueError or OSError (without skip_bad): the first bad example's
      error, its message naming the example.
  """
  total = (len(sources) if hasattr(sources, '__len__') else
           getattr(sources, 'total', None))
  with tqdm.tqdm(total=total, unit='example', desc=desc,
                 disable=not progress) as bar:
    for source in sources:
      try:
        prepared = prepare(source, source.load())
      except (ValueError, OSError) as e:
        if not skip_bad:
          named = _named(e, source.name)
          if named is e:
            raise
          raise named from e
        skipped.append({'name': source.name, 'error': str(e)})
        tqdm.tqdm.write(f'{verb} {source.name}: {e}', file=sys.stderr)
      else:
        yield source, prepared
      finally:
        bar.update(1)
