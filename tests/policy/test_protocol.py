"""The pack over the Analyzer protocol, started exactly as the engine starts it (see preview/pack_process.py)."""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from google.protobuf import struct_pb2

import policy_factories as f
from policy_support import POLICY_DIR
from preview.analyzer_client import PolicyPackServer
from preview.analyzer_requests import (
    ProviderInfo,
    Resource,
    ResourceOptions,
    make_urn,
    resources_from_recording,
    to_struct,
)
from preview.engine import RecordedResource
from preview.pack_process import PolicyPackError
from preview.policy_config import PolicyConfigError
from preview.wire import UNKNOWN, UNKNOWN_BOOL, secret
from task_service_policies.pack import ALL_POLICIES


@contextmanager
def configured(pack: PolicyPackServer, config: Any) -> Iterator[dict[str, Any]]:
    """Reconfigure a shared pack for one test, then put its stack config back."""
    try:
        yield pack.configure(config)
    finally:
        pack.configure(POLICY_DIR / "config" / f"{pack.stack}.json")


def test_analyzer_info(prod_pack: PolicyPackServer) -> None:
    info = prod_pack.analyzer_info()
    assert info.name == "task-service-policies"
    assert info.supportsConfig
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in ALL_POLICIES)
    by_name = {p.name: p for p in info.policies}
    assert by_name["canary-guardrails"].policy_type == 2  # POLICY_TYPE_STACK
    assert by_name["alb-canary-weights"].policy_type == 1
    assert "allowedSteps" in by_name["alb-canary-weights"].configSchema.properties
    assert prod_pack.plugin_version() == "1.21.0"


def test_configure_fills_schema_defaults_and_stack_file(prod_pack: PolicyPackServer, dev_pack: PolicyPackServer) -> None:
    prod = prod_pack.config
    assert prod["log-group-retention"] == {
        "enforcementLevel": "mandatory",
        "properties": {"minimumRetentionDays": 365, "includeNamePattern": ".*", "excludeNamePattern": ""},
    }
    assert dev_pack.config["log-group-retention"]["properties"]["minimumRetentionDays"] == 1
    assert prod["db-secret-rotation"] == {"enforcementLevel": "mandatory", "properties": {"secretNamePattern": "/db-", "maximumRotationDays": 30}}
    assert dev_pack.config["db-secret-rotation"]["enforcementLevel"] == "advisory"
    assert prod["log-group-customer-key"]["enforcementLevel"] == dev_pack.config["log-group-customer-key"]["enforcementLevel"] == "mandatory"
    assert prod["sns-topic-encrypted"]["enforcementLevel"] == dev_pack.config["sns-topic-encrypted"]["enforcementLevel"] == "mandatory"
    assert prod["multi-az"]["enforcementLevel"] == "mandatory"
    assert dev_pack.config["multi-az"]["enforcementLevel"] == "advisory"
    assert dev_pack.config["alb-canary-progression"]["enforcementLevel"] == "disabled"
    gate = prod["alb-canary-health-gate"]
    assert gate["enforcementLevel"] == "mandatory" and gate["properties"]["requireLoadTest"] is True
    assert gate["properties"]["soakMinutes"] == 30 and gate["properties"]["maxP95Ms"] == 500
    assert dev_pack.config["alb-canary-health-gate"]["enforcementLevel"] == "disabled"
    assert dev_pack.config["ecs-autoscaling-capacity"]["properties"]["maximumCapacity"] == 4


def test_invalid_config_is_refused_like_the_cli(prod_pack: PolicyPackServer) -> None:
    with pytest.raises(PolicyConfigError, match="rds-backup-retention: minimumRetentionDays"):
        prod_pack.configure({"rds-backup-retention": {"minimumRetentionDays": "seven"}})
    with pytest.raises(PolicyConfigError, match="enforcement level 'blocking' is not one of"):
        prod_pack.configure({"multi-az": "blocking"})
    prod_pack.configure(POLICY_DIR / "config" / "prod.json")


def test_unknown_policy_names_and_settings_are_refused_unlike_the_cli(prod_pack: PolicyPackServer) -> None:
    """The CLI copies an unknown name through and validates with the schema's properties only (extra keys pass);
    here both are errors, so a typo never falls back to a default without a word."""
    with pytest.raises(PolicyConfigError, match=r"^the policy config is invalid: 'multi-azz' is not a policy of this pack"):
        prod_pack.configure({"multi-azz": "mandatory"})
    with pytest.raises(PolicyConfigError, match=r"no-open-ingress: 'protectedPort' is not a setting of this policy"):
        prod_pack.configure({"no-open-ingress": {"protectedPort": [22]}})
    with pytest.raises(PolicyConfigError, match=r"all: 'minimumRetentionDays' is not a setting"):
        prod_pack.configure({"all": {"enforcementLevel": "advisory", "minimumRetentionDays": 3}})
    prod_pack.configure(POLICY_DIR / "config" / "prod.json")


