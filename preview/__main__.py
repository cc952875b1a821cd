"""`python -m preview`. SIGINT, SIGTERM and SIGHUP stop the policy pack and exit quietly with 128 + the signal's
number (130, 143, 129): the handlers are installed before anything else is imported, and unwind the stack like
KeyboardInterrupt, so every cleanup on the way (the pack's `close`) runs."""

import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal; a BaseException so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    for number in SIGNALS:
        signal.signal(number, signal.SIG_IGN)  # the cleanup runs once, to the end
    raise Stopped(signum)


for _number in SIGNALS:
    signal.signal(_number, _stop)

try:
    from preview.cli import main

    code = main()
    sys.stdout.flush()
except Stopped as stopped:
    code = 128 + stopped.signum
except BrokenPipeError:
    # `python -m preview | head`: the reader left; exit quietly as other CLI tools do.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
sys.exit(code)
