"""`schema app-role` on the real PostgreSQL, its secret in moto: what the role can and cannot do, idempotence,
the rotation clone, and secrets that must change nothing.

The test server trusts every TCP login, so these tests log in over its Unix socket, where a module fixture makes
every role but `postgres` give its password: the master reads it from PGPASSWORD as an operator does, and a wrong
password is refused, so "logs in with the secret's password" means what it says. The master is, as on RDS, a
non-superuser with CREATEROLE that owns the database and the tables `schema apply` created.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from runbook import schema
from runbook.cli import main
from task_service import contract
from task_service.tables import TABLES
from tests.runbook import moto_stack
from tests.runbook.report_rows import check_rows

SEVENTH = "not_for_the_app"


@dataclass(frozen=True)
class TaskDb:
    """A Task Service database on the test server, owned by the stack's master user, schema applied."""

    superuser: str
    socket: str
    port: str
    name: str
    master: str
    role: str

    @property
    def dsn(self) -> str:
        """The master's DSN as an operator writes it: no password (PGPASSWORD holds it)."""
        return self.as_user(self.master)

    def as_user(self, user: str) -> str:
        return f"host={self.socket} port={self.port} dbname={self.name} user={user}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(f"{self.superuser} dbname={self.name}", autocommit=True)

    def login(self, user: str, password: str) -> psycopg.Connection:
        return psycopg.connect(self.as_user(user), password=password, autocommit=True)


def _wait_for_password_prompt(socket: str, port: str) -> None:
    """pg_reload_conf only signals the server: wait until the socket asks a stranger for a password."""
    for _ in range(50):
        try:
            psycopg.connect(f"host={socket} port={port} dbname=postgres user=nobody_{uuid.uuid4().hex[:6]}", password="").close()
        except psycopg.OperationalError as err:
            if "password" in str(err):
                return
        time.sleep(0.1)
    pytest.fail("the test server did not start asking for passwords on its socket")


@pytest.fixture(scope="module")
def password_socket(pg_server: str) -> Iterator[tuple[str, str]]:
    """(socket directory, port) where every role but postgres logs in with its password (SCRAM)."""
    with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        socket = str(conn.execute("SHOW unix_socket_directories").fetchone()[0]).split(",")[0]  # type: ignore[index]
        port = str(conn.execute("SHOW port").fetchone()[0])  # type: ignore[index]
        original = hba.read_text()
        hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    _wait_for_password_prompt(socket, port)
    yield socket, port
    hba.write_text(original)
    with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture
def task_db(pg_server: str, password_socket: tuple[str, str], stack: moto_stack.Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[TaskDb]:
    master, role = stack.value(contract.DB_USERNAME), stack.value(contract.DB_APP_USERNAME)
    db = TaskDb(pg_server, *password_socket, f"task_service_{uuid.uuid4().hex[:8]}", master, role)
    with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(sql.Identifier(master), sql.Literal(moto_stack.MASTER_PASSWORD)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db.name), sql.Identifier(master)))
    monkeypatch.setenv("PGPASSWORD", moto_stack.MASTER_PASSWORD)
    try:
        assert schema.apply(db.dsn, emit=lambda _: None) == 0
        yield db
    finally:
        with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))
            for name in (role + "_clone", role, master):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _app_role(outputs_file: Any, outputs: dict[str, Any], dsn: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["schema", "app-role", "--outputs", outputs_file(outputs), "--dsn", dsn])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _exercise_dml(conn: psycopg.Connection) -> None:
    """Write and read every one of the six tables, ids from their sequences."""
    task = conn.execute("INSERT INTO tasks (user_id, title) VALUES (7, 'a') RETURNING id").fetchone()[0]  # type: ignore[index]
    scheduled = conn.execute(
        "INSERT INTO scheduled_group_tasks (group_id, created_by, title, start_date) VALUES (1, 7, 's', '2025-01-01') RETURNING id"
    ).fetchone()[0]  # type: ignore[index]
    conn.execute("INSERT INTO task_images (task_id, file_path) VALUES (%s, 'x.png')", (task,))
    conn.execute("INSERT INTO task_tag (task_id, tag_id) VALUES (%s, 3)", (task,))
    conn.execute("INSERT INTO scheduled_task_executions (scheduled_task_id, executed_at, status) VALUES (%s, now(), 'ok')", (scheduled,))
    conn.execute("INSERT INTO scheduled_task_tags (scheduled_task_id, tag_name) VALUES (%s, 't')", (scheduled,))
    for table in TABLES:
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    conn.execute("UPDATE tasks SET title = 'b' WHERE id = %s", (task,))
    for table in ("task_tag", "task_images", "scheduled_task_tags", "scheduled_task_executions"):
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    conn.execute("DELETE FROM tasks")
    conn.execute("DELETE FROM scheduled_group_tasks")