def test_compliant_prod_stack_has_no_mandatory_findings(prod_pack: PolicyPackServer) -> None:
    result = prod_pack.preview(f.prod_stack(weight=0))
    assert result.mandatory == []
    assert result.advisory == []
    # Live state is unreachable in this session (closed port): said so, never passed silently.
    reasons = result.not_applicable_for("alb-canary-progression")
    assert len(reasons) == 1 and "cannot be read" in reasons[0].reason
    assert reasons[0].urn.endswith("::task-service-rule")


def test_violation_over_the_wire(prod_pack: PolicyPackServer) -> None:
    bad = f.resource(f.RDS, "task-service-db", f.rds(storageEncrypted=False, backupRetentionPeriod=3))
    result = prod_pack.analyze_resource(bad)
    found = {d.policy_name: d for d in result.diagnostics}
    assert set(found) == {"rds-storage-encrypted", "rds-backup-retention"}
    diag = found["rds-storage-encrypted"]
    assert diag.enforcement_level == "mandatory"
    assert diag.severity == "critical"
    assert diag.description == "RDS instances and clusters (Aurora, Multi-AZ DB clusters) encrypt storage with a customer-managed KMS key."
    assert diag.message.startswith(diag.description + "\n")
    assert "Remediation: " in diag.message
    assert diag.policy_pack_name == "task-service-policies" and diag.policy_pack_version == "0.2.0"


def test_unencrypted_log_group_and_topic_over_the_wire(prod_pack: PolicyPackServer, dev_pack: PolicyPackServer) -> None:
    for pack, stack in ((prod_pack, "prod"), (dev_pack, "dev")):
        [logs] = pack.analyze(f.resource(f.LOG_GROUP, "task-service-logs", f.log_group(kmsKeyId=None), stack=stack))
        assert (logs.policy_name, logs.enforcement_level) == ("log-group-customer-key", "mandatory")
        [topic] = pack.analyze(f.resource(f.SNS_TOPIC, "task-service-alarms", f.sns_topic(kmsMasterKeyId="alias/aws/sns"), stack=stack))
        assert (topic.policy_name, topic.enforcement_level) == ("sns-topic-encrypted", "mandatory")
        assert "alias/aws/sns" in topic.message
    # a key created in the same update has no ARN yet: still a customer key
    assert prod_pack.analyze(f.resource(f.SNS_TOPIC, "task-service-alarms", f.sns_topic(kmsMasterKeyId=UNKNOWN))) == []


def _without_rotation(stack: str) -> list[Resource]:
    return [r for r in f.prod_stack(weight=0) if r.type != f.SECRET_ROTATION]


def test_unrotated_db_secret_is_mandatory_in_prod_advisory_in_dev(prod_pack: PolicyPackServer, dev_pack: PolicyPackServer) -> None:
    prod = prod_pack.analyze_stack_result(_without_rotation("prod"))
    [diag] = prod.mandatory
    assert diag.policy_name == "db-secret-rotation" and "'task-service/db-password' has no rotation schedule" in diag.message
    assert diag.urn.endswith("::task-service-db-password")
    dev = dev_pack.analyze_stack_result(_without_rotation("dev"))
    assert dev.mandatory == [] and [d.policy_name for d in dev.advisory] == ["db-secret-rotation"]


def test_rotation_linked_by_property_dependency_over_the_wire(prod_pack: PolicyPackServer) -> None:
    """In a preview the rotation's secretId is unknown: the engine's property dependency names the secret."""
    resources = []
    for r in f.prod_stack(weight=0):
        if r.type == f.SECRET_ROTATION:
            secret_urn = make_urn("task-service", "prod", f.SECRET, "task-service-db-password")
            r = Resource(urn=r.urn, type=r.type, name=r.name, properties=f.secret_rotation(secretId=UNKNOWN),
                         property_dependencies={"secretId": [secret_urn]})
        resources.append(r)
    assert prod_pack.analyze_stack_result(resources).mandatory == []
    too_slow = [r if r.type != f.SECRET_ROTATION else Resource(
        urn=r.urn, type=r.type, name=r.name, properties=f.secret_rotation(rotationRules={"automaticallyAfterDays": 90}))
        for r in f.prod_stack(weight=0)]
    [diag] = prod_pack.analyze_stack_result(too_slow).mandatory
    assert "automaticallyAfterDays is 90; at most 30" in diag.message


