"""Runs hostile-input cases fast and under hard limits: imports the tools once, then forks a child per case.

Reads one JSON request per stdin line ({"tool", "argv", "cwd", "env", "out", "err", "seconds", "memory"}) and
answers one JSON line ({"code", "signal", "killed", "seconds"}). The child sets RLIMIT_AS and RLIMIT_CPU, points
stdout/stderr at files, and calls the tool's `main()` exactly as `python -m <tool>` does; a child that overruns
its wall-clock limit is killed (SIGKILL) and reported as such. This process starts no threads, so forking it is
safe.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from typing import Any

import preview.cli
import runbook.cli
import stack_config  # noqa: F401 - imported once here, so every child starts with the program's modules loaded
import components  # noqa: F401
import pulumi_aws  # noqa: F401

ENTRIES = {"preview": preview.cli.main, "runbook": runbook.cli.main}


def _child(request: dict[str, Any]) -> None:
    limit = int(request["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(request["seconds"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    os.setsid()  # its own group: killing the case kills what it started
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    code = 1
    try:
        code = ENTRIES[request["tool"]](request["argv"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - a traceback is a failed case: show it as the tool would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _run(request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request)
    deadline = started + float(request["seconds"])
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return {"code": None, "signal": signal.SIGKILL, "killed": True, "seconds": time.monotonic() - started}
        time.sleep(0.01)
    try:
        os.killpg(pid, signal.SIGKILL)  # anything the case left running (it must not have)
    except ProcessLookupError:
        pass
    return {
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": False,
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
