"""`loadtest` with locust against HTTP servers the tests start (healthy, slow, failing 2%), short runs, moto for the stack.

The servers record the headers they received, so the test route's header and the authorization are shown to be sent;
the output is searched for their values, which must never appear.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbook import loadtest
from runbook.cli import main
from task_service import contract
from task_service import loadtest as seed
from task_service.canary import TEST_ROUTE_HEADER
from tests.runbook import moto_stack

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--users", "10", "--rps", "60", "--duration", "3s"]
AUTH = "Bearer not-to-be-printed-token"
PASSWORD = "Secret-Passw0rd!"


@dataclass
class Served:
    """What a test server saw."""

    url: str
    headers: list[dict[str, str]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)


@contextmanager
def server(delay: float = 0.0, fail_every: int = 0) -> Iterator[Served]:
    """A loopback API: answers after `delay` seconds, with a 500 for every `fail_every`-th request (0: never)."""
    lock = threading.Lock()
    count = [0]
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            with lock:
                count[0] += 1
                failing = fail_every and count[0] % fail_every == 0
                served.headers.append(dict(self.headers.items()))
                served.methods.append(self.command)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay)
            body = b'{"tasks": []}'
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # 100 users connect at once; the default backlog (5) would add 1 s SYN retries
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def routed(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> tuple[moto_stack.Stack, str]:
    """Prod in moto before the canary (weight 0) with the test route deployed; the header's value."""
    built = moto_stack.build(monkeypatch, canary_weight=0)
    return built, moto_stack.add_test_route(built)