def test_unknown_value_becomes_the_engines_advisory(prod_pack: PolicyPackServer) -> None:
    props = f.rds(storageEncrypted=UNKNOWN_BOOL, multiAz=UNKNOWN_BOOL)
    result = prod_pack.analyze_resource(f.resource(f.RDS, "task-service-db", props))
    assert result.mandatory == []
    messages = {d.policy_name: d.message for d in result.advisory}
    assert set(messages) == {"rds-storage-encrypted", "multi-az"}
    assert messages["multi-az"] == ("can't run policy 'multi-az' from policy pack 'task-service-policies@v0.0.1' "
                                    "during preview: boolean value at .multiAz can't be known during preview")
    # The pack is still healthy afterwards.
    assert prod_pack.analyze(f.resource(f.RDS, "task-service-db", f.rds())) == []


def test_secrets_are_unwrapped_by_the_sdk(prod_pack: PolicyPackServer) -> None:
    props = f.rds(kmsKeyId=secret(f.KMS_ARN), backupRetentionPeriod=secret(7))
    assert prod_pack.analyze(f.resource(f.RDS, "task-service-db", props)) == []
    props = f.rds(storageEncrypted=secret(False))
    assert [d.policy_name for d in prod_pack.analyze(f.resource(f.RDS, "db", props))] == ["rds-storage-encrypted"]


def test_enforcement_levels_come_from_the_stack_config(dev_pack: PolicyPackServer) -> None:
    single_az = f.resource(f.RDS, "task-service-db", f.rds(multiAz=False), stack="dev")
    [diag] = dev_pack.analyze(single_az)
    assert (diag.policy_name, diag.enforcement_level) == ("multi-az", "advisory")


def test_disabled_policy_does_not_run(dev_pack: PolicyPackServer) -> None:
    rule = f.resource(f.LISTENER_RULE, "task-service-rule", f.listener_rule(100), stack="dev")
    result = dev_pack.analyze_resource(rule)
    assert result.diagnostics == [] and result.not_applicable == []


def test_all_key_sets_every_level(prod_pack: PolicyPackServer) -> None:
    with configured(prod_pack, {"all": "advisory"}) as config:
        assert {c["enforcementLevel"] for c in config.values()} == {"advisory"}
        [diag] = prod_pack.analyze(f.resource(f.RDS, "task-service-db", f.rds(multiAz=False)))
        assert diag.enforcement_level == "advisory"


def test_exclude_by_name_over_the_wire(prod_pack: PolicyPackServer) -> None:
    bad = f.resource(f.RDS, "legacy-db", f.rds(publiclyAccessible=True))
    assert [d.policy_name for d in prod_pack.analyze(bad)] == ["no-public-database"]
    with configured(prod_pack, {"no-public-database": {"excludeNamePattern": "^legacy-"}}):
        assert prod_pack.analyze(bad) == []


def test_canary_weights_over_the_wire(prod_pack: PolicyPackServer) -> None:
    rule = f.resource(f.LISTENER_RULE, "task-service-rule", f.listener_rule(30))
    [diag] = prod_pack.analyze(rule)
    assert diag.policy_name == "alb-canary-weights" and diag.enforcement_level == "mandatory"
    assert "gets 30%" in diag.message


def test_stack_policy_gets_parents_options_and_providers(prod_pack: PolicyPackServer) -> None:
    component = "task-service:index:TaskService"
    parent_urn = make_urn("task-service", "prod", component, "task-service")
    provider = ProviderInfo(urn="urn:pulumi:prod::task-service::pulumi:providers:aws::default_7_51_1",
                            type="pulumi:providers:aws", name="default_7_51_1",
                            properties={"region": "ap-northeast-1", "defaultTags": {"tags": dict(f.TAGS)}})
    resources = [Resource(urn=parent_urn, type=component, name="task-service")]
    for r in f.prod_stack(weight=25):
        if r.name == "task-service-tg":
            r.properties = f.target_group(healthCheck={"path": "/"})
        resources.append(Resource(
            urn=make_urn("task-service", "prod", r.type, r.name, parent_type=component), type=r.type, name=r.name,
            properties=r.properties, parent=parent_urn, provider=provider,
            options=ResourceOptions(protect=r.type == f.RDS, ignore_changes=("desiredCount",),
                                    delete_before_replace=True, custom_timeouts=(600, 600, 600)),
            dependencies=[parent_urn], property_dependencies={"vpcId": [parent_urn], "name": []},
        ))
    result = prod_pack.analyze_stack_result(resources)
    [diag] = result.mandatory
    assert diag.policy_name == "canary-guardrails"
    assert "health check is not on /health" in diag.message
    assert diag.urn == make_urn("task-service", "prod", f.TARGET_GROUP, "task-service-tg", parent_type=component)


