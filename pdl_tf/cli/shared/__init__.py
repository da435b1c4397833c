"""What every pdl-* command shares: no command logic.

  common.py   the command pattern: parse, check before TensorFlow starts,
              run, and print a known user error as one line (status 2)
  checks.py   the argument and file checks the commands make before
              TensorFlow starts (UsageError)
  signals.py  Ctrl-C and SIGTERM as one line with status 130 / 143

Light modules only (standard library, config, the data catalog); this
``__init__`` imports nothing.
"""
