"""Ctrl-C and SIGTERM end every command with one line and the shell's
status (130 for SIGINT, 143 for SIGTERM), through ``common.run``.

SIGINT already raises KeyboardInterrupt in Python; SIGTERM, which would end
the process at once (skipping the clean-up of half-written outputs, see
``pdl_tf.atomic_write``), is made to raise ``Terminated`` the same way.
Both derive from BaseException, so no ``except Exception`` swallows them.
pdl-train's own handling (training/interrupt.py: save a checkpoint, then
stop) takes both signals over while it trains.
"""

import signal
import sys
import threading


class Terminated(BaseException):
  """SIGTERM arrived (raised in the main thread, like KeyboardInterrupt)."""


def _raise_terminated(unused_number, unused_frame):
  raise Terminated()


def raise_on_sigterm():
  """Makes SIGTERM raise Terminated in the main thread (no-op elsewhere).

  Returns:
    The previous handler, for ``restore_sigterm`` (None outside the main
    thread).
  """
  if threading.current_thread() is not threading.main_thread():
    return None
  return signal.signal(signal.SIGTERM, _raise_terminated)


def restore_sigterm(previous):
  """Gives SIGTERM back the handler ``raise_on_sigterm`` returned."""
  if previous is not None:
    signal.signal(signal.SIGTERM, previous)


def report(prog, error):
  """Prints the one line for an interrupted command.

  Args:
    prog: the command's name, e.g. 'pdl-export'.
    error: the KeyboardInterrupt or Terminated that stopped it.

  Returns:
    The exit status: 128 + the signal number.
  """
  number = (signal.SIGTERM if isinstance(error, Terminated)
            else signal.SIGINT)
  print(f'{prog}: interrupted by {number.name}; stopped.', file=sys.stderr)
  return 128 + int(number)
