"""Peak resident memory of a command: its own, not its parent's.

Linux carries a process's peak RSS (``ru_maxrss``) through fork and exec:
a command started from a benchmark that holds TensorFlow and a model
reports at least the benchmark's own RSS (a 100x100 image "took" the
exporting parent's 1.6 GiB). ``run`` starts the command from a small
launcher process instead, and reports the command's ``ru_maxrss`` as the
launcher sees it.
"""

import os
import subprocess
import sys
import tempfile

_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], 'w') as f:
  f.write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(command, **kwargs):
  """Runs ``command`` (a list) like ``subprocess.run(command, **kwargs)``.

  Returns:
    (the CompletedProcess, the command's peak RSS in bytes).
  """
  with tempfile.NamedTemporaryFile('r', suffix='.peak') as record:
    done = subprocess.run([sys.executable, '-c', _LAUNCHER, record.name]
                          + list(command), check=False, **kwargs)
    text = record.read().strip()
  if not text:
    raise RuntimeError(f'no peak RSS recorded for {command!r}: '
                       f'exit status {done.returncode}')
  return done, int(text)


if __name__ == '__main__':
  # A check of the launcher: a child that allocates 200 MB from a parent
  # that holds 400 MB should report about 200 MB, not 400.
  hold = bytearray(400 * 2**20)
  for i in range(0, len(hold), 4096):
    hold[i] = 1
  done, peak = run([sys.executable, '-c',
                    'b = bytearray(200 * 2**20)\n'
                    'for i in range(0, len(b), 4096): b[i] = 1'])
  print(f'child peak {peak / 2**20:.0f} MiB (parent holds 400 MiB)')
