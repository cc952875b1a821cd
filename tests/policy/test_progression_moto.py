"""`alb-canary-progression` against a real HTTP endpoint: moto's server on loopback holding the live rule.

moto stands in for the ELBv2 API only as far as the calls the policy makes (DescribeRules, DescribeTags); these
tests assert the policy's reading of those answers, not moto's fidelity to AWS.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

import policy_factories as f
from policy_support import POLICY_DIR, Alb
from preview.analyzer_client import PolicyPackServer
from task_service_policies import live


def test_reader_sees_weights_and_tags(alb: Alb) -> None:
    alb.route(5)
    rule = live.read_live_rule(alb.listener_arn, 10)
    assert rule is not None and rule.arn == alb.rule_arn
    assert dict(rule.targets) == {alb.monolith_arn: 95.0, alb.task_arn: 5.0}
    assert rule.tags == {"CanaryTargetGroup": "task-service-tg"}
    assert live.read_live_rule(alb.listener_arn, 11) is None


def _verdict(pack: PolicyPackServer, alb: Alb, desired: int) -> bool:
    """True when the pack lets `desired` through; never not-applicable while the endpoint answers."""
    result = pack.analyze_resource(alb.desired(desired))
    assert result.not_applicable_for("alb-canary-progression") == [], result.not_applicable
    found = result.for_policy("alb-canary-progression")
    assert all(d.enforcement_level == "mandatory" for d in found)
    return not found


def test_rollout_walk_through_the_pack(moto_pack: PolicyPackServer, alb: Alb) -> None:
    """A whole rollout against one live rule: each stage allows the next step and any rollback, nothing else."""
    assert [_verdict(moto_pack, alb, w) for w in (0, 5, 25, 100)] == [True, True, False, False]  # new rule
    expected_at = {
        5: {0: True, 5: True, 25: True, 50: False, 100: False},
        25: {0: True, 5: True, 50: True, 100: False},
        50: {0: True, 25: True, 100: True},
        100: {0: True, 5: True, 100: True},
    }
    for live_weight, cases in expected_at.items():
        alb.route(live_weight)
        verdicts = {w: _verdict(moto_pack, alb, w) for w in cases}
        assert verdicts == cases, f"live at {live_weight}%"


def test_jump_message(moto_pack: PolicyPackServer, alb: Alb) -> None:
    alb.route(5)
    [diag] = moto_pack.analyze_resource(alb.desired(50)).for_policy("alb-canary-progression")
    assert "the canary is live at 5%; it may rise one step at a time, to 25%, not 50%" in diag.message


def test_untagged_live_rule_uses_the_desired_tag(moto_pack: PolicyPackServer, alb: Alb) -> None:
    alb.route(25, tag=False)
    assert moto_pack.analyze_resource(alb.desired(50)).for_policy("alb-canary-progression") == []
    [diag] = moto_pack.analyze_resource(alb.desired(100)).for_policy("alb-canary-progression")
    assert "live at 25%" in diag.message


def test_unknown_listener_is_not_applicable_with_reason(moto_pack: PolicyPackServer, alb: Alb) -> None:
    desired = alb.desired(50)
    desired.properties["listenerArn"] = alb.listener_arn.rsplit("/", 1)[0] + "/ffffffffffffffff"
    result = moto_pack.analyze_resource(desired)
    assert result.for_policy("alb-canary-progression") == []
    with pytest.raises(live.LiveStateUnavailable, match="ListenerNotFound"):
        live.read_live_rule(desired.properties["listenerArn"], 10)
    [na] = result.not_applicable_for("alb-canary-progression")
    assert "ListenerNotFound" in na.reason


def test_switching_live_reads_off(moto_pack: PolicyPackServer) -> None:
    config = json.loads((POLICY_DIR / "config" / "prod.json").read_text())
    config["alb-canary-progression"]["readLiveState"] = False
    try:
        moto_pack.configure(config)
        result = moto_pack.analyze_resource(f.resource(f.LISTENER_RULE, "task-service-rule", f.listener_rule(100)))
        assert result.for_policy("alb-canary-progression") == []
        assert "readLiveState=false" in result.not_applicable_for("alb-canary-progression")[0].reason
    finally:
        moto_pack.configure(POLICY_DIR / "config" / "prod.json")


def test_no_credentials_is_not_applicable(moto_endpoint: str, tmp_path: Any) -> None:
    env: dict[str, Optional[str]] = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": None,
           "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="prod", env=env) as pack:
        pack.configure(POLICY_DIR / "config" / "prod.json")
        result = pack.analyze_resource(f.resource(f.LISTENER_RULE, "task-service-rule", f.listener_rule(5)))
    assert {na.policy_name for na in result.not_applicable} == {"alb-canary-progression", "alb-canary-health-gate"}
    assert all("NoCredentialsError" in na.reason for na in result.not_applicable)
    assert result.mandatory == []


@pytest.mark.parametrize("actions", [
    lambda task: [{"type": "forward", "targetGroupArn": task}],
    lambda task: [{"type": "forward", "forward": {"targetGroups": [{"arn": task, "weight": 1}]}}],
], ids=["plain forward", "one-group forward"])
def test_any_shape_is_judged_against_the_live_weight(moto_pack: PolicyPackServer, alb: Alb, actions: Any) -> None:
    """A rule sending everything to the canary is a jump to 100%, whatever its actions look like."""
    alb.route(5)
    desired = alb.desired(5)
    desired.properties["actions"] = actions(alb.task_arn)
    [diag] = moto_pack.analyze_resource(desired).for_policy("alb-canary-progression")
    assert "the canary is live at 5%; it may rise one step at a time, to 25%, not 100%" in diag.message
