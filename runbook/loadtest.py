"""`loadtest`: seed 001's load test (100 users, 50 RPS, p95 < 500 ms, errors < 1%) before the first canary step.

locust drives the service (`runbook/locustfile.py`), headless, in a process of its own: importing locust patches the
standard library for gevent, so this process never does. The run is bounded (duration plus a start and stop grace)
and visible (a line every few seconds); the child dies with this process. The result is judged against the seed's
thresholds (p95, error rate, and the throughput actually reached) and written as JSON to the stack's SSM parameter
(`loadTestResultParameter`), where the canary's health gate reads it at the first step (0 -> 5): `canary status`,
`canary watch` and the policy pack's `alb-canary-health-gate`.

Reaching the service: a stack with the test route (`testRoute.enabled`) gets every request sent with the
`X-Task-Service-Test` header, whose value is read from Secrets Manager; without it, only a stack whose service already
takes 100% is measured (anything less would measure the monolith). Authorization comes from an environment variable
(`--auth-env`) or from a Cognito sign-in with the pool and client of the stack's Cognito secret (`--cognito-user`,
password in LOADTEST_COGNITO_PASSWORD). No header value is ever printed or passed on a command line.

Reads by default. `--write-body FILE` adds a POST of that JSON body in 1 of 10 requests, and is refused while the
stack's DMS task could still replicate into the tables those writes would land in.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from runbook import dms
from runbook.aws import Aws, error_text
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.outputs import Outputs
from runbook.output import Invocation, Report, progress
from runbook.report import CHECK_COLUMNS, Check, Status, records
from runbook.snapshots import iso
from runbook.waiting import WaitFailed, WaitTimedOut, wait_for
from task_service import contract, loadtest
from task_service.canary import TEST_ROUTE_HEADER
from task_service.contract import Output
from task_service.untrusted import InputError, read_json

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
COGNITO_PASSWORD_ENV = "LOADTEST_COGNITO_PASSWORD"
MIN_THROUGHPUT_SHARE = 0.9
"""The run must reach 90% of the asked RPS: a service that slows its clients down has not taken the seed's load."""
START_GRACE_SECONDS = 30
STOP_SECONDS = 10
PROGRESS_SECONDS = 5.0
DMS_SAFE_FOR_WRITES = {"stopped"}
"""A DMS task in any other state (ready, running, failed...) may still copy into the tables writes would touch."""


@dataclass(frozen=True)
class Plan:
    """What to run: the seed's load by default."""

    url: str
    users: int = loadtest.USERS
    rps: float = loadtest.RPS
    duration_seconds: int = loadtest.DURATION_SECONDS
    paths: tuple[str, ...] = ("/api/tasks",)
    timeout_seconds: float = 10.0
    write_body: Any = None


