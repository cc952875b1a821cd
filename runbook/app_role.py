"""`schema app-role`: the application's least-privileged role, its password from its secret, ready for rotation.

Run as the master user after `schema apply`. One transaction creates the role the stack names (`dbAppUsername`),
LOGIN and nothing else, unless it exists; grants it exactly SELECT, INSERT, UPDATE, DELETE on the six tables, USAGE
on their schema and sequences and CONNECT on the database; takes TEMPORARY on the database and CREATE on the schema
away from PUBLIC, so a role without a grant of its own creates no table; and tries, in a savepoint it rolls back,
what AWS's alternating-users rotation function does on its first run as the master: `CREATE ROLE <role>_clone WITH
LOGIN` and `GRANT <role> TO <role>_clone` (PostgreSQL 16 lets the master grant the role only with the ADMIN option it
gets by creating it). When the result is not exactly that (an extra privilege or attribute, a clone holding more than
the role, a master that cannot grant the role) the transaction is rolled back: the role ends exactly right or nothing
changes. An existing role keeps its password (rotation owns it).

The password never reaches the server in clear: the role is created with a SCRAM verifier libpq computes here, so no
statement text or server log holds it. After the commit the command logs in as the user the secret names, as the
rotation function does before every rotation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from botocore.exceptions import ClientError
from psycopg import sql

from runbook.aws import Aws, error_text, is_auth_error
from runbook.db import CONNECT_TIMEOUT_SECONDS, connect, reason
from runbook.errors import EXIT_FAILED, EXIT_OK, BadInput
from runbook.outputs import Outputs
from runbook.report import Check, Status, summary, table
from runbook.schema import counts
from task_service import contract
from task_service.tables import SCHEMA, TABLES

CLONE_SUFFIX = "_clone"
"""What AWS's alternating-users rotation function appends to the user it clones."""
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
PASSWORD_ALGORITHM = b"scram-sha-256"
NEEDS = (
    contract.DB_APP_USERNAME,
    contract.DB_APP_SECRET_ARN,
    contract.DB_SECRET_ARN,
    contract.DB_USERNAME,
    contract.DB_ADDRESS,
    contract.DB_PORT,
    contract.DB_NAME,
)


@dataclass(frozen=True)
class AppSecret:
    """The current version of the application's secret: who logs in, and with what (never shown)."""

    username: str
    password: str = field(repr=False)


def _problems(value: Any, out: Outputs, role: str) -> list[str]:
    """What makes the secret unusable for the service or the rotation function; never quotes the password."""
    if not isinstance(value, dict):
        return [f"holds JSON {type(value).__name__}, not an object"]
    problems = [f"lacks '{key}'" for key in ("username", "password", "host", "port", "dbname", "engine", "masterarn") if key not in value]
    if "password" in value and not (isinstance(value["password"], str) and value["password"]):
        problems.append("'password' is not a non-empty string")
    expected: dict[str, Any] = {
        "host": out.string(contract.DB_ADDRESS),
        "port": str(out.integer(contract.DB_PORT)),
        "dbname": out.string(contract.DB_NAME),
        "engine": "postgres",
        "masterarn": out.string(contract.DB_SECRET_ARN),
    }
    for key, want in expected.items():
        if key in value and str(value[key]) != want:
            problems.append(f"'{key}' is {value[key]!r}, expected {want!r}")
    if "username" in value and value["username"] not in (role, role + CLONE_SUFFIX):
        problems.append(f"'username' is {value['username']!r}, expected {role!r} or {role + CLONE_SUFFIX!r}")
    return problems


def read_secret(out: Outputs, aws: Aws) -> AppSecret:
    """The secret's current version, checked against the outputs before anything touches the database."""
    arn, role = out.string(contract.DB_APP_SECRET_ARN), out.string(contract.DB_APP_USERNAME)
    try:
        text = aws.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString")
    except ClientError as err:
        if is_auth_error(err):
            raise BadInput(f"AWS rejected the credentials: {error_text(err)}") from None
        raise BadInput(f"the application's secret {arn} cannot be read: {error_text(err)}") from None
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if value is None:
        raise BadInput(f"the application's secret {arn} is not a JSON string; expected the keys the program writes.")
    problems = _problems(value, out, role)
    if problems:
        raise BadInput(f"the application's secret {arn} is not what the service and its rotation expect: {'; '.join(problems)}.")
    return AppSecret(value["username"], value["password"])


