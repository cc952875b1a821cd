"""A throwaway PostgreSQL server on loopback, for the tests and the integrity bench.

Debian's server binaries (scripts/ensure-postgres installs them) run from a temporary directory on a free port, as
`postgres` when we are root (initdb refuses root), with fsync off: the data is disposable.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class MissingServer(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindir() -> Path:
    """Debian's newest server, or TEST_POSTGRES_BINDIR (e.g. PostgreSQL 16, what RDS runs, unpacked by hand)."""
    override = os.environ.get("TEST_POSTGRES_BINDIR")
    if override:
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise MissingServer("PostgreSQL server binaries are missing: run scripts/ensure-postgres")
    return Path(found[-1]).parent


def _self_signed(base: Path) -> list[Path]:
    """A certificate for 127.0.0.1 and its key (mode 0600, as the server demands), in `base`."""
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
    return [cert_file, key_file]


@contextlib.contextmanager
def throwaway(prefix: str, *settings: str, tls: bool = False) -> Iterator[tuple[str, Path]]:
    """Start a server (extra `settings` as `name=value`; `tls` adds a self-signed certificate), yield its DSN
    without a database and its directory."""
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix=prefix))
    owned = [base] + (_self_signed(base) if tls else [])
    if tls:
        settings += ("ssl=on", f"ssl_cert_file={owned[1]}", f"ssl_key_file={owned[2]}")
    as_user: list[str] = []
    if os.geteuid() == 0:
        for path in owned:
            shutil.chown(path, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()

    def run(*cmd: str) -> None:
        subprocess.run(as_user + list(cmd), check=True, capture_output=True, text=True)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
        options = " ".join(f"-c {s}" for s in ("fsync=off", "listen_addresses=127.0.0.1", *settings)) + f" -p {port} -k {base}"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "30", "start")
        try:
            yield f"host=127.0.0.1 port={port} user=postgres", base
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
