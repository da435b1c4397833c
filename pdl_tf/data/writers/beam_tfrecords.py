"""pdl-data --runner: the TFRecord conversion of ``tfrecords.write_split``
with its shards written by an Apache Beam pipeline, one shard per element,
so that a runner with many workers (Dataflow, Flink, Spark) writes many
shards at once.

The files are those ``write_split`` writes (the same shard layout,
``serialize_example``, ``*.incomplete`` then rename, one ``.json`` sidecar
per finished shard, ``metadata.json`` from the sidecars at the end): a
rerun, with or without Beam, skips the finished shards. Needs the ``beam``
extra; the sources travel to the workers inside the pipeline's function
(pickled with it), so the dataset's files must be readable there (a
gs:// dataset for Dataflow).
"""

import os

from pdl_tf.beam_import import import_beam
from pdl_tf.data.readers import tfrecords


class _NoBar:
  """The progress bar ``_write_shard`` updates, on a worker: none."""

  def update(self, count):
    del count


def write_split(meta, sources, folder, split, num_shards, *, beam_args,
                skip_bad=False, image_format='png'):
  """``tfrecords.write_split`` through Beam (``beam_args``: its pipeline
  options, e.g. ['--runner', 'DirectRunner']); same arguments, returns and
  errors (a bad example without ``skip_bad`` fails the pipeline with its
  message; finished shards are kept)."""
  beam = import_beam()
  # pylint: disable-next=g-import-not-at-top
  from apache_beam.options import pipeline_options
  if not sources:
    raise ValueError(f'split {split!r} has no examples to convert.')
  if num_shards < 1:
    raise ValueError(f'num_shards must be >= 1, got {num_shards}.')
  if image_format not in tfrecords.IMAGE_FORMATS:
    raise ValueError(
        f'image_format must be one of {tfrecords.IMAGE_FORMATS}.')
  num_shards = min(num_shards, len(sources))
  os.makedirs(folder, exist_ok=True)
  # pylint: disable-next=protected-access
  tfrecords._check_existing(folder, split, num_shards, meta)
  bounds = [k * len(sources) // num_shards for k in range(num_shards + 1)]
  paths = [tfrecords.shard_path(folder, split, k, num_shards)
           for k in range(num_shards)]
  sidecars = [path[:-len('.tfrecord')] + '.json' for path in paths]
  todo = [k for k in range(num_shards)
          if not (os.path.isfile(sidecars[k]) and os.path.isfile(paths[k]))]

  def write_shard(k):
    # pylint: disable=protected-access
    written, bad = tfrecords._write_shard(
        paths[k], sources[bounds[k]:bounds[k + 1]], _NoBar(), skip_bad,
        image_format)
    tfrecords._write_json(sidecars[k], {'num_examples': written,
                                        'skipped': bad})
    # pylint: enable=protected-access
    return k

  if todo:
    options = pipeline_options.PipelineOptions(beam_args)
    with beam.Pipeline(options=options) as pipeline:
      _ = (pipeline | 'Shards' >> beam.Create(todo)
           | 'Spread' >> beam.Reshuffle()
           | 'Write' >> beam.Map(write_shard))
  # pylint: disable-next=protected-access
  return tfrecords._finish(folder, split, meta, paths, sidecars)