@dataclass(frozen=True)
class Names:
    """The roles and objects this command deals with, as found in the database before any change."""

    role: str
    master: str
    database: str
    sequences: tuple[tuple[str, str], ...]

    @property
    def clone(self) -> str:
        return self.role + CLONE_SUFFIX

    def expected_privileges(self) -> set[tuple[str, str, str]]:
        """(kind, object, privilege) the role holds directly, and nothing else."""
        granted = {("table", f"{SCHEMA}.{t}", p) for t in TABLES for p in DML}
        granted |= {("sequence", f"{s}.{n}", "USAGE") for s, n in self.sequences}
        return granted | {("schema", SCHEMA, "USAGE"), ("database", self.database, "CONNECT")}


SEQUENCES = """
SELECT DISTINCT sn.nspname, s.relname FROM pg_class s
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass
   AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE s.relkind = 'S' AND tn.nspname = %(schema)s AND t.relname = ANY(%(tables)s)
 ORDER BY 1, 2
"""
"""The sequences behind the six tables' serial columns: the service's INSERTs call nextval on them."""


def _names(conn: psycopg.Connection, out: Outputs, secret: AppSecret) -> Names:
    """Check who we are and what exists before any change; BadInput if the step cannot run here."""
    master, role = out.string(contract.DB_USERNAME), out.string(contract.DB_APP_USERNAME)
    row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row is not None
    if row[0] != master:
        raise BadInput(
            f"--dsn connects as {row[0]}; connect as the master user {master}: AWS's rotation function creates "
            f"{role + CLONE_SUFFIX} as that user, which PostgreSQL 16 allows only for roles it created."
        )
    found = counts(conn)["tables"]
    if found != len(TABLES):
        raise BadInput(f"{found} of the {len(TABLES)} tables exist in schema {SCHEMA}: run `schema apply` first.")
    existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([role, role + CLONE_SUFFIX],))}
    if secret.username not in existing and secret.username != role:
        raise BadInput(f"the secret names {secret.username}, which does not exist; only {role} is created here.")
    if role not in existing and secret.username != role:
        raise BadInput(f"role {role} does not exist but the secret names {secret.username}: it was rotated before the role was dropped.")
    sequences = tuple((s, n) for s, n in conn.execute(SEQUENCES, {"schema": SCHEMA, "tables": list(TABLES)}))
    return Names(role, master, row[1], sequences)


PRIVILEGES = """
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname || '.' || c.relname, a.privilege_type
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || t.attname, a.privilege_type
  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
       aclexplode(t.attacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'schema', nspname, a.privilege_type FROM pg_namespace, aclexplode(nspacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'database', datname, a.privilege_type FROM pg_database, aclexplode(datacl) a, r
 WHERE a.grantee = r.oid AND datname = current_database()
UNION ALL
SELECT 'function', p.oid::regprocedure::text, a.privilege_type FROM pg_proc p, aclexplode(p.proacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'type', t.oid::regtype::text, a.privilege_type FROM pg_type t, aclexplode(t.typacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'language', lanname, a.privilege_type FROM pg_language, aclexplode(lanacl) a, r WHERE a.grantee = r.oid
UNION ALL
SELECT 'large object', m.oid::text, a.privilege_type FROM pg_largeobject_metadata m, aclexplode(m.lomacl) a, r
 WHERE a.grantee = r.oid
UNION ALL
SELECT 'default privileges', d.defaclobjtype::text, a.privilege_type FROM pg_default_acl d, aclexplode(d.defaclacl) a, r
 WHERE a.grantee = r.oid
"""
"""What `role` was granted directly in this database, on every kind of object that has an access list."""

