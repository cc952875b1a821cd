"""A policy pack's process, started exactly as the engine's `pulumi-analyzer-policy-python` shim starts it.

From the pack's directory: `python -u -m pulumi.policy <engine-address> .` with `PULUMI_PROJECT`, `PULUMI_STACK`,
`PULUMI_DRY_RUN`, `PULUMI_ORGANIZATION` (and `PULUMI_CONFIG`) in the environment. The pack prints its gRPC port
on the first stdout line; the engine address is passed but never dialled. Both pipes are drained for the whole
life of the process, so a chatty pack never blocks, and the stderr tail goes into every error message.

The pack never outlives us: `close()` stops it (the preview's signal handlers unwind into it), and on Linux the
kernel kills it when the thread that spawned it dies, even by SIGKILL (PR_SET_PDEATHSIG, armed by
pack_launcher.py). `spawn()` returns at once, so the pack boots while the program runs; `start()` then waits for
its port.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping, Optional

from preview.stack_files import read_yaml
from task_service.untrusted import InputError, clip, quote

# Any address will do: a Python pack never dials the engine during analysis.
ENGINE_ADDRESS = "127.0.0.1:1"
_LAUNCHER = Path(__file__).with_name("pack_launcher.py")
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


class PolicyPackError(RuntimeError):
    """The pack failed: did not start, crashed, or answered an RPC with an error."""


def shim_environment(*, project: str, stack: str, dry_run: bool, organization: str, config: Mapping[str, str],
                     extra: Mapping[str, Optional[str]]) -> dict[str, str]:
    """This process's environment plus what the shim sets; `None` in `extra` removes an inherited variable."""
    env = dict(os.environ)
    env.update({
        "PULUMI_PROJECT": project,
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true" if dry_run else "false",
        "PULUMI_ORGANIZATION": organization,
    })
    if config:
        env["PULUMI_CONFIG"] = json.dumps(dict(config))
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)  # e.g. the developer's AWS_PROFILE
        else:
            env[key] = value
    return env


def pack_version(policy_dir: Path) -> str:
    """The version in PulumiPolicy.yaml, which the CLI reports instead of the SDK's placeholder 0.0.1."""
    try:
        data = read_yaml(policy_dir / "PulumiPolicy.yaml")
    except InputError as err:
        raise PolicyPackError(str(err)) from None
    version = data.get("version") if isinstance(data, dict) else None
    if version is not None and not isinstance(version, (str, int, float)):
        raise PolicyPackError(f"PulumiPolicy.yaml: 'version' must be a version such as 0.1.0 (got {quote(version)})")
    return str(version or "")


@contextmanager
def _stop_signals_deferred() -> Iterator[set[int]]:
    """Stop signals wait until the pack is spawned and recorded, so `close()` can always reach it (a handler raising
    inside fork's bookkeeping would be printed and swallowed); yields the mask the child restores."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield previous
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class PackProcess:
    """One run of the pack: start it, learn its port, keep its stderr tail, stop it."""

    def __init__(self, policy_dir: Path, env: Mapping[str, str], *, python: str, startup_timeout: float) -> None:
        self.policy_dir = policy_dir
        self.env = dict(env)
        self.python = python
        self.startup_timeout = startup_timeout
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._closed = False
        self._first_line: queue.Queue[Optional[str]] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._stderr_thread: Optional[threading.Thread] = None

    def command(self) -> list[str]:
        return [self.python, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."]

    def _launch(self, mask: Iterable[int]) -> list[str]:
        """`command()` through pack_launcher.py, which ties the pack's life to ours and restores `mask`."""
        return [self.python, "-I", "-S", str(_LAUNCHER), str(os.getpid()), ",".join(str(int(n)) for n in mask),
                *self.command()]

    def spawn(self) -> None:
        """Start the pack's process and return at once (again: nothing); refused once closed."""
        if self._closed:
            raise PolicyPackError("the policy pack was stopped")
        if self._process is not None:
            return
        if not (self.policy_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{self.policy_dir} has no PulumiPolicy.yaml; it is not a policy pack")
        with _stop_signals_deferred() as mask:
            process = self._process = subprocess.Popen(
                self._launch(mask), cwd=self.policy_dir, env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None  # both are PIPE
            threading.Thread(target=_pump_stdout, args=(process.stdout, self._first_line), daemon=True).start()
            self._stderr_thread = threading.Thread(target=self._pump_stderr, args=(process.stderr,), daemon=True)
            self._stderr_thread.start()

    def start(self) -> int:
        """Spawn the pack if needed and return the port it serves on; a pack that fails to start is stopped first."""
        self.spawn()
        process = self._process
        assert process is not None
        try:
            line = self._first_line.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.close()
            self._join_stderr()
            raise PolicyPackError(self.describe(
                f"policy pack printed no port within {self.startup_timeout:g}s")) from None
        if line is None:
            code = process.wait(timeout=5)
            self._join_stderr()
            self.close()
            raise PolicyPackError(self.describe(f"policy pack exited with code {code} before printing its port"))
        try:
            return int(line.strip())
        except ValueError:
            self.close()
            raise PolicyPackError(self.describe(f"policy pack's first stdout line is not a port: {quote(line)}")) from None

    def close(self) -> None:
        """Stop the pack (terminate, then kill after 5 s); it cannot be spawned again."""
        self._closed = True
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def describe(self, what: str) -> str:
        """`what` went wrong, with the command, its directory and the last lines the pack wrote to stderr."""
        tail = [clip(line, 200) for line in self.stderr_tail.strip().splitlines()[-25:]]
        shown = "\n    ".join(tail) if tail else "(nothing on stderr)"
        return (f"{what}\n  command: {' '.join(self.command())}\n  cwd: {self.policy_dir}\n"
                f"  stderr tail:\n    {shown}")

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr.append(raw.decode(errors="replace"))

    def _join_stderr(self) -> None:
        """Let the stderr pump collect a crashed pack's traceback before it is reported."""
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)


def _pump_stdout(stream: IO[bytes], first_line: queue.Queue[Optional[str]]) -> None:
    line = stream.readline()
    first_line.put(line.decode(errors="replace") if line else None)
    for _ in iter(stream.readline, b""):
        pass  # keep draining so a chatty pack never blocks on a full pipe
