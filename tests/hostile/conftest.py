"""The hostile-input suite's harness: every case runs a tool's real `main()` in a forked child under hard limits.

Cases go to tests/hostile/forkserver.py (two of them, started once per session; they have the tools imported, so a
case costs a fork, not an interpreter start). A table of cases runs on both at once (`run_all`), ahead of the
tests that assert on it. The child gets RLIMIT_AS (memory), RLIMIT_CPU and a wall-clock limit after which it is
killed: a case that hangs or balloons fails on those limits, not on a timed assertion.
`refused` asserts what every bad input must produce: the exit code, one line on stderr naming what is wrong, no
traceback, and no secret anywhere in the output.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 2 * 1024**3
"""Address space per case; the YAML bomb this suite replays needed 4.6 GB before the fix."""
SECONDS_LIMIT = 30.0
MESSAGE_LIMIT = 1000
"""No message may be longer (a bounded quote is 80 characters; a whole line with key and file stays well below)."""
LINKED_CODE = ("__main__.py", "stack_config.py", "components", "task_service")
COPIED = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "stack-references")
POLICY_LINKED = ("PulumiPolicy.yaml", "__main__.py", "task_service_policies", "requirements.txt")
BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/root"),
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    killed: bool
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Job:
    """One case: which tool, its arguments, its environment (over BASE_ENV) and directory, its wall-clock limit."""

    tool: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    seconds: float = SECONDS_LIMIT


class ForkServer:
    """One forkserver process; `run` is one case."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.forkserver"], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )

    def run(self, job: Job, number: int) -> Result:
        out, err = self.scratch / f"{number}.out", self.scratch / f"{number}.err"
        request = {"tool": job.tool, "argv": list(job.argv), "cwd": str(job.cwd), "env": {**BASE_ENV, **job.env},
                   "out": str(out), "err": str(err), "seconds": job.seconds, "memory": MEMORY_LIMIT}
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return Result(answer["code"], out.read_text(errors="replace"), err.read_text(errors="replace"),
                      answer["killed"], answer["seconds"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


class Pool:
    """Forkservers taking cases in parallel: one per core."""

    def __init__(self, servers: list[ForkServer]) -> None:
        self.idle: queue.Queue[ForkServer] = queue.Queue()
        for server in servers:
            self.idle.put(server)
        self.size = len(servers)
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def run(self, job: Job) -> Result:
        with self._lock:
            number = next(self._numbers)
        server = self.idle.get()
        try:
            return server.run(job, number)
        finally:
            self.idle.put(server)

    def run_all(self, jobs: Mapping[str, Job]) -> dict[str, Result]:
        with ThreadPoolExecutor(self.size) as workers:
            futures = {key: workers.submit(self.run, job) for key, job in jobs.items()}
            return {key: future.result() for key, future in futures.items()}


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    scratch = tmp_path_factory.mktemp("hostile-results")
    servers = [ForkServer(scratch) for _ in range(2)]
    yield Pool(servers)
    for server in servers:
        server.close()


def refused(result: Result, *fragments: str, code: int = 2, secrets: Sequence[str] = ()) -> None:
    """Exit `code`, one line on stderr (`error: ...`) holding every fragment, bounded, no traceback, no secret."""
    assert not result.killed, f"killed after {result.seconds:.1f} s (the wall-clock limit)"
    assert result.code == code, (result.code, result.err[-2000:])
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err[-2000:]
    assert len(lines[0]) <= MESSAGE_LIMIT, len(lines[0])
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.text
    for secret in secrets:
        assert secret not in result.text, secret


@dataclass
class Project:
    """A scratch copy of the project: code linked, stack files, references and policy config copied to be broken."""

    root: Path

    def load(self, name: str) -> Any:
        return yaml.safe_load((self.root / name).read_text())

    def dump(self, name: str, doc: Any) -> None:
        self.write(name, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    def set(self, stack: str, changes: dict[str, Any]) -> None:
        """Set `ns:key.path` -> value in Pulumi.<stack>.yaml (a value of ... deletes the key)."""
        doc = self.load(f"Pulumi.{stack}.yaml")
        for dotted, value in changes.items():
            key, _, path = dotted.partition(".")
            node, parts = doc["config"], [key, *path.split(".")] if path else [key]
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            if value is ...:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
        self.dump(f"Pulumi.{stack}.yaml", doc)

    def write(self, name: str, data: str | bytes) -> None:
        """Replace a file of the scratch project (a linked one is unlinked first: the repository stays untouched)."""
        path = self.root / name
        if path.is_symlink():
            path.unlink()
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    def argv(self, stack: str, *extra: str) -> list[str]:
        return ["-C", str(self.root), "-s", stack, *extra]


def new_project(root: Path) -> Project:
    """A scratch project at `root` (created)."""
    root.mkdir(parents=True)
    for name in LINKED_CODE:
        (root / name).symlink_to(REPO / name)
    for name in COPIED:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    (root / "policy").mkdir()
    for name in POLICY_LINKED:
        (root / "policy" / name).symlink_to(REPO / "policy" / name)
    shutil.copytree(REPO / "policy" / "config", root / "policy" / "config")
    return Project(root)


def run_table(pool: Pool, base: Path, cases: Mapping[str, Callable[[Project], Job]]) -> dict[str, Result]:
    """Give each case its own scratch project under `base`, let it set that up and say what to run; run them all."""
    return pool.run_all({key: make(new_project(base / key)) for key, make in cases.items()})