FORBIDDEN = (
    "CREATE TABLE public.mine (id int)",
    "CREATE TEMP TABLE mine (id int)",
    "CREATE SCHEMA mine",
    "DROP TABLE tasks",
    "TRUNCATE tasks",
    "ALTER TABLE tasks ADD COLUMN extra int",
    "CREATE INDEX mine ON tasks (title)",
    f"SELECT * FROM public.{SEVENTH}",
)


def _assert_least_privileged(conn: psycopg.Connection) -> None:
    _exercise_dml(conn)
    for statement in FORBIDDEN:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_creates_a_role_that_reads_and_writes_the_six_tables_and_nothing_else(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with task_db.login(task_db.master, moto_stack.MASTER_PASSWORD) as master:
        master.execute(f"CREATE TABLE public.{SEVENTH} (id int)")
    code, out, err = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert (code, err) == (0, "")
    rows = check_rows(out)
    assert {name: status for name, (status, _) in rows.items()} == {
        "app role": "PASS", "privileges": "PASS", "cannot create": "PASS", "rotation clone": "PASS", "secret logs in": "PASS",
    }
    assert rows["privileges"][1] == (
        f"SELECT, INSERT, UPDATE, DELETE on the 6 tables; USAGE on schema public and 5 sequences; CONNECT on {task_db.name}"
    )
    assert "changed: the role, privileges on the tables and sequences, privileges on the schema, privileges on the database" in out
    with task_db.login(task_db.role, moto_stack.APP_PASSWORD) as app:
        _assert_least_privileged(app)


def _server_log(db: TaskDb) -> Path:
    """The test server's log file (conftest's pg_server writes it beside the data directory)."""
    with db.admin() as conn:
        return Path(str(conn.execute("SHOW data_directory").fetchone()[0])).parent / "log"  # type: ignore[index]


def test_the_password_is_never_printed_sent_or_logged(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every statement of the master is logged here: the role is created from a SCRAM verifier, never the password."""
    with task_db.admin() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(sql.Identifier(task_db.master)))
    log = _server_log(task_db)
    start = log.stat().st_size
    code, out, err = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert code == 0
    logged = log.read_bytes()[start:].decode(errors="replace")
    assert "CREATE ROLE" in logged and "SCRAM-SHA-256$4096:" in logged
    assert moto_stack.APP_PASSWORD not in logged + out + err
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        task_db.login(task_db.role, moto_stack.APP_PASSWORD + "x")


def _catalog(db: TaskDb) -> tuple[Any, ...]:
    """Everything the command could change, as the server stores it (the password's verifier included)."""
    with db.admin() as conn:
        roles = conn.execute(
            "SELECT rolname, rolpassword, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_authid WHERE rolname LIKE %s ORDER BY 1",
            (db.role + "%",),
        ).fetchall()
        members = conn.execute(
            "SELECT roleid::regrole::text, member::regrole::text, admin_option FROM pg_auth_members ORDER BY 1, 2"
        ).fetchall()
        acls = conn.execute("SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1").fetchall()
        other = conn.execute(
            "SELECT (SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'), "
            "(SELECT datacl::text FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return roles, members, acls, other


def test_running_again_changes_nothing(task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)[0] == 0
    before = _catalog(task_db)
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert code == 0
    assert "nothing changed: the role was already set up" in out
    assert check_rows(out)["app role"] == ("PASS", f"{task_db.role} exists, its password left to rotation; LOGIN, no other attribute, member of no role")
    assert _catalog(task_db) == before


def _rotate_like_aws(db: TaskDb, stack: moto_stack.Stack, password: str) -> str:
    """What SecretsManagerRDSPostgreSQLRotationMultiUser's first rotation does: as the master, create `<role>_clone`
    with the new password and grant it the role (setSecret), then make that the secret's current version (finishSecret)."""
    clone = db.role + "_clone"
    with db.login(db.master, moto_stack.MASTER_PASSWORD) as master:
        master.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(clone), sql.Literal(password)))
        master.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(db.role), sql.Identifier(clone)))
    secrets = stack.client("secretsmanager")
    current = json.loads(secrets.get_secret_value(SecretId=stack.value(contract.DB_APP_SECRET_ARN))["SecretString"])
    secrets.put_secret_value(SecretId=stack.value(contract.DB_APP_SECRET_ARN), SecretString=json.dumps({**current, "username": clone, "password": password}))
    return clone