def test_stack_policy_unknown_weight_is_advisory(prod_pack: PolicyPackServer) -> None:
    stack = f.prod_stack(weight=25)
    stack[-1].properties["actions"][0]["forward"]["targetGroups"][1]["weight"] = UNKNOWN
    result = prod_pack.analyze_stack_result(stack)
    assert result.mandatory == []
    assert [d.policy_name for d in result.advisory] == ["canary-guardrails"]
    assert "can't be known during preview" in result.advisory[0].message


# startup failures: one clear error, never a hang

def _fake_pack(tmp_path: Path, main: str) -> Path:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\nversion: 0.0.1\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(main))
    return tmp_path


def test_crashing_pack_reports_its_traceback(tmp_path: Path) -> None:
    pack_dir = _fake_pack(tmp_path, "raise SystemExit('boom: policies failed to import')\n")
    with pytest.raises(PolicyPackError) as err:
        PolicyPackServer(pack_dir, project="p", stack="s", startup_timeout=20).start()
    text = str(err.value)
    assert "exited with code 1 before printing its port" in text
    assert "boom: policies failed to import" in text


def test_silent_pack_times_out(tmp_path: Path) -> None:
    pack_dir = _fake_pack(tmp_path, "import sys, time\nprint('loading', file=sys.stderr)\ntime.sleep(60)\n")
    with pytest.raises(PolicyPackError) as err:
        PolicyPackServer(pack_dir, project="p", stack="s", startup_timeout=0.8).start()
    assert "printed no port within 0.8s" in str(err.value)
    assert "loading" in str(err.value)


_FORKS: list[str] = []
os.register_at_fork(before=lambda: _FORKS.append("fork"))


def test_pack_spawn_runs_no_fork_handlers(tmp_path: Path) -> None:
    """Spawning by fork ran gRPC's fork handlers in the child, which abort it (exit -6, "epoll_wait error") when
    this process has used gRPC; a spawn that does not fork runs no fork handlers at all, ours included."""
    pack_dir = _fake_pack(tmp_path, "import time\ntime.sleep(60)\n")
    del _FORKS[:]
    with pytest.raises(PolicyPackError, match="printed no port within 0.3s"):
        PolicyPackServer(pack_dir, project="p", stack="s", startup_timeout=0.3).start()
    assert _FORKS == []


def test_garbage_first_line(tmp_path: Path) -> None:
    pack_dir = _fake_pack(tmp_path, "print('hello')\n")
    with pytest.raises(PolicyPackError, match="first stdout line is not a port: 'hello"):
        PolicyPackServer(pack_dir, project="p", stack="s").start()


def test_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match="no PulumiPolicy.yaml"):
        PolicyPackServer(tmp_path, project="p", stack="s").start()


def _recorded(type_: str, name: str, inputs: dict[str, Any], **fields: Any) -> RecordedResource:
    """A registration as the recorder keeps it (no parent, no options unless given)."""
    struct = struct_pb2.Struct()
    struct.update(inputs)
    defaults: dict[str, Any] = dict(
        parent="", custom=True, dependencies=[], property_dependencies={}, protect=False, ignore_changes=[],
        delete_before_replace=False, additional_secret_outputs=[], provider="")
    return RecordedResource(type=type_, name=name, urn=make_urn("task-service", "prod", type_, name),
                            inputs_struct=struct, **{**defaults, **fields})


def test_resources_from_recording_fills_engine_fields() -> None:
    prov = _recorded("pulumi:providers:aws", "tokyo", {"region": "ap-northeast-1"})
    records = [
        prov,
        _recorded(f.RDS, "db", {"multiAz": True}, provider=f"{prov.urn}::abc", protect=True,
                  ignore_changes=["password"], dependencies=[prov.urn]),
        _recorded(f.KMS, "key", {}),
    ]
    provider, db, key = resources_from_recording(records, project="task-service", stack="prod")
    assert provider.provider is None
    assert db.provider is not None and db.provider.urn == prov.urn and db.provider.properties == {
        "region": "ap-northeast-1"}
    assert db.options.protect and db.options.ignore_changes == ("password",)
    assert db.options.delete_before_replace is None
    assert key.provider is not None and key.provider.urn.endswith("pulumi:providers:aws::default")
    assert db.properties is records[1].inputs_struct  # already in wire form: sent as recorded


def test_internal_keys_never_reach_the_analyzer() -> None:
    """The engine marshals analyzer properties with SkipInternalKeys."""
    struct = to_struct({"__defaults": [], "multiAz": True, "tags": {"__internal": 1, "Project": "p"}})
    assert set(struct.keys()) == {"multiAz", "tags"} and set(struct["tags"].keys()) == {"Project"}
