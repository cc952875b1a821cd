"""boto3 clients with short timeouts and few retries, and translation of "cannot reach AWS" errors.

Endpoints come from boto3 itself, so AWS_ENDPOINT_URL (tests, VPC endpoints) works unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from runbook.errors import BadInput


def _config() -> Config:
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", "3"))
    return Config(
        connect_timeout=5,
        read_timeout=20,
        retries={"max_attempts": max(attempts, 1), "mode": "standard"},
    )


_LOADER: Loader | None = None


def _shared_loader() -> Loader:
    """Service models parsed once per process: loading them dominates client creation."""
    global _LOADER
    if _LOADER is None:
        _LOADER = create_loader()
    return _LOADER


class Aws:
    """One session per command run (credentials resolved fresh); clients are created once."""

    def __init__(self, region: str) -> None:
        self.region = region
        core = botocore.session.get_session()
        core.register_component("data_loader", _shared_loader())
        # Any: the service is chosen at run time, and boto3's stubs type `client` only per literal service name.
        self._session: Any = boto3.session.Session(botocore_session=core, region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, config=_config())
        return self._clients[service]


def error_text(err: Exception) -> str:
    """A one-line description of an AWS error for a report row."""
    if isinstance(err, ClientError):
        info = err.response.get("Error", {})
        code, message = str(info.get("Code", "Error")), str(info.get("Message", ""))
        if code.isdigit() or message.lstrip().startswith("<"):
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
            return f"HTTP {status} without an AWS error body (the API or this endpoint does not support the call)"
        return f"{code}: {message}".strip()
    return str(err)


@contextmanager
def reachable() -> Iterator[None]:
    """Turn "AWS cannot be reached or called at all" into BadInput (exit 2)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "the AWS API endpoints")
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise BadInput(
            "no usable AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or run where a role is available)."
        ) from None
    except NoRegionError:
        raise BadInput("no AWS region: pass --region or keep 'region' in the outputs.") from None
    except BotoConnectionError as err:
        raise BadInput(f"cannot reach {endpoint}: {err}") from None
    except BotoCoreError as err:
        raise BadInput(f"AWS call failed before reaching the API ({endpoint}): {err}") from None


def is_auth_error(err: ClientError) -> bool:
    """Errors that mean the credentials are wrong, not that a resource is."""
    code = err.response.get("Error", {}).get("Code", "")
    return code in {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
