"""Drops LiteRT's known INFO lines from the process's native stderr.

LiteRT's C++ runtime writes "INFO: Created TensorFlow Lite XNNPACK delegate
for CPU." to file descriptor 2 on the first invoke of every interpreter, and
its Python package has no setting for that log level (the C++ API's
``tflite::LoggerOptions::SetMinimumLogSeverity`` is not exposed). The
commands are quiet by default (README, "Quiet by default"), so the first
invoke runs inside ``drop_native_info``: fd 2 goes to a temporary file for
the call, and every line of it but the known INFO lines is written back to
stderr afterwards, so no warning or error is lost. With ``--verbose``
(TF_CPP_MIN_LOG_LEVEL=0) nothing is filtered.
"""

import contextlib
import os
import sys
import tempfile

# Exact lines LiteRT prints at INFO level that the commands hide.
KNOWN_INFO_LINES = (b'INFO: Created TensorFlow Lite XNNPACK delegate for '
                    b'CPU.',)


def keep_line(line):
  """False for a known LiteRT INFO line (bytes, without its newline)."""
  return line.rstrip(b'\r') not in KNOWN_INFO_LINES


@contextlib.contextmanager
def drop_native_info():
  """Runs the block with native stderr captured, then writes back every
  captured line but KNOWN_INFO_LINES. A no-op with TF_CPP_MIN_LOG_LEVEL=0
  (--verbose)."""
  if os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') == '0':
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().split(b'\n')
              if keep_line(line)]
      text = b'\n'.join(kept)
      if text:
        os.write(2, text)
