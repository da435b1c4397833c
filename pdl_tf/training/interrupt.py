"""Ctrl-C (SIGINT) and SIGTERM as requests to stop training cleanly.

While a ``StopSignals`` is entered, the first SIGINT or SIGTERM does not
stop the process: it is recorded, and ``on_signal`` is called at once from a
watcher thread. The training loop reads the variable that ``on_signal``
sets after each step, so it stops after the step in flight; the trainer
then saves a checkpoint at that step (never inside a signal handler) and
raises ``TrainingInterrupted``. A second signal acts as it would without
this class (SIGINT raises KeyboardInterrupt, SIGTERM terminates), so a
second Ctrl-C stops without saving.

Why a thread: Python runs signal handlers in the main thread between
bytecodes, so a plain handler would run only after the current
``train.steps_per_loop`` steps, which may be minutes. The C-level handler
writes the signal number to the wakeup fd (``signal.set_wakeup_fd``) at
once; the thread reads it.

Why not ``tf.distribute.experimental.PreemptionCheckpointHandler``: it
supports only MultiWorkerMirroredStrategy and TPUStrategy (TF 2.20 docs),
watches SIGTERM but not SIGINT, counts one step per call (here one call
runs ``train.steps_per_loop`` steps), adds its own counter to the
checkpoint and exits the process itself (``sys.exit(42)``) from inside the
loop.
"""

import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
  """Training stopped on a signal after saving a checkpoint.

  Attributes:
    signal_name: 'SIGINT' or 'SIGTERM'; None on a worker that stopped
      because another worker of the cluster received the signal.
    step: the step training stopped (and saved) at.
    checkpoint: the path of that checkpoint.
  """

  def __init__(self, signal_name, step, checkpoint):
    self.signal_name = signal_name
    self.step = step
    self.checkpoint = checkpoint
    cause = (f'interrupted by {signal_name}' if signal_name else
             'stopped: another worker was interrupted')
    super().__init__(f'{cause} at step {step}; saved checkpoint '
                     f'{checkpoint}; run the same command again to resume.')


def exit_code(error):
  """128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell
  reports a process killed by that signal; 143 for a worker stopped by
  another worker's signal."""
  number = getattr(signal, error.signal_name or 'SIGTERM')
  return 128 + int(number)


class StopSignals:
  """Context manager: SIGINT / SIGTERM set a stop request (module doc).

  Outside the main thread (where signal handlers cannot be installed) it
  does nothing and ``signal_name`` stays None.

  Args:
    on_signal: called with no argument, from a watcher thread, when the
      first SIGINT or SIGTERM arrives (and again on a second one). It
      must be quick, thread-safe and idempotent (e.g. assign a
      tf.Variable).

  Attributes:
    signal_name: None until a signal arrives, then 'SIGINT' or 'SIGTERM'.
  """

  def __init__(self, on_signal):
    self._on_signal = on_signal
    self.signal_name = None
    self._previous = None
    self._thread = None

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    read_fd, self._write_fd = os.pipe()
    os.set_blocking(self._write_fd, False)  # required by set_wakeup_fd
    self._previous = {number: signal.getsignal(number) for number in SIGNALS}
    self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd,
                                                    warn_on_full_buffer=False)
    for number in SIGNALS:
      signal.signal(number, self._handle)
    self._thread = threading.Thread(target=self._watch, args=(read_fd,),
                                    name='StopSignals', daemon=True)
    self._thread.start()
    return self

  def _record(self, number):
    if self.signal_name is None:
      self.signal_name = signal.Signals(number).name

  def _handle(self, number, unused_frame):
    """Main thread, between bytecodes (maybe while a tf.function is being
    traced, so no TensorFlow op here): records the signal and gives the
    signals back their previous handlers, so that a second one is not
    caught."""
    self._record(number)
    self._restore_handlers()

  def _watch(self, read_fd):
    """Watcher thread: reads signal numbers from the wakeup fd as the
    signals arrive, and calls on_signal (its own eager context)."""
    try:
      while True:
        data = os.read(read_fd, 64)
        if not data:  # the write end was closed: __exit__
          return
        for number in data:
          if number in SIGNALS:
            self._record(number)
            self._on_signal()
    finally:
      os.close(read_fd)

  def _restore_handlers(self):
    if self._previous:
      for number, handler in self._previous.items():
        # None: a handler not installed from Python; the default is closest.
        signal.signal(number,
                      signal.SIG_DFL if handler is None else handler)
      self._previous = None

  def __exit__(self, *unused_exc_info):
    if self._thread is None:
      return
    self._restore_handlers()
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    os.close(self._write_fd)  # ends the watcher thread
    self._thread.join()
    self._thread = None
