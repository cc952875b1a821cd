"""Hostile policy configs and pack manifests through `python -m preview`: one line naming the file, exit 2.

Shapes, encodings and JSON are refused before the program runs; unknown policy names and settings (which the
Pulumi CLI accepts silently) and bad values once the pack has said what its policies take."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.hostile.conftest import Job, Pool, Project, Result, refused, run_table

CONFIG = "policy/config/prod.json"

CASES: list[tuple[str, str | bytes, tuple[str, ...]]] = [
    ("a-list", "[1]", ("must be a JSON object of policy name",)),
    ("not-utf8", b'{"multi-az": "mandatory\xff"}', ("is not UTF-8 text",)),
    ("duplicate-policy", '{"multi-az": "mandatory", "multi-az": "advisory"}', ("duplicate key 'multi-az'",)),
    ("not-json", '{"multi-az": ', ("is not valid JSON",)),
    ("nan", '{"log-group-retention": {"minimumRetentionDays": NaN}}', ("NaN is not a JSON number",)),
    ("huge-number", '{"log-group-retention": {"minimumRetentionDays": ' + "9" * 5000 + "}}", ("is not valid JSON",)),
    ("deep", "[" * 100_000 + "]" * 100_000, ("nests too deeply",)),
    ("too-large", '{"multi-az": "' + "m" * (1024 * 1024) + '"}', ("is larger than",)),
    ("level-unknown", '{"multi-az": "blocking"}', ("'multi-az': enforcement level 'blocking' is not one of",)),
    ("level-not-text", '{"multi-az": {"enforcementLevel": 5}}', ("enforcement level 5 is not one of",)),
    ("entry-a-number", '{"multi-az": 5}', ("'multi-az': 5 is not a valid value",)),
    ("entry-a-list", '{"multi-az": ["mandatory"]}', ("is not a valid value",)),
    ("huge-level", '{"multi-az": "' + "x" * 100_000 + '"}', ("enforcement level", "...")),
    ("unknown-policy", '{"multi-azz": "mandatory"}', ("is invalid: 'multi-azz' is not a policy of this pack",)),
    ("unknown-setting", '{"no-open-ingress": {"protectedPort": [22]}}',
     ("no-open-ingress: 'protectedPort' is not a setting of this policy",)),
    ("all-with-a-setting", '{"all": {"enforcementLevel": "advisory", "minimumRetentionDays": 1}}',
     ("all: 'minimumRetentionDays' is not a setting",)),
    ("true-is-not-an-integer", '{"rds-backup-retention": {"minimumRetentionDays": true}}',
     ("rds-backup-retention: minimumRetentionDays: True is not of type 'integer'",)),
]


@pytest.mark.parametrize("name,text,fragments", CASES, ids=[c[0] for c in CASES])
def test_a_bad_policy_config_is_refused(name: str, text: str | bytes, fragments: tuple[str, ...],
                                        results: dict[str, Result]) -> None:
    refused(results[name], CONFIG, *fragments)


MANIFESTS = [
    ("version-a-list", "version: [1]\n", ("PulumiPolicy.yaml: 'version' must be a version",)),
    ("manifest-not-utf8", b"version: 0.2.0\ndescription: caf\xe9\n", ("PulumiPolicy.yaml is not UTF-8 text",)),
    ("manifest-duplicate", "version: 0.2.0\nversion: 0.3.0\n", ("PulumiPolicy.yaml", "duplicate key 'version'")),
]


@pytest.mark.parametrize("name,text,fragments", MANIFESTS, ids=[c[0] for c in MANIFESTS])
def test_a_bad_pack_manifest_is_refused(name: str, text: str | bytes, fragments: tuple[str, ...],
                                        results: dict[str, Result]) -> None:
    refused(results[name], *fragments)


def test_a_missing_policy_config_is_refused(results: dict[str, Result]) -> None:
    refused(results["missing"], "nope.json not found (expected a --policy-pack-config JSON file)")


def _case(write: Callable[[Project], None], *extra: str) -> Callable[[Project], Job]:
    def make(project: Project) -> Job:
        write(project)
        return Job("preview", project.argv("prod", *extra))

    return make


@pytest.fixture(scope="module")
def results(pool: Pool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    cases = {name: _case(lambda p, t=text: p.write(CONFIG, t)) for name, text, _ in CASES}
    cases |= {name: _case(lambda p, t=text: p.write("policy/PulumiPolicy.yaml", t)) for name, text, _ in MANIFESTS}
    cases["missing"] = _case(lambda p: None, "--policy-pack-config", "nope.json")
    return run_table(pool, tmp_path_factory.mktemp("policy-config"), cases)
