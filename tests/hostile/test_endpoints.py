"""Hostile endpoints and settings for the runbook's AWS calls: every wait bounded, every answer understood or
refused in one line, every malformed setting exit 2. Endpoints are stub HTTP servers on loopback (one hangs; the
others answer with HTML, text, an empty object, a 500 page, the wrong XML). What the runbook does with real but
unexpected AWS state (a missing rule, another region, a third target group, a missing DMS task) is tested against
moto in tests/runbook."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from runbook.aws import PAUSE_SECONDS, Aws, Limits, _Budget, limits
from tests.hostile.conftest import REPO, Job, Pool, Project, Result, refused, run_table

OUTPUTS = str(REPO / "tests/runbook/fixtures/outputs-prod.json")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
COMMANDS = {"verify": ["verify"], "dms-status": ["dms", "status"], "rollback": ["rollback", "--yes"],
            "canary-status": ["canary", "status"]}
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "html": (200, "text/html", b"<html><body>Proxy login required</body></html>"),
    "text": (200, "text/plain", b"not an AWS answer"),
    "empty-object": (200, "application/json", b"{}"),
    "html-500": (500, "text/html", b"<html>Internal Server Error</html>"),
    "wrong-xml": (200, "text/xml", b"<?xml version='1.0'?><Something><Else/></Something>"),
}


class _Stub(socketserver.BaseRequestHandler):
    """Reads one request and answers as the server's mode says; "hang" accepts and never answers."""

    def handle(self) -> None:
        server: Any = self.server
        self.request.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        if server.mode == "hang":
            server.stop.wait(60)
            return
        status, kind, body = ANSWERS[server.mode]
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        self.request.sendall(head.encode() + body)


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, str]]:
    """One stub server per mode, on loopback; the endpoint URL of each."""
    servers = []
    for mode in ["hang", *ANSWERS]:
        server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Stub)
        server.daemon_threads = True
        server.mode, server.stop = mode, threading.Event()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
    yield {s.mode: f"http://127.0.0.1:{s.server_address[1]}" for s in servers}
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", COMMANDS)
def test_an_endpoint_that_never_answers_times_out_within_the_budget(command: str, results: dict[str, Result]) -> None:
    """RUNBOOK_AWS_TIMEOUT=0.5 here; the case's hard limit (8 s) would kill a command that waits longer."""
    result = results[f"hang-{command}"]
    refused(result, "timed out", "RUNBOOK_AWS_TIMEOUT")
    assert "did not answer within the 0.5 s" in result.err


@pytest.mark.parametrize("mode", ANSWERS)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_answer_that_is_not_aws_is_one_line(mode: str, command: str, results: dict[str, Result]) -> None:
    """`{}` is a JSON answer with nothing in it: the DMS task then does not exist; the rest is no AWS answer."""
    nothing = mode == "empty-object" and command == "dms-status"
    refused(results[f"{mode}-{command}"], "does not exist" if nothing else "did not answer like AWS")


SETTINGS = [
    ("AWS_MAX_ATTEMPTS", value) for value in ("abc", "0", "11", " 3", "3.0", "true", "1_0", "٣", "-1")
] + [
    ("RUNBOOK_AWS_TIMEOUT", value) for value in ("0", "-1", "abc", "inf", "nan", "1e3", "99999", "0.05", "15 s")
] + [
    ("AWS_ENDPOINT_URL", value) for value in ("not a url", "ftp://127.0.0.1", "http://", "http://bad host:1")
]


@pytest.mark.parametrize("name,value", SETTINGS, ids=[f"{n}={v!r}" for n, v in SETTINGS])
def test_a_malformed_setting_is_refused(name: str, value: str, results: dict[str, Result]) -> None:
    refused(results[f"setting-{name}-{value}"], f"{name}=", "is not valid")


def test_defaults_are_fifteen_seconds_and_three_attempts_in_all() -> None:
    """botocore's `max_attempts` counts retries and AWS_MAX_ATTEMPTS total attempts: both map to total_max_attempts."""
    assert limits({}) == Limits(timeout=15.0, attempts=3, endpoint=None)
    client = Aws("ap-northeast-1", limits({"AWS_MAX_ATTEMPTS": "1", "RUNBOOK_AWS_TIMEOUT": "2.5"})).client("ecs")
    assert client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (2.5, 2.5)


def test_a_pause_between_polls_starts_a_fresh_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-to-back calls share the budget; a command that waited on purpose (a poll loop) gets a new one."""
    now = [100.0]
    monkeypatch.setattr("runbook.aws.time.monotonic", lambda: now[0])
    budget = _Budget(Limits(timeout=1.0, attempts=1, endpoint=None))
    call = {"model": SimpleNamespace(name="DescribeServices"), "event_name": "before-call.ecs.DescribeServices"}

    def one(seconds: float) -> None:
        budget.before(**call)
        now[0] += seconds
        budget.after()

    one(0.8)
    one(0.1)
    assert budget.left == pytest.approx(0.1)
    now[0] += PAUSE_SECONDS
    one(0.1)
    assert budget.left == pytest.approx(0.9)


def _job(argv: list[str], env: dict[str, str], seconds: float = 8.0) -> Callable[[Project], Job]:
    return lambda p: Job("runbook", [*argv, "--outputs", OUTPUTS], env={**CREDENTIALS, **env}, seconds=seconds)


@pytest.fixture(scope="module")
def results(pool: Pool, tmp_path_factory: pytest.TempPathFactory, stubs: dict[str, str]) -> dict[str, Result]:
    cases: dict[str, Callable[[Project], Job]] = {}
    for command, argv in COMMANDS.items():
        cases[f"hang-{command}"] = _job(argv, {"AWS_ENDPOINT_URL": stubs["hang"], "RUNBOOK_AWS_TIMEOUT": "0.5"})
        for mode in ANSWERS:
            cases[f"{mode}-{command}"] = _job(argv, {"AWS_ENDPOINT_URL": stubs[mode]})
    for name, value in SETTINGS:
        cases[f"setting-{name}-{value}"] = _job(["verify"], {"AWS_ENDPOINT_URL": stubs["hang"], name: value})
    return run_table(pool, tmp_path_factory.mktemp("endpoints"), cases)
