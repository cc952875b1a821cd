"""Unit tests for the canary policies: canary identification, weights, progression rules, guardrails."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from pulumi_policy.proxy import UnknownValueError

import policy_factories as f
from policy_harness import run, run_stack
from task_service_policies import canary, live, routing

MONO = f.MONOLITH_TG_ARN
TASK = f.TASK_TG_ARN
OTHER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/other-tg/0000000000000000"


# identification

@pytest.mark.parametrize("arns,tag,expected", [
    ([MONO, TASK], "task-service-tg", {1}),
    ([TASK, MONO], "task-service-tg", {0}),
    ([MONO, None], "task-service-tg", {1}),  # unknown ARN during preview: the new group
    ([None, None], "task-service-tg", None),  # two unknowns: cannot tell
    ([MONO, OTHER], "task-service-tg", set()),  # neither is the canary
    ([MONO, TASK], None, {1}),  # no tag: the name pattern decides
    ([MONO, None], None, {1}),
    ([None], None, {0}),  # a lone unknown group may be the canary being created
    ([MONO, TASK], "myteacher-app-tg", {0, 1}),  # a tag naming the monolith cannot hide the real canary
])
def test_canary_indexes(arns: list[Optional[str]], tag: Optional[str], expected: Optional[set[int]]) -> None:
    found = routing.canary_indexes(arns, tag, "^task-service-tg$")
    assert (None if found is None else set(found)) == expected


def test_alb_legacy_token_is_checked() -> None:
    outcome = run(canary.alb_canary_weights, "aws:alb/listenerRule:ListenerRule", f.listener_rule(30))
    assert any("30%" in m for m in outcome.messages)


# weights

@pytest.mark.parametrize("weight", [0, 5, 25, 50, 100])
def test_allowed_steps_pass(weight: int) -> None:
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, f.listener_rule(weight)).ok
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, f.listener_rule(weight, task_arn=TASK)).ok


def _rule_with(groups: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    props = f.listener_rule(0, **changes)
    props["actions"][0]["forward"]["targetGroups"] = groups
    return props


@pytest.mark.parametrize("groups,expected", [
    ([{"arn": MONO, "weight": 70}, {"arn": TASK, "weight": 30}], "gets 30%, which is not an allowed step"),
    ([{"arn": MONO, "weight": 90}, {"arn": TASK, "weight": 5}], "= 95; they must sum to 100"),
    ([{"arn": MONO, "weight": 94.5}, {"arn": TASK, "weight": 5.5}], "not whole numbers"),
    ([{"arn": MONO, "weight": 95}, {"arn": TASK}], "explicit weight"),
    ([{"arn": MONO, "weight": 50}, {"arn": TASK, "weight": 25}, {"arn": OTHER, "weight": 25}],
     "sends 25% of its traffic to the canary 'task-service-tg' through a forward naming 3 target groups"),
    ([{"arn": MONO, "weight": 50}, {"arn": OTHER, "weight": 50}], "cannot tell which target group is the canary"),
])
def test_bad_splits(groups: list[dict[str, Any]], expected: str) -> None:
    outcome = run(canary.alb_canary_weights, f.LISTENER_RULE, _rule_with(groups))
    assert any(expected in m for m in outcome.messages), outcome.messages


def test_canary_tag_key_and_pattern_are_configurable() -> None:
    props = f.listener_rule(25, task_arn=TASK, tags={"Canary": "task-service-tg"})
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, props, config={"canaryTagKey": "Canary"}).ok
    # No tag: the pattern alone decides; pointed at the monolith's group, that group's 75% is judged.
    props = f.listener_rule(25, task_arn=TASK, tags={})
    outcome = run(canary.alb_canary_weights, f.LISTENER_RULE, props, config={"canaryNamePattern": "^myteacher-app-tg$"})
    assert any("'myteacher-app-tg' gets 75%, which is not an allowed step" in m for m in outcome.messages)
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, props, config={"canaryNamePattern": "^nope$"}).ok


def test_custom_steps() -> None:
    props = f.listener_rule(10)
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, props).messages
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, props, config={"allowedSteps": [0, 10, 100]}).ok


def test_two_unknown_arns_defer_to_the_engine() -> None:
    props = _rule_with([{"arn": f.UNKNOWN, "weight": 50}, {"arn": f.UNKNOWN, "weight": 50}])
    with pytest.raises(UnknownValueError):
        run(canary.alb_canary_weights, f.LISTENER_RULE, props)


def test_single_target_rules_are_not_splits() -> None:
    props = _rule_with([{"arn": MONO, "weight": 100}])
    assert run(canary.alb_canary_weights, f.LISTENER_RULE, props).ok


# progression (live reads replaced; the real reader is covered against moto)

LIVE_RULE_ARN = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener-rule/app/x/1/2/3"


def live_rule(weight: float, tag: Optional[str] = "task-service-tg") -> live.LiveRule:
    return live.LiveRule(LIVE_RULE_ARN, ((MONO, 100 - weight), (TASK, weight)),
                         {"CanaryTargetGroup": tag} if tag else {})


@pytest.fixture
def live_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"rule": None, "error": None, "calls": []}

    def fake(listener_arn: str, priority: int, timeout: float = 1.5) -> Optional[live.LiveRule]:
        state["calls"].append((listener_arn, priority, timeout))
        if state["error"]:
            raise live.LiveStateUnavailable(state["error"])
        return state["rule"]

    monkeypatch.setattr(live, "read_live_rule", fake)
    return state


@pytest.mark.parametrize("now,desired,ok", [
    (0, 0, True), (0, 5, True), (5, 25, True), (25, 50, True), (50, 100, True),
    (5, 50, False), (0, 25, False), (0, 100, False), (25, 100, False),
    (100, 0, True), (50, 5, True), (25, 0, True), (50, 50, True),
    (10, 25, True),  # a hand-set live weight between steps rises to the next step above it
    (10, 50, False),
])
def test_progression(live_state: dict[str, Any], now: float, desired: float, ok: bool) -> None:
    live_state["rule"] = live_rule(now)
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(desired, task_arn=TASK))
    assert outcome.not_applicable is None
    assert (not outcome.messages) == ok, outcome.messages
    assert live_state["calls"] == [(f.LISTENER_ARN, 10, 1.5)]


def test_jump_message_names_the_next_step(live_state: dict[str, Any]) -> None:
    live_state["rule"] = live_rule(5)
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(50, task_arn=TASK))
    assert "live at 5%" in outcome.messages[0] and "to 25%, not 50%" in outcome.messages[0]


@pytest.mark.parametrize("desired,ok", [(0, True), (5, True), (25, False), (100, False)])
def test_new_rule_starts_at_zero_or_first_step(live_state: dict[str, Any], desired: float, ok: bool) -> None:
    live_state["rule"] = None
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(desired))
    assert (not outcome.messages) == ok, outcome.messages


def test_live_canary_absent_counts_as_zero(live_state: dict[str, Any]) -> None:
    live_state["rule"] = live.LiveRule(LIVE_RULE_ARN, ((MONO, 1.0),), {})
    assert run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(5, task_arn=TASK)).ok
    assert run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(25, task_arn=TASK)).messages


def test_live_weights_are_read_as_shares(live_state: dict[str, Any]) -> None:
    """AWS weights are relative; 19:1 is a 5% canary."""
    live_state["rule"] = live.LiveRule(LIVE_RULE_ARN, ((MONO, 19.0), (TASK, 1.0)), {})
    assert run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(25, task_arn=TASK)).ok


def test_unreadable_live_state_is_not_applicable_with_reason(live_state: dict[str, Any]) -> None:
    live_state["error"] = "EndpointConnectionError: could not connect"
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(50, task_arn=TASK))
    assert not outcome.messages
    assert outcome.not_applicable and "EndpointConnectionError" in outcome.not_applicable


def test_live_reading_can_be_switched_off(live_state: dict[str, Any]) -> None:
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(50),
                  config={"readLiveState": False})
    assert outcome.not_applicable and "readLiveState=false" in outcome.not_applicable
    assert live_state["calls"] == []


def test_unknown_listener_is_not_applicable(live_state: dict[str, Any]) -> None:
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, f.listener_rule(5, listenerArn=f.UNKNOWN))
    assert outcome.not_applicable and "listenerArn can't be known during preview" in outcome.not_applicable
    assert live_state["calls"] == []


def test_unknown_weight_defers_to_the_engine(live_state: dict[str, Any]) -> None:
    props = _rule_with([{"arn": MONO, "weight": f.UNKNOWN}, {"arn": TASK, "weight": f.UNKNOWN}])
    with pytest.raises(UnknownValueError):
        run(canary.alb_canary_progression, f.LISTENER_RULE, props)


def test_progression_skips_rules_without_a_split(live_state: dict[str, Any]) -> None:
    outcome = run(canary.alb_canary_progression, f.LISTENER_RULE, _rule_with([{"arn": MONO, "weight": 100}]))
    assert outcome.not_applicable and "does not route to the canary" in outcome.not_applicable


def test_unreachable_endpoint_answers_fast(unreachable_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    for key, value in unreachable_aws.items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    with pytest.raises(live.LiveStateUnavailable, match="EndpointConnectionError|Connect"):
        live.read_live_rule(f.LISTENER_ARN, 10, timeout=1.0)
    assert time.monotonic() - started < 3


def test_malformed_listener_arn_is_unavailable() -> None:
    with pytest.raises(live.LiveStateUnavailable, match="not an elasticloadbalancing listener ARN"):
        live.read_live_rule("not-an-arn", 10)


# guardrails

def guarded_stack(weight: float, **overrides: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    stack = [
        (f.LISTENER_RULE, "task-service-rule", f.listener_rule(weight)),
        (f.TARGET_GROUP, "task-service-tg", f.target_group()),
        (f.ALARM, "task-service-5xx-rate", f.alarm_5xx()),
        (f.ALARM, "task-service-p95-latency", f.alarm_latency()),
        (f.ECS_SERVICE, "task-service", f.ecs_service()),
    ]
    return [(t, n, overrides.get(n.replace("-", "_"), p)) for t, n, p in stack]


def test_guardrails_pass_on_the_compliant_stack() -> None:
    assert run_stack(canary.canary_guardrails, guarded_stack(25)).ok


@pytest.mark.parametrize("override,expected", [
    ({"task_service_tg": f.target_group(healthCheck={"path": "/"})}, "health check is not on /health"),
    ({"task_service_tg": f.target_group(name="something-else")}, "no target group of that name"),
    ({"task_service_5xx_rate": f.alarm_5xx(alarmActions=[])}, "HTTPCode_Target_5XX_Count"),
    ({"task_service_p95_latency": f.alarm_latency(extendedStatistic="p50")}, "TargetResponseTime at p95"),
    ({"task_service": f.ecs_service(deploymentCircuitBreaker={"enable": True, "rollback": False})},
     "no circuit breaker with rollback"),
    ({"task_service": f.ecs_service(name="other")}, "no ECS service matching"),
])
def test_guardrails_catch_missing_pieces(override: dict[str, Any], expected: str) -> None:
    outcome = run_stack(canary.canary_guardrails, guarded_stack(5, **override))
    assert any(expected in m for m in outcome.messages), outcome.messages
    assert all(urn and urn.startswith("urn:pulumi:") for urn in outcome.urns)


@pytest.mark.parametrize("override,expected", [
    ({"task_service_5xx_rate": f.alarm_5xx(actionsEnabled="false")}, "HTTPCode_Target_5XX_Count"),
    ({"task_service": f.ecs_service(deploymentCircuitBreaker={"enable": "true", "rollback": "true"})}, None),
])
def test_guardrails_read_string_booleans_as_aws_does(override: dict[str, Any], expected: str | None) -> None:
    """As the resource policies do (availability, monitoring): "false" disables the alarm, "true" enables the breaker."""
    outcome = run_stack(canary.canary_guardrails, guarded_stack(5, **override))
    assert outcome.ok if expected is None else any(expected in m for m in outcome.messages), outcome.messages


def test_guardrails_do_not_apply_at_zero() -> None:
    stack = guarded_stack(0, task_service_tg=f.target_group(healthCheck={"path": "/"}))
    assert run_stack(canary.canary_guardrails, stack).ok


def test_guardrails_config() -> None:
    stack = guarded_stack(5, task_service_tg=f.target_group(healthCheck={"path": "/healthz"}))
    assert run_stack(canary.canary_guardrails, stack).messages
    assert run_stack(canary.canary_guardrails, stack, config={"healthCheckPath": "/healthz"}).ok