def parse_duration(text: str) -> int:
    """`60`, `60s`, `2m` -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([sm]?)\s*", text)
    if not match or int(match[1]) == 0:
        raise BadInput(f"--duration must be a whole number of seconds or minutes such as 60s or 2m, got {text!r}.")
    return int(match[1]) * (60 if match[2] == "m" else 1)


def check_plan(plan: Plan) -> None:
    """Values no run could use are bad input (a NaN or infinite rate or timeout too)."""
    if not re.fullmatch(r"https?://[^\s/]+", plan.url.rstrip("/")):
        raise BadInput(f"--url must be the service's base URL such as https://api.example.com, got {plan.url!r}.")
    if plan.users < 1 or not (math.isfinite(plan.rps) and plan.rps > 0):
        raise BadInput(f"--users must be at least 1 and --rps a number above 0, got {plan.users} and {plan.rps:g}.")
    if not (math.isfinite(plan.timeout_seconds) and plan.timeout_seconds > 0):
        raise BadInput(f"--timeout must be a number of seconds above 0, got {plan.timeout_seconds:g}.")
    bad = [p for p in plan.paths if not p.startswith("/")]
    if bad:
        raise BadInput(f"--path must start with '/', got {bad[0]!r}.")


def _secret_json(aws: Aws, output: Output, out: Outputs) -> dict[str, Any]:
    arn = out.string(output)
    try:
        text = aws.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString") or ""
        document = json.loads(text)
    except ClientError as err:
        raise BadInput(f"cannot read {arn} ({output.meaning}): {error_text(err)}") from None
    except json.JSONDecodeError:
        raise BadInput(f"{arn} ({output.meaning}) does not hold JSON (value not shown).") from None
    if not isinstance(document, dict):
        raise BadInput(f"{arn} ({output.meaning}) does not hold a JSON object (value not shown).")
    return document


def _live_test_route(aws: Aws, out: Outputs) -> None:
    """The rule must be on the listener and still require the header, or the requests would follow the weights."""
    arn = out.string(contract.TEST_ROUTE_RULE_ARN)
    try:
        [rule] = aws.client("elbv2").describe_rules(RuleArns=[arn])["Rules"]
    except ClientError as err:
        raise BadInput(f"the test route's rule {arn} cannot be read ({error_text(err)}); deploy with testRoute.enabled: true.") from None
    names = [(c.get("HttpHeaderConfig") or {}).get("HttpHeaderName") for c in rule.get("Conditions", [])]
    if TEST_ROUTE_HEADER not in names:
        raise BadInput(f"the test route's rule {arn} does not require the {TEST_ROUTE_HEADER} header; deploy the stack again.")


def route_header(aws: Aws, out: Outputs) -> dict[str, str]:
    """The header that sends a request down the test route, read from its secret (after checking the rule is live)."""
    _live_test_route(aws, out)
    document = _secret_json(aws, contract.TEST_ROUTE_SECRET_ARN, out)
    value = document.get("value")
    if document.get("header") != TEST_ROUTE_HEADER or not isinstance(value, str) or not value:
        raise BadInput(f"{out.string(contract.TEST_ROUTE_SECRET_ARN)} should hold {{\"header\": \"{TEST_ROUTE_HEADER}\", \"value\": ...}} (value not shown).")
    return {TEST_ROUTE_HEADER: value}


def cognito_authorization(aws: Aws, out: Outputs, username: str) -> dict[str, str]:
    """Sign `username` in with the pool and app client of the stack's Cognito secret; Bearer <access token>."""
    password = os.environ.get(COGNITO_PASSWORD_ENV)
    if not password:
        raise BadInput(f"--cognito-user needs the user's password in the environment variable {COGNITO_PASSWORD_ENV}.")
    document = _secret_json(aws, contract.COGNITO_SECRET_ARN, out)
    try:
        answer = aws.client("cognito-idp").initiate_auth(
            ClientId=str(document.get("client_id")),
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as err:
        raise BadInput(f"Cognito sign-in of {username} failed: {error_text(err)}") from None
    token = answer.get("AuthenticationResult", {}).get("AccessToken")
    if not token:
        raise BadInput(f"Cognito sign-in of {username} asks for a challenge ({answer.get('ChallengeName')}); use a user with a permanent password.")
    return {"Authorization": f"Bearer {token}"}


def env_authorization(name: str) -> dict[str, str]:
    value = os.environ.get(name)
    if not value:
        raise BadInput(f"--auth-env {name}: the environment variable is not set (it holds the whole Authorization value, e.g. 'Bearer ...').")
    return {"Authorization": value}


def route_check(out: Outputs, use_test_route: bool) -> str:
    """How the requests reach the service; BadInput when they would mostly reach the monolith instead."""
    if use_test_route:
        return f"via the test route (header {TEST_ROUTE_HEADER})"
    weight = out.integer(contract.CANARY_WEIGHT)
    if weight < 100:
        raise BadInput(
            f"stack output '{contract.CANARY_WEIGHT.name}' is {weight}: most of {out.source}'s /api/tasks traffic goes to the "
            "monolith, so this would measure the monolith. Enable the test route (testRoute.enabled: true, deploy) and run again."
        )
    return "through the weighted rule (the service takes 100%)"


def check_writes(out: Outputs, aws: Aws) -> None:
    """Writes land in the tables DMS replicates into: refuse them while its task could still be copying."""
    if not out.dms_enabled:
        return
    status = dms.describe(aws, dms.task_arn(out)).get("Status", "")
    if status not in DMS_SAFE_FOR_WRITES:
        raise BadInput(
            f"--write-body refused: the DMS task is '{status}' and replicates into {', '.join(out.strings(contract.DMS_TABLES))}, "
            "which the API writes to. Load-test with reads only until `dms stop` at the end of the migration."
        )


def locust_command(plan: Plan) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--loglevel", "WARNING",
        # Every user starts within a second; the statistics restart once they all run, so the ramp is not measured.
        "--users", str(plan.users), "--spawn-rate", str(plan.users), "--reset-stats", "--run-time", f"{plan.duration_seconds}s",
        "--stop-timeout", str(STOP_SECONDS), "--host", plan.url.rstrip("/"),
    ]


