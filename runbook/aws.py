"""boto3 clients with a bounded total wait per command, few retries, and one clear message when AWS cannot answer.

Endpoints come from boto3 itself, so AWS_ENDPOINT_URL (tests, VPC endpoints) works unchanged. What bounds a
command's waiting:
- RUNBOOK_AWS_TIMEOUT (seconds, default 15): all AWS calls of one command together may take this long. A call
  that would overrun it is cut off (SIGALRM on the main thread; elsewhere the socket timeouts below still hold),
  and the command stops with "timed out" and exit 2. Commands that wait on purpose (`dms status --watch`, `canary
  watch`, `backup`) poll: a pause of PAUSE_SECONDS or more between calls starts a fresh budget, so each poll is
  bounded while their own deadlines bound the whole wait.
- AWS_MAX_ATTEMPTS (default 3): total attempts per call, the initial one included, as the AWS CLI reads it
  (botocore's `total_max_attempts`; its `max_attempts` counts retries only).
A malformed value of either, or of AWS_ENDPOINT_URL, is bad input. So is an endpoint that answers with something
that is not an AWS response (HTML from a proxy, a JSON-protocol call answered with text).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from runbook.errors import BadInput, TimedOut
from task_service.untrusted import clip, quote

TIMEOUT_VARIABLE = "RUNBOOK_AWS_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 15.0
MAX_TIMEOUT_SECONDS = 3600.0
ATTEMPTS_VARIABLE = "AWS_MAX_ATTEMPTS"
DEFAULT_ATTEMPTS = 3
MAX_ATTEMPTS = 10
CONNECT_TIMEOUT_SECONDS = 5.0
PAUSE_SECONDS = 1.0
_JSON_PROTOCOLS = {"json", "rest-json"}
_XML_PROTOCOLS = {"query", "ec2"}


@dataclass(frozen=True)
class Limits:
    """How long a command may wait for AWS, from the environment."""

    timeout: float
    attempts: int
    endpoint: str | None


def _number(name: str, text: str, pattern: str, low: float, high: float, expected: str) -> float:
    if not re.fullmatch(pattern, text, re.ASCII) or not low <= float(text) <= high:
        raise BadInput(f"{name}={quote(text)} is not valid: expected {expected}.")
    return float(text)


def limits(environ: dict[str, str] | None = None) -> Limits:
    """The limits the environment sets (unset or empty: the defaults); BadInput names a malformed variable."""
    env = dict(os.environ if environ is None else environ)
    timeout, attempts, endpoint = env.get(TIMEOUT_VARIABLE), env.get(ATTEMPTS_VARIABLE), env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in endpoint):
            raise BadInput(f"AWS_ENDPOINT_URL={quote(endpoint)} is not valid: expected an http(s) URL such as https://host:443.")
    return Limits(
        timeout=_number(TIMEOUT_VARIABLE, timeout, r"[0-9]+(\.[0-9]+)?", 0.1, MAX_TIMEOUT_SECONDS,
                        f"seconds between 0.1 and {MAX_TIMEOUT_SECONDS:g}") if timeout else DEFAULT_TIMEOUT_SECONDS,
        attempts=int(_number(ATTEMPTS_VARIABLE, attempts, r"[0-9]+", 1, MAX_ATTEMPTS,
                             f"a whole number of attempts from 1 to {MAX_ATTEMPTS}")) if attempts else DEFAULT_ATTEMPTS,
        endpoint=endpoint or None,
    )


class _Budget:
    """The AWS time a command has left; a call that would overrun it is interrupted by SIGALRM."""

    def __init__(self, limits_: Limits) -> None:
        self.limits = limits_
        self.left = limits_.timeout
        self.started = self.ended = 0.0
        self.call = "AWS"
        self.endpoint = clip(limits_.endpoint or "the AWS API endpoint", 120)
        self._armed = False

    def timed_out(self) -> TimedOut:
        return TimedOut(
            f"timed out: {self.call} at {self.endpoint} did not answer within the {self.limits.timeout:g} s this command"
            f" may spend on AWS ({TIMEOUT_VARIABLE}; {self.limits.attempts} attempt(s) per call, {ATTEMPTS_VARIABLE})."
        )

    def before(self, model: Any, event_name: str, **_: Any) -> None:
        self.call = f"{event_name.split('.')[1]} {model.name}"
        self.started = time.monotonic()
        if self.ended and self.started - self.ended >= PAUSE_SECONDS:
            self.left = self.limits.timeout  # the command waited on purpose: a new poll, a new budget
        if self.left <= 0:
            raise self.timed_out()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.left)
            self._armed = True

    def after(self, **_: Any) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            self._armed = False
        self.ended = time.monotonic()
        self.left -= self.ended - self.started

    def _expired(self, *_: Any) -> None:
        self.left = 0
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        self._armed = False
        raise self.timed_out()


class NotAnAwsResponse(BotoCoreError):
    """An endpoint answered with a body that is not what the service's protocol sends."""

    fmt = "{what}"


