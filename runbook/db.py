"""PostgreSQL connections for `schema apply` and `integrity`: failures become one clear message without secrets.

A DSN carries a password. libpq quotes pieces of a DSN it cannot parse (a bad percent-escape quotes the password,
an unclosed IPv6 bracket quotes the whole URI), so no DSN text and no quoted fragment of it reaches a message:
only host, port, database and user, and libpq's reason with quoted fragments other than option names removed.
"""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbook.errors import BadInput
from task_service.untrusted import clip, redact

CONNECT_TIMEOUT_SECONDS = 10
SECRET_OPTIONS = ("password", "sslpassword", "oauth_client_secret")
_KEYWORDS = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
_QUOTED = re.compile(r'"([^"]*)"')
_URI_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^:@]*):(?P<password>.*)@", re.DOTALL)
_KEY_VALUE_SECRET = re.compile(
    rf"(?:{'|'.join(SECRET_OPTIONS)})\s*=\s*(?:'(?P<quoted>(?:[^'\\]|\\.)*)'?|(?P<bare>\S+))", re.IGNORECASE
)


def dsn_secrets(dsn: str) -> list[str]:
    """Every spelling of the DSN's secrets that a message could contain, found even when libpq cannot parse it."""
    found: list[str] = []
    uri = _URI_USERINFO.match(dsn)
    if uri:
        found.append(uri.group("password"))
    for match in _KEY_VALUE_SECRET.finditer(dsn):
        found.append(match.group("quoted") if match.group("quoted") is not None else match.group("bare"))
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        params = {}
    found += [str(params[key]) for key in SECRET_OPTIONS if params.get(key)]
    return [secret for secret in found if secret]


def safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    shown = {key: clip(str(params[key]), 80) for key in ("host", "port", "dbname", "user") if params.get(key)}
    return make_conninfo(**shown) or "<default libpq settings>"


def reason(err: psycopg.Error) -> str:
    """A PostgreSQL error on one bounded line (libpq's messages span several)."""
    return clip(str(err)) or type(err).__name__


def _parse_reason(err: Exception, dsn: str) -> str:
    """libpq's parse error on one line, with quoted DSN fragments (other than option names) and secrets removed."""
    text = _QUOTED.sub(lambda m: m.group(0) if m.group(1) in _KEYWORDS or len(m.group(1)) <= 1 else '"…"', str(err))
    return clip(redact(text, dsn_secrets(dsn))) or type(err).__name__


def reason_without(err: psycopg.Error, dsn: str) -> str:
    """`reason(err)` with the DSN's secrets removed (libpq does not echo passwords; this makes sure)."""
    return clip(redact(str(err), dsn_secrets(dsn))) or type(err).__name__


def check_dsn(dsn: str, role: str) -> None:
    """BadInput naming `role` when libpq cannot parse the DSN (without a word of it), before anything connects."""
    authority = dsn.split("://", 1)[1].split("/", 1)[0] if _URI_USERINFO.match(dsn) else ""
    if authority.count("@") > 1:
        raise BadInput(f"{role} DSN has more than one '@' before the host; percent-encode '@' in the password as %40.")
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as err:
        raise BadInput(f"{role} DSN is malformed ({_parse_reason(err, dsn)}); expected e.g. 'host=H port=5432 dbname=D user=U'.") from None


def connect(dsn: str, role: str, *, read_only: bool = False) -> psycopg.Connection:
    """Open a connection or raise BadInput naming `role` (source/target/--dsn) and the cause."""
    check_dsn(dsn, role)
    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="task-service-runbook")
    except psycopg.Error as err:
        raise BadInput(f"cannot connect to the {role} database ({safe_dsn(dsn)}): {reason_without(err, dsn)}") from None
    if read_only:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    return conn