def run_locust(plan: Plan, headers: dict[str, str], emit: Callable[[str], Any]) -> dict[str, Any]:
    """Run locust headless in its own process, wait for it within bounds, return what it measured."""
    with tempfile.TemporaryDirectory(prefix="loadtest-") as work:
        result_path, log_path = Path(work) / "result.json", Path(work) / "locust.log"
        settings = {"paths": list(plan.paths), "perUserRps": plan.rps / plan.users, "timeoutSeconds": plan.timeout_seconds,
                    "resultPath": str(result_path), "writeBody": plan.write_body}
        env = {**os.environ, "TASK_SERVICE_LOADTEST": json.dumps(settings), "TASK_SERVICE_LOADTEST_HEADERS": json.dumps(headers),
               "TASK_SERVICE_LOADTEST_PARENT": str(os.getpid())}
        started = time.monotonic()
        with open(log_path, "wb") as log:
            child = subprocess.Popen(locust_command(plan), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

            def finished() -> tuple[bool, str]:
                """Block up to PROGRESS_SECONDS on the child, so its end is seen at once and progress every few seconds."""
                try:
                    child.wait(timeout=PROGRESS_SECONDS)
                except subprocess.TimeoutExpired:
                    return False, f"running, {time.monotonic() - started:.0f} s in"
                return True, "finished"

            try:
                wait_for(
                    f"locust ({plan.users} users, {plan.rps:g} RPS, {plan.duration_seconds} s)",
                    finished,
                    timeout_seconds=plan.duration_seconds + START_GRACE_SECONDS + STOP_SECONDS,
                    poll_seconds=0,
                    emit=emit,
                )
            finally:
                if child.poll() is None:
                    child.terminate()
                    try:
                        child.wait(timeout=STOP_SECONDS)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
        if not result_path.exists():
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-10:]
            raise WaitFailed(f"locust exited with code {child.returncode} without a result; its last lines:\n  " + "\n  ".join(tail))
        measured: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        return measured


def reachable_url(plan: Plan, headers: dict[str, str]) -> None:
    """One request before the run: a URL nothing answers on is bad input, not a failed load test."""
    request = urllib.request.Request(plan.url.rstrip("/") + plan.paths[0], headers=headers)
    try:
        urllib.request.urlopen(request, timeout=plan.timeout_seconds).close()
    except urllib.error.HTTPError:
        return  # it answered; the status is the load test's business
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise BadInput(f"cannot reach {plan.url.rstrip('/') + plan.paths[0]}: {reason}") from None


@dataclass
class Verdict:
    """The recorded result: `task_service.loadtest.REQUIRED_FIELDS` and what else explains it."""

    passed: bool
    finishedAt: str
    p95Ms: float
    errorRatePercent: float
    requests: int
    startedAt: str
    p50Ms: float
    p99Ms: float
    failures: int
    achievedRps: float
    targetRps: float
    users: int
    durationSeconds: int
    url: str
    paths: list[str]
    viaTestRoute: bool
    writes: bool
    thresholds: dict[str, float]
    failedChecks: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _iso(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, timezone.utc))