def _is_aws_json(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def _is_aws_xml(body: bytes, operation: str) -> bool:
    """The root of a query-protocol answer is `<Operation>Response`, or an error document."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return False
    return root.tag.rsplit("}", 1)[-1] in (f"{operation}Response", "ErrorResponse", "Response", "Error")


def _require_aws_body(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """botocore reads a non-JSON body as {"message": body}, which then looks like an empty answer, and an HTML page
    as XML missing every element, which fails deep in its parser; refuse both with one message."""
    body = response_dict.get("body") or b""
    protocol = operation_model.service_model.resolved_protocol
    if not body:
        return
    if protocol in _JSON_PROTOCOLS and not _is_aws_json(body):
        expected = "JSON"
    elif protocol in _XML_PROTOCOLS and not _is_aws_xml(body, operation_model.name):
        expected = f"an XML {operation_model.name}Response"
    else:
        return
    text = clip(body[:200].decode("utf-8", "replace"), 80)
    raise NotAnAwsResponse(what=f"HTTP {response_dict.get('status_code')} with a body that is not {expected} ({quote(text)})")


_LOADER: Loader | None = None


def _shared_loader() -> Loader:
    """Service models parsed once per process: loading them dominates client creation."""
    global _LOADER
    if _LOADER is None:
        _LOADER = create_loader()
    return _LOADER


class Aws:
    """One session per command run (credentials resolved fresh); clients are created once and share one budget."""

    def __init__(self, region: str, limits_: Limits | None = None) -> None:
        self.region = region
        self.limits = limits_ or limits()
        self.budget = _Budget(self.limits)
        core = botocore.session.get_session()
        core.register_component("data_loader", _shared_loader())
        # Any: the service is chosen at run time, and boto3's stubs type `client` only per literal service name.
        self._session: Any = boto3.session.Session(botocore_session=core, region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            wait = min(self.limits.timeout, 60.0)
            config = Config(
                connect_timeout=min(CONNECT_TIMEOUT_SECONDS, wait),
                read_timeout=wait,
                retries={"total_max_attempts": self.limits.attempts, "mode": "standard"},
            )
            client = self._session.client(service, config=config)
            events = client.meta.events
            events.register("before-call.*.*", self.budget.before)
            events.register("after-call.*.*", self.budget.after)
            events.register("after-call-error.*.*", self.budget.after)
            events.register("before-parse.*.*", _require_aws_body)
            self._clients[service] = client
        return self._clients[service]


def error_code(err: ClientError) -> str:
    """The AWS error code of a refused call ("" when the answer had none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def error_text(err: Exception) -> str:
    """A one-line description of an AWS error for a report row."""
    if isinstance(err, ClientError):
        info = err.response.get("Error", {})
        code, message = str(info.get("Code", "Error")), str(info.get("Message", ""))
        if code.isdigit() or message.lstrip().startswith("<"):
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
            return f"HTTP {status} without an AWS error body (the API or this endpoint does not support the call)"
        return clip(f"{clip(code, 80)}: {message}".strip())
    return clip(str(err))


@contextmanager
def reachable() -> Iterator[None]:
    """Turn "AWS cannot be reached or called at all" into BadInput (exit 2)."""
    endpoint = clip(os.environ.get("AWS_ENDPOINT_URL") or "the AWS API endpoints", 120)
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise BadInput(
            "no usable AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or run where a role is available)."
        ) from None
    except NoRegionError:
        raise BadInput("no AWS region: pass --region or keep 'region' in the outputs.") from None
    except (ReadTimeoutError, ConnectTimeoutError) as err:
        raise BadInput(f"timed out: {endpoint} did not answer ({error_text(err)}).") from None
    except BotoConnectionError as err:
        raise BadInput(f"cannot reach {endpoint}: {error_text(err)}") from None
    except (NotAnAwsResponse, ResponseParserError) as err:
        raise BadInput(f"{endpoint} did not answer like AWS: {error_text(err)}") from None
    except BotoCoreError as err:
        raise BadInput(f"AWS call failed before reaching the API ({endpoint}): {error_text(err)}") from None


def is_auth_error(err: ClientError) -> bool:
    """Errors that mean the credentials are wrong, not that a resource is."""
    return error_code(err) in {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