ROLE = """
SELECT r.rolcanlogin, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1),
       (SELECT count(*) FROM pg_shdepend d WHERE d.refobjid = r.oid AND d.deptype = 'o'
           AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))),
       has_schema_privilege(r.oid, %(schema)s, 'CREATE'), has_database_privilege(r.oid, current_database(), 'CREATE, TEMPORARY')
  FROM pg_roles r WHERE r.rolname = %(role)s
"""
"""Login, any power beyond it, the roles it is a member of, what it owns, and whether it can create (PUBLIC included)."""

STATE = """
SELECT (SELECT array_agg(row(rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls)::text
                         ORDER BY rolname) FROM pg_roles WHERE rolname = ANY(%(roles)s)),
       (SELECT array_agg(row(c.relname, c.relacl)::text ORDER BY c.relname) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relname = ANY(%(objects)s)),
       (SELECT nspacl::text FROM pg_namespace WHERE nspname = %(schema)s),
       (SELECT datacl::text FROM pg_database WHERE datname = current_database())
"""
STATE_PARTS = ("the role", "privileges on the tables and sequences", "privileges on the schema", "privileges on the database")


def _state(conn: psycopg.Connection, names: Names) -> tuple[Any, ...]:
    """What this command may change, to say afterwards whether it did."""
    objects = list(TABLES) + [n for s, n in names.sequences if s == SCHEMA]
    row = conn.execute(STATE, {"roles": [names.role, names.clone], "schema": SCHEMA, "objects": objects}).fetchone()
    assert row is not None
    return tuple(row)


def _set_up(conn: psycopg.Connection, names: Names, secret: AppSecret) -> bool:
    """Create the role if missing (True when created), grant exactly what the service needs, close PUBLIC's doors."""
    role, schema, database = sql.Identifier(names.role), sql.Identifier(SCHEMA), sql.Identifier(names.database)
    created = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (names.role,)).fetchone() is None
    if created:
        verifier = conn.pgconn.encrypt_password(secret.password.encode(), names.role.encode(), PASSWORD_ALGORITHM)
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(verifier.decode())))
    tables = sql.SQL(", ").join(sql.Identifier(SCHEMA, t) for t in TABLES)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
        sql.SQL("GRANT {} ON TABLE {} TO {}").format(sql.SQL(", ").join(map(sql.SQL, DML)), tables, role),
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema),
    ]
    if names.sequences:
        sequences = sql.SQL(", ").join(sql.Identifier(s, n) for s, n in names.sequences)
        statements.append(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequences, role))
    for statement in statements:
        conn.execute(statement)
    return created


def _privileges(conn: psycopg.Connection, role: str) -> set[tuple[str, str, str]]:
    return {(kind, name, privilege) for kind, name, privilege in conn.execute(PRIVILEGES, {"role": role})}


def _listed(items: set[tuple[str, str, str]]) -> str:
    return ", ".join(f"{privilege} on {kind} {name}" for kind, name, privilege in sorted(items))


def _audit(conn: psycopg.Connection, names: Names, created: bool) -> list[Check]:
    """The role as it stands inside the transaction: exactly the grants, no power, nothing owned, no way to create."""
    row = conn.execute(ROLE, {"role": names.role, "schema": SCHEMA}).fetchone()
    assert row is not None
    login, power, member_of, owned, can_create_schema, can_create_database = row
    how = "created, password from the secret" if created else "exists, its password left to rotation"
    flaws = ([] if login else ["no LOGIN"]) + (["SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS"] if power else [])
    flaws += [f"member of {', '.join(member_of)}"] if member_of else []
    identity = Check.verdict("app role", not flaws, f"{names.role} {how}; " + ("; ".join(flaws) or "LOGIN, no other attribute, member of no role"))
    held, wanted = _privileges(conn, names.role), names.expected_privileges()
    grants = Check.verdict(
        "privileges",
        held == wanted,
        f"{', '.join(DML)} on the {len(TABLES)} tables; USAGE on schema {SCHEMA} and {len(names.sequences)} sequences; "
        f"CONNECT on {names.database}"
        + (f"; also holds {_listed(held - wanted)}" if held - wanted else "")
        + (f"; lacks {_listed(wanted - held)}" if wanted - held else ""),
    )
    creates = [f"CREATE on schema {SCHEMA}"] if can_create_schema else []
    creates += [f"CREATE or TEMPORARY on database {names.database}"] if can_create_database else []
    creates += [f"owns {owned} objects"] if owned else []
    cannot_create = Check.verdict(
        "cannot create",
        not creates,
        "; ".join(creates) if creates else f"no CREATE on schema {SCHEMA} or database {names.database}, no TEMPORARY, owns nothing",
    )
    return [identity, grants, cannot_create, _rotation_ready(conn, names)]


