"""Drops known, harmless lines that native code writes to stderr.

LiteRT's C++ runtime writes "INFO: Created TensorFlow Lite XNNPACK delegate
for CPU." to file descriptor 2 on the first invoke of every interpreter,
and the TFLite converter writes absl log lines ("Ignored output_format.",
"MLIR V1 optimization pass is not enabled", "fully_quantize: 0, ...")
whatever TF_CPP_MIN_LOG_LEVEL says; neither has a Python setting for its
log level (the C++ API's ``tflite::LoggerOptions::SetMinimumLogSeverity``
is not exposed). The commands are quiet by default (README, "Quiet by
default"), so those calls run inside ``drop_native_lines``: fd 2 goes
into a pipe for the block, read by a small filter process that writes
every line but the known ones on to the real stderr as it comes. Being
another process, the filter also passes on what came before a crash of
this one (a fatal log line, then abort). With ``--verbose``
(TF_CPP_MIN_LOG_LEVEL=0), without a usable stderr or without a Python
executable to run the filter, nothing is filtered.
"""

import contextlib
import os
import re
import subprocess
import sys
import threading

# LiteRT's INFO line on an interpreter's first invoke.
LITERT_INFO = (re.compile(
    rb'INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.'),)
# What tf.lite.TFLiteConverter prints on every conversion (absl's W/I lines
# with their time stamps, and mlir_quantize's summary line).
_ABSL = rb'[WI]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\] '
CONVERTER_NOISE = (
    re.compile(rb'WARNING: All log messages before absl::InitializeLog\(\) '
               rb'is called are written to STDERR'),
    re.compile(_ABSL + rb'Ignored (output_format|drop_control_dependency)\.'),
    re.compile(_ABSL + rb'MLIR V1 optimization pass is not enabled'),
    re.compile(rb'fully_quantize: \d, inference_type: \d+, '
               rb'input_inference_type: \w+, output_inference_type: \w+'),
)

_lock = threading.Lock()
_active = {'depth': 0, 'saved': None, 'filter': None}


# This package's parent folder, for the filter process's import of this
# module (it runs with -I -S: no site-packages, no PYTHONPATH).
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_FILTER = ('import sys; sys.path.insert(0, sys.argv[1]); '
           'from pdl_tf.serving import native_stderr; '
           'native_stderr.filter_lines(sys.argv[2:])')


def keep_line(line, patterns=LITERT_INFO):
  """False for a line (bytes, without its newline) that one of
  ``patterns`` matches whole."""
  line = line.rstrip(b'\r')
  return not any(pattern.fullmatch(line) for pattern in patterns)


def filter_lines(sources):
  """The filter process's work: stdin (the pipe) to stdout (the real
  stderr), line by line, leaving out lines that keep_line drops for the
  patterns ``sources`` (regular expressions, latin-1 str). It keeps
  reading when stderr is gone, so writers never block on the pipe."""
  patterns = [re.compile(source.encode('latin-1')) for source in sources]
  out, pending = sys.stdout.buffer, b''

  def write(data):
    try:
      out.write(data)
      out.flush()
    except OSError:
      pass

  while True:
    try:
      chunk = os.read(0, 65536)
    except OSError:
      break
    if not chunk:
      break
    lines = (pending + chunk).split(b'\n')
    pending = lines.pop()
    write(b''.join(line + b'\n' for line in lines
                   if keep_line(line, patterns)))
  if pending and keep_line(pending, patterns):
    write(pending)


def _usable_stderr():
  try:
    os.fstat(2)
  except OSError:
    return False
  return True


def _start(patterns):
  """fd 2 into a pipe read by a new filter process; returns (saved real
  stderr fd, the process)."""
  sys.stderr.flush()
  saved = os.dup(2)
  read_end, write_end = os.pipe()
  try:
    process = subprocess.Popen(
        [sys.executable, '-I', '-S', '-c', _FILTER, _ROOT] +
        [p.pattern.decode('latin-1') for p in patterns],
        stdin=read_end, stdout=saved)
  except OSError:
    os.close(write_end)
    os.close(saved)
    raise
  finally:
    os.close(read_end)
  os.dup2(write_end, 2)
  os.close(write_end)
  return saved, process


def _stop(saved, process):
  """The real stderr back on fd 2; waits (at most 1 s: a child process
  started in the block may still hold the pipe) for the filter to pass on
  the rest."""
  sys.stderr.flush()
  os.dup2(saved, 2)  # closes this process's last write end of the pipe
  os.close(saved)
  try:
    process.wait(timeout=1)
  except subprocess.TimeoutExpired:
    pass  # it ends by itself when the last writer closes the pipe


@contextlib.contextmanager
def drop_native_lines(patterns=LITERT_INFO):
  """Runs the block with native stderr (fd 2) filtered: lines that one of
  ``patterns`` matches whole are left out, all others pass on as they
  come. Nested blocks, and blocks of other threads while one is open,
  share the outermost block's filter (fd 2 belongs to the whole process);
  it ends when the last of them does. A no-op with TF_CPP_MIN_LOG_LEVEL=0
  (--verbose), without a usable fd 2 or without sys.executable."""
  if (os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') == '0' or
      not sys.executable or not _usable_stderr()):
    yield
    return
  with _lock:
    if _active['depth'] == 0:
      _active['saved'], _active['filter'] = _start(patterns)
    _active['depth'] += 1
  try:
    yield
  finally:
    with _lock:
      _active['depth'] -= 1
      if _active['depth'] == 0:
        _stop(_active['saved'], _active['filter'])
        _active['saved'] = _active['filter'] = None
