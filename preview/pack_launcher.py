"""Runs between our process and the policy pack: `python -I -S pack_launcher.py PARENT MASK COMMAND...`.

It arms PR_SET_PDEATHSIG in its own process (which the exec keeps), quits if PARENT is already gone, restores the
signal mask MASK (comma-separated numbers; the spawn blocked the stop signals), and execs COMMAND. Doing this in a
forked child instead (a preexec_fn) runs gRPC's fork handlers there, which abort the child when our process has
used gRPC before. Standard library only, and nothing else may import it.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(parent: str, mask: str, *command: str) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != int(parent):
            os._exit(1)
    signal.pthread_sigmask(signal.SIG_SETMASK, [int(n) for n in mask.split(",") if n])
    os.execv(command[0], list(command))


if __name__ == "__main__":
    main(*sys.argv[1:])
