"""`python -m preview`. SIGINT, SIGTERM and SIGHUP stop the policy pack and exit quietly with 128 + the signal's
number (130, 143, 129): the handlers are installed before anything else is imported, and unwind the stack like
KeyboardInterrupt, so every cleanup on the way (the pack's `close`) runs.

Something on the way may swallow the interrupt: the Pulumi SDK catches every exception of the program and then
waits for the program's outstanding outputs, which an interrupted program never resolves. So the handler also
starts a watchdog that ends the process after GRACE_SECONDS, and the kernel then kills the pack (PR_SET_PDEATHSIG,
see preview/pack_process.py); an interrupt swallowed without a trace still sets the exit code."""

import os
import signal
import sys
import threading
import time
import warnings

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 5.0
_received: list[int] = []


class Stopped(KeyboardInterrupt):
    """A stop signal. A KeyboardInterrupt: no `except Exception` on the way swallows it, and asyncio (the program
    runs in an event loop) re-raises it out of the loop instead of storing it in a task."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _exit_later(signum: int) -> None:
    time.sleep(GRACE_SECONDS)
    os._exit(128 + signum)


def _stop(signum: int, _frame: object) -> None:
    for number in SIGNALS:
        signal.signal(number, signal.SIG_IGN)  # the cleanup runs once, to the end
    _received.append(signum)
    threading.Thread(target=_exit_later, args=(signum,), daemon=True).start()
    raise Stopped(signum)


for _number in SIGNALS:
    signal.signal(_number, _stop)

try:
    from preview.cli import main

    code = main()
    sys.stdout.flush()
except Stopped as stopped:
    warnings.simplefilter("ignore")  # coroutines the interrupted program never awaited: nothing to report
    code = 128 + stopped.signum
except BrokenPipeError:
    # `python -m preview | head`: the reader left; exit quietly as other CLI tools do.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
if _received:
    code = 128 + _received[0]
sys.exit(code)
