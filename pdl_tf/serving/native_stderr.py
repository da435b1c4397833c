"""Drops known, harmless lines that native code writes to stderr.

LiteRT's C++ runtime writes "INFO: Created TensorFlow Lite XNNPACK delegate
for CPU." to file descriptor 2 on the first invoke of every interpreter,
and the TFLite converter writes absl log lines ("Ignored output_format.",
"MLIR V1 optimization pass is not enabled", "fully_quantize: 0, ...")
whatever TF_CPP_MIN_LOG_LEVEL says; neither has a Python setting for its
log level (the C++ API's ``tflite::LoggerOptions::SetMinimumLogSeverity``
is not exposed). The commands are quiet by default (README, "Quiet by
default"), so those calls run inside ``drop_native_lines``: fd 2 goes through a pipe
for the call, and every line but the known ones is written on to stderr as
it comes, so no other warning or error is lost, even in a crash.
With ``--verbose`` (TF_CPP_MIN_LOG_LEVEL=0) nothing is filtered.
"""

import contextlib
import os
import re
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


def keep_line(line, patterns=LITERT_INFO):
  """False for a line (bytes, without its newline) that one of
  ``patterns`` matches whole."""
  line = line.rstrip(b'\r')
  return not any(pattern.fullmatch(line) for pattern in patterns)


def _forward(source, target, patterns):
  """Copies lines from fd ``source`` to fd ``target`` until end of file,
  leaving out those ``patterns`` match."""
  pending = b''
  while True:
    chunk = os.read(source, 65536)
    if not chunk:
      break
    lines = (pending + chunk).split(b'\n')
    pending = lines.pop()
    kept = [line + b'\n' for line in lines if keep_line(line, patterns)]
    if kept:
      os.write(target, b''.join(kept))
  if pending and keep_line(pending, patterns):
    os.write(target, pending)
  os.close(source)


@contextlib.contextmanager
def drop_native_lines(patterns=LITERT_INFO):
  """Runs the block with native stderr (fd 2) going through a pipe whose
  lines are written on to the real stderr as they come, but for those
  ``patterns`` match whole; so a crash inside still shows what came before
  it. A no-op with TF_CPP_MIN_LOG_LEVEL=0 (--verbose)."""
  if os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') == '0':
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  forwarder = threading.Thread(target=_forward,
                               args=(read_end, saved, patterns), daemon=True)
  forwarder.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)  # closes the pipe's last write end: the copy ends
    forwarder.join()
    os.close(saved)