def judge(plan: Plan, measured: dict[str, Any], via_test_route: bool) -> tuple[Verdict, list[Check]]:
    requests, failures = int(measured["requests"]), int(measured["failures"])
    error_rate = 100.0 * failures / requests if requests else 100.0
    p95, rps = float(measured["p95Ms"] or 0), float(measured["rps"] or 0)
    floor = plan.rps * MIN_THROUGHPUT_SHARE
    checks = [
        Check.verdict("requests", requests > 0, f"{requests} sent, {failures} failed"),
        Check.verdict("p95 latency", requests > 0 and p95 < loadtest.MAX_P95_MS,
              f"{p95:g} ms (gate < {loadtest.MAX_P95_MS:g} ms; p50 {measured['p50Ms'] or 0:g}, p99 {measured['p99Ms'] or 0:g})"),
        Check.verdict("error rate", error_rate < loadtest.MAX_ERROR_RATE_PERCENT,
              f"{error_rate:.2f}% (gate < {loadtest.MAX_ERROR_RATE_PERCENT:g}%)"),
        Check.verdict("throughput", rps >= floor,
              f"{rps:.1f} RPS of {plan.rps:g} asked with {plan.users} users (gate >= {floor:g})"),
    ]
    verdict = Verdict(
        passed=all(c.status is Status.PASS for c in checks),
        finishedAt=_iso(float(measured["finishedAt"])), p95Ms=p95, errorRatePercent=round(error_rate, 3), requests=requests,
        startedAt=_iso(float(measured["startedAt"])), p50Ms=float(measured["p50Ms"] or 0), p99Ms=float(measured["p99Ms"] or 0),
        failures=failures, achievedRps=round(rps, 2), targetRps=plan.rps, users=plan.users, durationSeconds=plan.duration_seconds,
        url=plan.url, paths=list(plan.paths), viaTestRoute=via_test_route, writes=plan.write_body is not None,
        thresholds={"p95Ms": loadtest.MAX_P95_MS, "errorRatePercent": loadtest.MAX_ERROR_RATE_PERCENT, "rps": loadtest.RPS, "users": loadtest.USERS},
        failedChecks=[c.name for c in checks if c.status is not Status.PASS],
        errors=list(measured.get("errors", [])),
    )
    return verdict, checks


def record(aws: Aws, out: Outputs, verdict: Verdict) -> str:
    """Overwrite the stack's result parameter (SSM standard tier: the JSON stays well under 4 KB)."""
    name = out.string(contract.LOADTEST_RESULT_PARAMETER)
    document = asdict(verdict)
    text = json.dumps(document, separators=(",", ":"))
    while len(text.encode()) > 4000 and document["errors"]:
        document["errors"].pop()
        text = json.dumps(document, separators=(",", ":"))
    aws.client("ssm").put_parameter(Name=name, Value=text, Type="String", Overwrite=True,
                                    Description="Last `runbook loadtest` result (read by the canary's health gate)")
    return name


def add_parser(commands: Any, parents: list[Any]) -> None:
    p = commands.add_parser(
        "loadtest", parents=parents,
        help="seed 001's load test with locust (100 users, 50 RPS, p95 < 500 ms, errors < 1%%); records the result (exit 1 on a failed gate)",
    )
    p.add_argument("--url", required=True, help="the service's base URL, e.g. https://api.example.com (the ALB's listener)")
    p.add_argument("--users", type=int, default=loadtest.USERS, help="concurrent users (default: %(default)s)")
    p.add_argument("--rps", type=float, default=loadtest.RPS, help="requests per second, all users together (default: %(default)s)")
    p.add_argument("--duration", default=f"{loadtest.DURATION_SECONDS}s", help="how long, e.g. 60s or 5m (default: %(default)s)")
    p.add_argument("--path", action="append", dest="paths", metavar="PATH", help="a path to GET, repeatable (default: /api/tasks)")
    p.add_argument("--timeout", type=float, default=Plan.timeout_seconds, help="seconds per request (default: %(default)s)")
    p.add_argument("--auth-env", metavar="VAR", help="environment variable holding the whole Authorization value (never printed)")
    p.add_argument("--cognito-user", metavar="NAME", help=f"sign in as NAME with the stack's Cognito pool and client (password in {COGNITO_PASSWORD_ENV})")
    p.add_argument("--no-test-route", action="store_true", help="do not send the test route's header even when the stack has one")
    p.add_argument("--no-record", action="store_true", help="do not write the result to the stack's SSM parameter (no outputs needed)")
    p.add_argument("--write-body", metavar="FILE", help="also POST this JSON body to the first path in 1 of 10 requests (refused while DMS may replicate)")


