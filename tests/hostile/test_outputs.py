"""Hostile outputs files through `python -m runbook`: an outputs file is input, not trusted code.

Malformed files and values exit 2 with one bounded line naming the file or output; values that do get rendered
cannot break out of the shell commands and SQL they are put into (the rendered commands are run through bash with
an empty PATH: an injection would create a marker file)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from task_service import contract
from tests.hostile.conftest import REPO, Job, Pool, Project, Result, refused, run_table

BASH = shutil.which("bash") or "/bin/bash"
FIXTURE = json.loads((REPO / "tests/runbook/fixtures/outputs-prod.json").read_text())
FILE = "outputs.json"


def _values(**changes: Any) -> str:
    return json.dumps({**FIXTURE, **changes})


FILES: list[tuple[str, str | bytes, tuple[str, ...]]] = [
    ("not-json", '{"stack": ', ("is not valid JSON", FILE)),
    ("duplicate-output", '{"stack": "prod", "stack": "dev"}', ("duplicate key 'stack'", FILE)),
    ("nan", _values(canaryWeight=0).replace('"canaryWeight": 0', '"canaryWeight": NaN'), ("NaN is not a JSON number",)),
    ("infinity", _values(canaryWeight=0).replace('"canaryWeight": 0', '"canaryWeight": 1e400'), ("too large a number",)),
    ("huge-integer", _values(canaryWeight=0).replace('"canaryWeight": 0', '"canaryWeight": ' + "9" * 5000), ("is not valid JSON",)),
    ("deep", "[" * 100_000 + "]" * 100_000, ("nests too deeply",)),
    ("not-utf8", b'{"stack": "pr\xffd"}', ("is not UTF-8 text",)),
    ("too-large", '{"stack": "' + "p" * (1024 * 1024) + '"}', ("is larger than",)),
    ("a-list", "[]", ("should hold a JSON object of stack outputs",)),
    ("null", "null", ("should hold a JSON object",)),
    ("weight-true", _values(canaryWeight=True), ("'canaryWeight'", "should be an integer, got bool True")),
    ("weight-text", _values(canaryWeight="50"), ("'canaryWeight'", "should be an integer")),
    ("priority-huge-text", _values(listenerRulePriority="1" * 100_000), ("'listenerRulePriority'", "...")),
    ("alarms-a-string", _values(alarmNames="task-service-cpu"), ("'alarmNames'", "should be a list of strings")),
    ("unknown-list-a-string", _values(_unknownUntilDeploy="dbAddress"), ("'_unknownUntilDeploy'", "should be a list")),
    ("stack-shell", _values(stack="prod;rm -rf ~"), ("'stack'", "is not valid")),
    ("region-shell", _values(region="ap-northeast-1 && id"), ("'region'", "is not valid")),
    ("secret-placeholder", _values(dbSecretArn="[secret]"), ("'dbSecretArn'", "a secret printed without --show-secrets")),
    ("renamed-with-a-huge-name", json.dumps({**{k: v for k, v in FIXTURE.items() if k != "listenerRuleArn"},
                                             "r" * 50_000: "x"}), ("renamed?",)),
]


@pytest.mark.parametrize("name,text,fragments", FILES, ids=[c[0] for c in FILES])
def test_a_bad_outputs_file_is_refused(name: str, text: str | bytes, fragments: tuple[str, ...],
                                       results: dict[str, Result]) -> None:
    refused(results[f"file-{name}"], *fragments)


ARGUMENTS = [
    ("stack-path", ["--stack", "../prod"], ("--stack '../prod' is not a stack name",)),
    ("stack-shell", ["--stack", "prod$(id)"], ("is not a stack name",)),
    ("region-shell", ["--region", "us-east-1;id"], ("--region 'us-east-1;id' is not an AWS region",)),
    ("region-unicode", ["--region", "ap-northeast-١"], ("is not an AWS region",)),
]


@pytest.mark.parametrize("name,extra,fragments", ARGUMENTS, ids=[c[0] for c in ARGUMENTS])
def test_a_bad_argument_is_refused(name: str, extra: list[str], fragments: tuple[str, ...], results: dict[str, Result]) -> None:
    refused(results[f"argument-{name}"], *fragments)


def _payload(marker: Path) -> str:
    """Breaks out of double quotes, single quotes or a bare word, whichever a careless template used."""
    return f"x'\"$(/usr/bin/touch {marker})\"`/usr/bin/touch {marker}`;/usr/bin/touch {marker};'"


INJECTED = [contract.DB_ADDRESS, contract.DB_NAME, contract.DB_USERNAME, contract.DB_SECRET_ARN, contract.LISTENER_RULE_ARN,
            contract.TARGET_GROUP_ARN, contract.MONOLITH_DB_HOST, contract.MONOLITH_DB_NAME, contract.MONOLITH_DB_APP_USER]


@pytest.mark.parametrize("output", INJECTED, ids=[o.name for o in INJECTED])
def test_rendered_commands_and_sql_keep_a_hostile_value_a_value(output: contract.Output, results: dict[str, Result],
                                                              markers: dict[str, Path], tmp_path: Path) -> None:
    result = results[f"render-{output.name}"]
    assert result.code == 0 and not result.err, result.err
    commands = [line for block in re.findall(r"```sh\n(.*?)```", result.out, re.S) for line in block.splitlines()]
    commands += re.findall(r"`(export PGPASSWORD=.*?)`$", result.out, re.M)
    marker = markers[output.name]
    for command in commands:
        # `set --` makes bash expand the line exactly as it would run it, and run nothing but what an injection adds.
        subprocess.run([BASH, "-c", f"set -- {command}"], env={"PATH": str(tmp_path)}, cwd=tmp_path,
                       capture_output=True, timeout=10, check=False)
    assert commands and not marker.exists(), f"a rendered command ran the payload in {output.name}"
    for statement in re.findall(r"^(?:REVOKE|GRANT) .*$", result.out, re.M):
        assert re.fullmatch(r'(REVOKE INSERT, UPDATE, DELETE ON "public"\."\w+" FROM|GRANT SELECT ON ("public"\."\w+"(, )?)+ TO)'
                            r' "(?:[^"]|"")*";', statement), statement


def _runbook(argv: Callable[[Path], list[str]], write: Callable[[Path], None]) -> Callable[[Project], Job]:
    def make(project: Project) -> Job:
        write(project.root / FILE)
        return Job("runbook", argv(project.root / FILE), env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})

    return make


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per injected output, the file its payload would create."""
    base = tmp_path_factory.mktemp("markers")
    return {output.name: base / output.name for output in INJECTED}


@pytest.fixture(scope="module")
def results(pool: Pool, tmp_path_factory: pytest.TempPathFactory, markers: dict[str, Path]) -> dict[str, Result]:
    cases: dict[str, Callable[[Project], Job]] = {}
    for name, text, _ in FILES:
        cases[f"file-{name}"] = _runbook(lambda f: ["verify", "--outputs", str(f)],
                                         lambda f, t=text: f.write_bytes(t if isinstance(t, bytes) else t.encode()))
    for name, extra, _ in ARGUMENTS:
        cases[f"argument-{name}"] = _runbook(lambda f, e=extra: ["verify", "--outputs", str(f), *e],
                                             lambda f: f.write_text(json.dumps(FIXTURE)))
    for output in INJECTED:
        cases[f"render-{output.name}"] = _runbook(
            lambda f: ["render", "--outputs", str(f)],
            lambda f, o=output: f.write_text(json.dumps({**FIXTURE, o.name: _payload(markers[o.name])})))
    return run_table(pool, tmp_path_factory.mktemp("outputs"), cases)