def _rotation_ready(conn: psycopg.Connection, names: Names) -> Check:
    """The clone as AWS's function makes it: tried in a savepoint when absent, inspected when present."""
    check, clone, role = "rotation clone", names.clone, names.role
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,)).fetchone() is None:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(sql.Identifier(clone)))
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(clone)))
                raise psycopg.Rollback()
        except psycopg.Error as err:
            return Check.verdict(check, False, f"{names.master} cannot create {clone} and grant it {role} as the rotation function will: {reason(err)}")
        return Check.verdict(check, True, f"{names.master} can create {clone} and grant it {role} (tried, rolled back)")
    row = conn.execute(ROLE, {"role": clone, "schema": SCHEMA}).fetchone()
    assert row is not None
    login, power, member_of, owned, _, _ = row
    own = _privileges(conn, clone)
    passed = login and not power and list(member_of) == [role] and not owned and not own
    detail = f"{clone} exists, LOGIN, member of {', '.join(member_of) or 'nothing'}" + (f"; also holds {_listed(own)}" if own else "")
    if not passed:
        detail += f"; expected a member of {role} only, with no power or grant of its own"
    return Check.verdict(check, passed, detail)


def _login(dsn: str, secret: AppSecret) -> Check:
    """Log in as the secret says and read each table: what the service does, and the rotation function first."""
    try:
        with psycopg.connect(
            dsn, user=secret.username, password=secret.password, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="task-service-runbook"
        ) as conn:
            for name in TABLES:
                conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(sql.Identifier(SCHEMA, name)))
    except psycopg.Error as err:
        return Check.verdict("secret logs in", False, f"{secret.username} with the secret's password: {reason(err)}")
    return Check.verdict("secret logs in", True, f"{secret.username} with the secret's password, and reads the {len(TABLES)} tables")


def run(out: Outputs, aws: Aws, dsn: str, emit: Callable[[str], Any] = print) -> int:
    """Read and check the secret, set the role up in one transaction, then log in as the secret says."""
    out.require(*NEEDS)
    secret = read_secret(out, aws)
    with connect(dsn, "--dsn") as conn:
        conn.autocommit = True
        try:
            names = _names(conn, out, secret)
            before = _state(conn, names)
            with conn.transaction():
                checks = _audit(conn, names, _set_up(conn, names, secret))
                after = _state(conn, names)
                if any(c.status is Status.FAIL for c in checks):
                    raise psycopg.Rollback()
        except psycopg.Error as err:
            emit(f"schema app-role failed and was rolled back, nothing changed: {reason(err)}")
            return EXIT_FAILED
    failed = any(c.status is Status.FAIL for c in checks)
    if not failed:
        checks.append(_login(dsn, secret))
    emit(table(checks))
    emit(summary(checks))
    if failed:
        emit("rolled back: nothing changed")
    else:
        changed = [part for part, old, new in zip(STATE_PARTS, before, after) if old != new]
        emit(f"changed: {', '.join(changed)}" if changed else "nothing changed: the role was already set up")
    return EXIT_FAILED if any(c.status is Status.FAIL for c in checks) else EXIT_OK
