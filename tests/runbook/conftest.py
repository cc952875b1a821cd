"""Fixtures: one moto server and one PostgreSQL server per session, fresh state per test."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from task_service import contract
from tests import pgserver
from tests.moto_server import serving
from tests.runbook import moto_stack

REGION = moto_stack.program_outputs()[contract.REGION.name]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with serving() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at moto with fake credentials and no retries; start from an empty account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_endpoint


@pytest.fixture
def stack(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> moto_stack.Stack:
    """A stack like ours in moto at canary weight 50, with its outputs dict."""
    return moto_stack.build(monkeypatch, canary_weight=50)


@pytest.fixture
def outputs_file(tmp_path: Path) -> Any:
    """Write an outputs dict where the CLI would read it."""

    def write(values: dict[str, Any], name: str = "outputs.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(values, indent=2))
        return str(path)

    return write


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL on loopback for the whole session, with TLS so that the `sslmode=require` DSNs the
    runbook prints (RDS enforces TLS) connect to it too."""
    try:
        with pgserver.throwaway("runbook-pg-", tls=True) as (dsn, _):
            yield dsn
    except pgserver.MissingServer as err:
        pytest.fail(str(err))


@pytest.fixture
def new_database(pg_server: str) -> Iterator[Any]:
    """Create databases on demand; every one is dropped at the end of the test."""
    created: list[str] = []

    def make(label: str = "db") -> str:
        name = f"{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{pg_server} dbname={name}"

    yield make
    with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
