"""Hostile DSNs through `python -m runbook schema apply` and `integrity`: exit 2, one line naming the side, and
the password nowhere, even when libpq cannot parse the DSN and quotes pieces of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.hostile.conftest import Job, Pool, Project, Result, refused, run_table
from tests.pgserver import free_port

PASSWORD = "Hunter2-S3cret"
PORT = free_port()

# (id, DSN, fragment of the message, secrets that must not appear)
DSNS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("uri-bad-percent-escape", f"postgresql://u:{PASSWORD}%zz@127.0.0.1:{PORT}/db", "DSN is malformed", (PASSWORD,)),
    ("uri-unclosed-ipv6", f"postgresql://u:{PASSWORD}@[::1/db", "DSN is malformed", (PASSWORD,)),
    ("uri-unescaped-at", f"postgresql://u:{PASSWORD}@x@127.0.0.1:{PORT}/db", "more than one '@'", (PASSWORD,)),
    ("uri-bad-parameter", f"postgresql://u:{PASSWORD}@127.0.0.1:{PORT}/db?sslmod=require", "DSN is malformed", (PASSWORD,)),
    ("uri-refused", f"postgresql://u:{PASSWORD}@127.0.0.1:{PORT}/db", "cannot connect", (PASSWORD,)),
    ("uri-encoded-refused", f"postgresql://u:{PASSWORD}%40x@127.0.0.1:{PORT}/db", "cannot connect", (PASSWORD,)),
    ("kv-missing-equals", f"host=127.0.0.1 password {PASSWORD}", "DSN is malformed", (PASSWORD,)),
    ("kv-stray-token", f"host=127.0.0.1 {PASSWORD}", "DSN is malformed", (PASSWORD,)),
    ("kv-unterminated-quote", f"host=127.0.0.1 password='{PASSWORD}", "DSN is malformed", (PASSWORD,)),
    ("kv-unknown-option", f"host=127.0.0.1 passwrd={PASSWORD}", "DSN is malformed", (PASSWORD,)),
    ("kv-refused", f"host=127.0.0.1 port={PORT} user=u password={PASSWORD}", "cannot connect", (PASSWORD,)),
    ("kv-quoted-refused", f"host=127.0.0.1 port={PORT} password='{PASSWORD} with spaces'", "cannot connect",
     (PASSWORD, "with spaces")),
    ("kv-bad-port", f"host=127.0.0.1 port=abc password={PASSWORD}", "cannot connect", (PASSWORD,)),
    ("kv-ssl-password", f"host=127.0.0.1 port={PORT} sslpassword={PASSWORD} sslmode=bogus", "", (PASSWORD,)),
    ("kv-newline-in-password", f"host=127.0.0.1 port={PORT} password='{PASSWORD}\nnext'", "cannot connect", (PASSWORD,)),
    ("huge", f"host=127.0.0.1 password={PASSWORD} " + "application_name=x " * 5000 + "bogus", "DSN is malformed", (PASSWORD,)),
]


def _schema(dsn: str) -> Callable[[Project], Job]:
    return lambda p: Job("runbook", ["schema", "apply", "--dsn", dsn])


def _integrity(source: str, target: str) -> Callable[[Project], Job]:
    return lambda p: Job("runbook", ["integrity", "--source", source, "--target", target])


@pytest.mark.parametrize("name,dsn,fragment,secrets", DSNS, ids=[c[0] for c in DSNS])
def test_schema_apply_hides_the_password(name: str, dsn: str, fragment: str, secrets: tuple[str, ...],
                                         results: dict[str, Result]) -> None:
    refused(results[f"schema-{name}"], "--dsn", fragment, secrets=secrets)


@pytest.mark.parametrize("side", ["source", "target"])
@pytest.mark.parametrize("name,dsn,fragment,secrets", DSNS[:4], ids=[c[0] for c in DSNS[:4]])
def test_integrity_names_the_side_and_hides_the_password(side: str, name: str, dsn: str, fragment: str,
                                                         secrets: tuple[str, ...], results: dict[str, Result]) -> None:
    refused(results[f"integrity-{side}-{name}"], side, fragment, secrets=secrets)


@pytest.fixture(scope="module")
def results(pool: Pool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    fine = f"host=127.0.0.1 port={PORT} user=u password={PASSWORD}"
    cases = {f"schema-{name}": _schema(dsn) for name, dsn, _, _ in DSNS}
    for name, dsn, _, _ in DSNS[:4]:
        cases[f"integrity-source-{name}"] = _integrity(dsn, fine)
        cases[f"integrity-target-{name}"] = _integrity(fine, dsn)
    return run_table(pool, tmp_path_factory.mktemp("dsn"), cases)