@dataclass
class Request:
    """The command line, resolved: the plan and where its headers come from."""

    plan: Plan
    auth_env: str | None = None
    cognito_user: str | None = None
    use_test_route: bool = True
    record: bool = True


def request_from(args: Any) -> Request:
    """The command line as a Request; BadInput for values no run could use."""
    body = None
    if args.write_body:
        try:
            body = read_json(Path(args.write_body), "the file")
        except InputError as err:
            raise BadInput(f"--write-body {args.write_body} is not a readable JSON file: {err}") from None
    plan = Plan(
        url=args.url, users=args.users, rps=args.rps, duration_seconds=parse_duration(args.duration),
        paths=tuple(args.paths or Plan.paths), timeout_seconds=args.timeout, write_body=body,
    )
    check_plan(plan)
    return Request(plan, auth_env=args.auth_env, cognito_user=args.cognito_user, use_test_route=not args.no_test_route, record=not args.no_record)


def headers_for(request: Request, out: Outputs | None, aws: Aws | None) -> tuple[dict[str, str], bool]:
    """Every header the requests carry, and whether the test route's is among them."""
    headers: dict[str, str] = {}
    if request.auth_env:
        headers |= env_authorization(request.auth_env)
    if request.cognito_user:
        if out is None or aws is None:
            raise BadInput("--cognito-user needs the stack's outputs (--outputs or --stack): the pool and client are in its Cognito secret.")
        headers |= cognito_authorization(aws, out, request.cognito_user)
    via_test_route = bool(out and aws and request.use_test_route and out.test_route_enabled)
    if via_test_route:
        assert out is not None and aws is not None
        headers |= route_header(aws, out)
    return headers, via_test_route


def run(request: Request, out: Outputs | None, aws: Aws | None, invocation: Invocation | None) -> Report:
    plan = request.plan
    check_plan(plan)
    if out is not None:
        out.require(contract.CANARY_WEIGHT, contract.LOADTEST_RESULT_PARAMETER, contract.TEST_ROUTE_SECRET_ARN, contract.TEST_ROUTE_RULE_ARN)
    if plan.write_body is not None and out is not None and aws is not None:
        check_writes(out, aws)
    headers, via_test_route = headers_for(request, out, aws)
    route = route_check(out, via_test_route) if out is not None else "straight to the URL (no stack outputs)"
    reachable_url(plan, headers)
    progress(f"load test of {plan.url} {route}: {plan.users} users, {plan.rps:g} RPS, {plan.duration_seconds} s, "
              f"{'reads and writes' if plan.write_body is not None else 'reads only'} on {', '.join(plan.paths)}")
    try:
        measured = run_locust(plan, headers, progress)
    except (WaitTimedOut, WaitFailed) as err:
        raise BadInput(f"the load generator did not finish: {err}") from None
    verdict, checks = judge(plan, measured, via_test_route)
    parameter = record(aws, out, verdict) if request.record and out is not None and aws is not None else None
    report = Report(EXIT_OK if verdict.passed else EXIT_FAILED, fields=asdict(verdict))
    report.table("checks", CHECK_COLUMNS, records(checks))
    for error in verdict.errors:
        report.say(f"  {error['count']} x {error['request']}: {error['error']}")
    report.say(f"{'PASSED' if verdict.passed else 'FAILED'}: {verdict.requests} requests, {verdict.achievedRps} RPS, p50/p95/p99 "
               f"{verdict.p50Ms:g}/{verdict.p95Ms:g}/{verdict.p99Ms:g} ms, errors {verdict.errorRatePercent}%")
    report.say(f"recorded in SSM parameter {parameter}" if parameter else "not recorded (--no-record)", recordedIn=parameter)
    if verdict.passed and invocation is not None:
        report.suggest("the first canary step's gate reads it", invocation.command("canary", "status"))
    return report
