"""Fixtures: one moto server and one PostgreSQL server per session, fresh state per test."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.server import ThreadedMotoServer

from task_service import contract
from tests.runbook import moto_stack

REGION = moto_stack.program_outputs()[contract.REGION.name]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # moto logs every request and its 500s
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # EC2 resets 20x faster without the AMI catalogue
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries are missing: run scripts/ensure-postgres")
    return Path(found[-1]).parent


def _self_signed(base: Path) -> tuple[Path, Path]:
    """A certificate and key for the test server, so `sslmode=require` DSNs (what the runbook prints, as RDS
    enforces TLS) connect here too."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )
    cert_file, key_file = base / "server.crt", base / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL on loopback with TLS: run as `postgres` when we are root, fsync off."""
    bindir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
    cert_file, key_file = _self_signed(base)
    as_user: list[str] = []
    if os.geteuid() == 0:
        for path in (base, cert_file, key_file):
            shutil.chown(path, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run(as_user + list(cmd), check=True, capture_output=True, text=True)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
    options = f"-c fsync=off -c listen_addresses=127.0.0.1 -p {port} -k {base} -c ssl=on -c ssl_cert_file={cert_file} -c ssl_key_file={key_file}"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "30", "start")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


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