def _recorded(stack: moto_stack.Stack) -> dict[str, Any]:
    name = stack.value(contract.LOADTEST_RESULT_PARAMETER)
    document: dict[str, Any] = json.loads(stack.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    return document


def _cognito_user(stack: moto_stack.Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user in a moto user pool whose pool and client the stack's Cognito secret names; the user's name."""
    idp = stack.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="myteacher")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="task-service", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="loadtest-user")
    idp.admin_set_user_password(UserPoolId=pool, Username="loadtest-user", Password=PASSWORD, Permanent=True)
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.value(contract.COGNITO_SECRET_ARN), SecretString=json.dumps({"user_pool_id": pool, "client_id": client})
    )
    monkeypatch.setenv(loadtest.COGNITO_PASSWORD_ENV, PASSWORD)
    return "loadtest-user"


def test_a_healthy_service_passes_through_the_test_route_and_the_result_is_recorded(
    routed: tuple[moto_stack.Stack, str], outputs_file: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, value = routed
    user = _cognito_user(stack, monkeypatch)
    with server() as api:
        code = main(["loadtest", "--url", api.url, "--outputs", outputs_file(stack.outputs), "--cognito-user", user, *SHORT])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    [token] = {h["Authorization"] for h in api.headers}  # one Cognito access token (a JWT) for the whole run
    assert token.startswith("Bearer ") and token.count(".") == 2
    assert len(api.headers) > 100 and all(h.get(TEST_ROUTE_HEADER) == value for h in api.headers)
    assert set(api.methods) == {"GET"}  # reads only by default
    result = _recorded(stack)
    assert set(seed.REQUIRED_FIELDS) <= set(result) and result["passed"] is True and result["viaTestRoute"] is True
    assert result["requests"] > 100 and result["errorRatePercent"] == 0 and result["p95Ms"] < seed.MAX_P95_MS
    assert result["requests"] <= len(api.headers)  # every request locust counted reached the server
    shown = captured.out + captured.err
    assert value not in shown and token.split(" ", 1)[1] not in shown and PASSWORD not in shown
    assert "via the test route" in captured.err and f"recorded in SSM parameter {stack.value(contract.LOADTEST_RESULT_PARAMETER)}" in captured.out
    assert "python -m runbook canary status --outputs" in captured.out  # the next command, runnable as printed


def test_a_slow_service_fails_on_p95(routed: tuple[moto_stack.Stack, str], outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack, _ = routed
    with server(delay=0.6) as api:
        code = main(["loadtest", "--url", api.url, "--outputs", outputs_file(stack.outputs), "--users", "10", "--rps", "10", "--duration", "4s", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["passed"] is False
    assert document["failedChecks"] == ["p95 latency"] and document["p95Ms"] >= 600
    assert {row["check"]: row["result"] for row in document["checks"]}["p95 latency"] == "FAIL"
    assert _recorded(stack)["passed"] is False


def test_two_percent_errors_fail_the_error_gate(routed: tuple[moto_stack.Stack, str], outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack, _ = routed
    with server(fail_every=50) as api:
        code = main(["loadtest", "--url", api.url, "--outputs", outputs_file(stack.outputs), *SHORT, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["failedChecks"] == ["error rate"]
    assert document["failures"] >= 2 and 1.0 < document["errorRatePercent"] < 3.0
    assert "500" in document["errors"][0]["error"]


def test_without_the_test_route_at_zero_percent_it_would_measure_the_monolith(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = moto_stack.build(monkeypatch, canary_weight=0)
    with server() as api:
        assert main(["loadtest", "--url", api.url, "--outputs", outputs_file(stack.outputs), *SHORT]) == 2
    assert "this would measure the monolith. Enable the test route" in capsys.readouterr().err
    assert api.headers == []


def test_writes_are_refused_while_dms_may_replicate(
    routed: tuple[moto_stack.Stack, str], outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _ = routed
    body = tmp_path / "task.json"
    body.write_text(json.dumps({"title": "load test"}))
    with server() as api:
        code = main(["loadtest", "--url", api.url, "--outputs", outputs_file(stack.outputs), "--write-body", str(body), *SHORT])
    assert code == 2 and api.headers == []
    err = capsys.readouterr().err
    assert "--write-body refused: the DMS task is 'ready'" in err and "public.tasks" in err


def test_writes_and_an_authorization_from_the_environment_without_a_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "task.json"
    body.write_text(json.dumps({"title": "load test"}))
    monkeypatch.setenv("LT_AUTH", AUTH)
    with server() as api:
        code = main(["loadtest", "--url", api.url, "--no-record", "--write-body", str(body), "--auth-env", "LT_AUTH", *SHORT])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert {"GET", "POST"} == set(api.methods) and api.methods.count("POST") < api.methods.count("GET")
    assert {h.get("Authorization") for h in api.headers} == {AUTH} and "not-to-be-printed-token" not in captured.out + captured.err
    assert "not recorded (--no-record)" in captured.out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--duration", "soon"], "--duration must be a whole number of seconds or minutes"),
        (["--users", "0"], "--users must be at least 1"),
        (["--path", "api/tasks"], "--path must start with '/'"),
        (["--rps", "nan"], "--rps a number above 0"),
        (["--timeout", "0"], "--timeout must be a number of seconds above 0"),
        (["--auth-env", "LT_UNSET_VARIABLE"], "--auth-env LT_UNSET_VARIABLE: the environment variable is not set"),
    ],
)
def test_bad_input_exits_2_before_any_request(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with server() as api:
        assert main(["loadtest", "--url", api.url, "--no-record", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and api.headers == []


def test_an_unreachable_url_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with server() as api:
        url = api.url
    assert main(["loadtest", "--url", url, "--no-record", *SHORT]) == 2
    assert f"cannot reach {url}/api/tasks" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_locust_dies_with_the_command() -> None:
    """However the command ends (here SIGKILL, which it cannot handle), the locust process does not outlive it."""
    with server() as api:
        command = subprocess.Popen(
            [sys.executable, "-m", "runbook", "loadtest", "--url", api.url, "--no-record", "--users", "2", "--rps", "2", "--duration", "60s"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _children(command.pid) and time.monotonic() < deadline:  # the command probes the URL first
            time.sleep(0.1)
        seen = len(api.headers)
        while len(api.headers) == seen and time.monotonic() < deadline:  # locust is running once requests arrive
            time.sleep(0.1)
        [child] = _children(command.pid)
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _dead(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _dead(child)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever inherited it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