def test_the_rotation_clone_gets_exactly_the_roles_grants(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with task_db.login(task_db.master, moto_stack.MASTER_PASSWORD) as master:
        master.execute(f"CREATE TABLE public.{SEVENTH} (id int)")
    assert _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)[0] == 0
    clone = _rotate_like_aws(task_db, stack, "clone-Pa55word-4e2a")
    with task_db.login(clone, "clone-Pa55word-4e2a") as conn:
        _assert_least_privileged(conn)
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    rows = check_rows(out)
    assert code == 0
    assert rows["rotation clone"] == ("PASS", f"{clone} exists, LOGIN, member of {task_db.role}")
    assert rows["secret logs in"] == ("PASS", f"{clone} with the secret's password, and reads the 6 tables")
    assert "nothing changed" in out


def _tables_untouched(db: TaskDb) -> bool:
    with db.admin() as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = %s UNION ALL "
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relacl IS NOT NULL",
            (db.role,),
        ).fetchall()
    return [row[0] for row in found] == [0, 0]


def _secret_changes(stack: moto_stack.Stack) -> dict[str, Any]:
    current = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=stack.value(contract.DB_APP_SECRET_ARN))["SecretString"])
    other_master = stack.value(contract.DB_SECRET_ARN).replace("db-password", "db-other")
    return {
        "not JSON": "username=task_service_app",
        "no password": json.dumps({k: v for k, v in current.items() if k != "password"}),
        "empty password": json.dumps({**current, "password": ""}),
        "another user": json.dumps({**current, "username": "someone_else"}),
        "another master": json.dumps({**current, "masterarn": other_master}),
        "another database": json.dumps({**current, "dbname": "postgres"}),
        "a JSON list": json.dumps([current]),
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not JSON", "is not a JSON string"),
        ("no password", "lacks 'password'"),
        ("empty password", "'password' is not a non-empty string"),
        ("another user", "'username' is 'someone_else', expected 'task_service_app' or 'task_service_app_clone'"),
        ("another master", "'masterarn' is"),
        ("another database", "'dbname' is 'postgres', expected 'task_service'"),
        ("a JSON list", "holds JSON list, not an object"),
    ],
)
def test_a_wrong_secret_is_bad_input_and_creates_nothing(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    stack.client("secretsmanager").put_secret_value(SecretId=stack.value(contract.DB_APP_SECRET_ARN), SecretString=_secret_changes(stack)[case])
    code, out, err = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert moto_stack.APP_PASSWORD not in err
    assert _tables_untouched(task_db)


def test_an_unreadable_secret_is_bad_input_and_creates_nothing(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = stack.value(contract.DB_APP_SECRET_ARN)
    stack.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    code, out, err = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: the application's secret {arn} cannot be read: ResourceNotFoundException")
    assert len(err.strip().splitlines()) == 1
    assert _tables_untouched(task_db)


def test_outputs_without_the_app_secret_are_bad_input(task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = moto_stack.without(stack.outputs, contract.DB_APP_SECRET_ARN)
    code, _, err = _app_role(outputs_file, outputs, task_db.dsn, capsys)
    assert code == 2 and f"stack output '{contract.DB_APP_SECRET_ARN.name}'" in err
    assert _tables_untouched(task_db)


def test_another_user_than_the_master_is_bad_input(task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _app_role(outputs_file, stack.outputs, task_db.as_user("postgres"), capsys)
    assert code == 2
    assert f"--dsn connects as postgres; connect as the master user {task_db.master}" in err
    assert _tables_untouched(task_db)


def test_before_schema_apply_is_bad_input(task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with task_db.login(task_db.master, moto_stack.MASTER_PASSWORD) as master:
        master.execute("DROP TABLE scheduled_task_tags")
    code, _, err = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    assert code == 2 and "5 of the 6 tables exist in schema public: run `schema apply` first." in err
    assert _tables_untouched(task_db)


def _precreate(db: TaskDb, password: str, *grants: str) -> None:
    """The role made by someone else before the step ran, with `grants` on top."""
    with db.login(db.master, moto_stack.MASTER_PASSWORD) as master:
        master.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(db.role), sql.Literal(password)))
        for grant in grants:
            master.execute(sql.SQL(grant).format(sql.Identifier(db.role)))


def test_extra_privileges_roll_everything_back(task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _precreate(task_db, moto_stack.APP_PASSWORD, "GRANT TRUNCATE ON tasks TO {}", "GRANT CREATE ON SCHEMA public TO {}")
    before = _catalog(task_db)
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    rows = check_rows(out)
    assert code == 1
    assert rows["privileges"][0] == "FAIL" and rows["privileges"][1].endswith("; also holds CREATE on schema public, TRUNCATE on table public.tasks")
    assert rows["cannot create"][0] == "FAIL"
    assert "secret logs in" not in rows
    assert out.rstrip().endswith("rolled back: nothing changed")
    assert _catalog(task_db) == before


def test_a_master_that_cannot_create_the_clone_rolls_everything_back(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _precreate(task_db, moto_stack.APP_PASSWORD)
    with task_db.admin() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOCREATEROLE").format(sql.Identifier(task_db.master)))
    before = _catalog(task_db)
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    status, detail = check_rows(out)["rotation clone"]
    assert code == 1 and status == "FAIL"
    assert detail.startswith(f"{task_db.master} cannot create {task_db.role}_clone and grant it {task_db.role} as the rotation function will: ")
    assert "permission denied to create role" in detail
    assert _catalog(task_db) == before


def test_an_existing_role_whose_password_is_not_the_secrets_fails_the_login(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _precreate(task_db, "some-other-password")
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    status, detail = check_rows(out)["secret logs in"]
    assert code == 1 and status == "FAIL"
    assert detail.startswith(f"{task_db.role} with the secret's password: ") and "password authentication failed" in detail
    assert moto_stack.APP_PASSWORD not in out


def test_a_role_the_master_did_not_create_cannot_be_rotated_from_postgresql_16(
    task_db: TaskDb, stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL 16 lets a CREATEROLE user grant only roles it holds ADMIN on (it gets that by creating them); 15 let
    it grant any role. Debian's 15 runs in `make test`; TEST_POSTGRES_BINDIR points the suite at a 16."""
    with task_db.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(task_db.role), sql.Literal(moto_stack.APP_PASSWORD)))
        version = int(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
    before = _catalog(task_db)
    code, out, _ = _app_role(outputs_file, stack.outputs, task_db.dsn, capsys)
    status, detail = check_rows(out)["rotation clone"]
    if version < 160000:
        assert (code, status) == (0, "PASS")
        return
    assert (code, status) == (1, "FAIL")
    assert f'permission denied to grant role "{task_db.role}"' in detail and "ADMIN option" in detail
    assert _catalog(task_db) == before
