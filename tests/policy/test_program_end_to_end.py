"""The real program under mocks (preview/engine.py), every recorded resource to the pack over the protocol.

Depends on the recorder's API: `run_program(project_dir, stack, overrides) -> Recording` whose `.resources` are
the `RecordedResource`s that `resources_from_recording` turns into analyzer resources.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from google.protobuf import json_format

from policy_support import Alb, recorded, stack_resources
from preview.analyzer_client import AnalysisResult, PolicyPackServer
from preview.analyzer_requests import Resource
from preview.engine import Recording

RDS = "aws:rds/instance:Instance"
RULE = "aws:lb/listenerRule:ListenerRule"


def mutate(resources: list[Resource], type_: str, change: Callable[[dict[str, Any]], None]) -> list[Resource]:
    """A copy of the stack with one resource's inputs changed (exactly one resource of `type_` must exist)."""
    matches = [r for r in resources if r.type == type_]
    assert len(matches) == 1, f"expected one {type_}, found {len(matches)}"
    out = []
    for r in resources:
        if r is matches[0]:
            props = r.properties if isinstance(r.properties, dict) else json_format.MessageToDict(r.properties)
            props = copy.deepcopy(props)
            change(props)
            r = copy.copy(r)
            r.properties = props
        out.append(r)
    return out


def names(result: AnalysisResult, level: str) -> set[str]:
    return {d.policy_name for d in result.diagnostics if d.enforcement_level == level}


@pytest.fixture(scope="module")
def prod_resources(prod: Recording) -> list[Resource]:
    return stack_resources(prod)


@pytest.fixture(scope="module")
def dev_resources(dev: Recording) -> list[Resource]:
    return stack_resources(dev)


def test_prod_program_is_compliant(prod_pack: PolicyPackServer, prod_resources: list[Resource]) -> None:
    types = {r.type for r in prod_resources}
    assert {RDS, RULE, "aws:dms/replicationInstance:ReplicationInstance", "aws:ecs/service:Service"} <= types
    result = prod_pack.preview(prod_resources)
    assert result.mandatory == [], [d.message for d in result.mandatory]
    # No policy is reduced to "can't be known during preview": unknown ARNs count as set.
    assert [d.message for d in result.advisory] == []
    [na] = result.not_applicable
    assert na.policy_name == "alb-canary-progression" and "cannot be read" in na.reason


def test_dev_program_is_compliant(dev_pack: PolicyPackServer, dev_resources: list[Resource]) -> None:
    resources = dev_resources
    assert not [r for r in resources if r.type.startswith("aws:dms/")]
    result = dev_pack.preview(resources)
    assert result.mandatory == [], [d.message for d in result.mandatory]
    assert names(result, "advisory") == {"multi-az"}  # dev runs single-AZ on purpose
    assert result.not_applicable == []  # progression is disabled in dev


def _unencrypted(props: dict[str, Any]) -> None:
    props["storageEncrypted"] = False


def _retention_3(props: dict[str, Any]) -> None:
    props["backupRetentionPeriod"] = 3


@pytest.mark.parametrize("type_,change,policy", [
    (RDS, _unencrypted, "rds-storage-encrypted"),
    (RDS, _retention_3, "rds-backup-retention"),
])
def test_single_property_mutations_are_caught(prod_pack: PolicyPackServer, prod_resources: list[Resource],
                                              type_: str, change: Callable[[dict[str, Any]], None],
                                              policy: str) -> None:
    result = prod_pack.preview(mutate(prod_resources, type_, change))
    assert names(result, "mandatory") == {policy}


def _drop_key(field: str) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.pop(field, None)
    return change


def test_an_unencrypted_log_group_is_caught(prod_pack: PolicyPackServer, prod_resources: list[Resource]) -> None:
    """Every log group of the program is checked; one without the telemetry key is named."""
    groups = [r for r in prod_resources if r.type == "aws:cloudwatch/logGroup:LogGroup"]
    assert len(groups) == 7
    for victim in (groups[0], groups[-1]):
        stack = [r if r is not victim else copy.copy(r) for r in prod_resources]
        changed = next(r for r in stack if r.name == victim.name)
        props = json_format.MessageToDict(victim.properties) if not isinstance(victim.properties, dict) else dict(victim.properties)
        props.pop("kmsKeyId")
        changed.properties = props
        result = prod_pack.preview(stack)
        assert names(result, "mandatory") == {"log-group-customer-key"}
        assert [d.urn for d in result.mandatory] == [victim.urn]


def test_an_unencrypted_topic_is_caught(prod_pack: PolicyPackServer, prod_resources: list[Resource]) -> None:
    result = prod_pack.preview(mutate(prod_resources, "aws:sns/topic:Topic", _drop_key("kmsMasterKeyId")))
    assert names(result, "mandatory") == {"sns-topic-encrypted"}


def test_secrets_without_rotation_are_caught(prod_pack: PolicyPackServer, dev_pack: PolicyPackServer,
                                             prod_resources: list[Resource], dev_resources: list[Resource]) -> None:
    rotation = "aws:secretsmanager/secretRotation:SecretRotation"
    prod = prod_pack.preview([r for r in prod_resources if r.type != rotation])
    assert names(prod, "mandatory") == {"db-secret-rotation"}
    flagged = sorted(d.message.split("'")[1] for d in prod.mandatory)
    assert flagged == ["task-service/db-app-credentials", "task-service/db-password"]  # never the Cognito config
    dev = dev_pack.preview([r for r in dev_resources if r.type != rotation])
    assert names(dev, "mandatory") == set() and "db-secret-rotation" in names(dev, "advisory")


def test_config_retention_3_is_caught(prod_pack: PolicyPackServer) -> None:
    result = prod_pack.preview(recorded("prod", {"task-service:db.backupRetentionDays": 3}))
    assert names(result, "mandatory") == {"rds-backup-retention"}


def test_weight_30_is_caught(prod_pack: PolicyPackServer) -> None:
    result = prod_pack.preview(recorded("prod", {"task-service:canaryWeight": 30}))
    assert names(result, "mandatory") == {"alb-canary-weights"}
    assert any("gets 30%" in d.message for d in result.mandatory)


def _pointed_at(alb: Alb, weight: int) -> dict[str, Any]:
    return {
        "task-service:canaryWeight": weight,
        "task-service:monolith.listenerArn": alb.listener_arn,
        "task-service:monolith.targetGroupArn": alb.monolith_arn,
    }


def test_jump_from_5_to_50_is_caught(moto_pack: PolicyPackServer, alb: Alb) -> None:
    alb.route(5)
    result = moto_pack.preview(recorded("prod", _pointed_at(alb, 50)))
    assert names(result, "mandatory") == {"alb-canary-progression", "alb-canary-health-gate"}
    assert result.not_applicable == []
    assert any("live at 5%" in d.message for d in result.for_policy("alb-canary-progression"))


def test_next_step_from_5_is_up_to_the_health_gate(moto_pack: PolicyPackServer, alb: Alb) -> None:
    """One step up is a valid progression; with no metrics in the account the gate holds it (missing data)."""
    alb.route(5)
    result = moto_pack.preview(recorded("prod", _pointed_at(alb, 25)))
    assert names(result, "mandatory") == {"alb-canary-health-gate"} and result.not_applicable == []
    assert any("missing data" in d.message for d in result.mandatory)
