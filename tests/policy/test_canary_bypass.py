"""Every route to the canary target group is judged by its effective weight, whatever its shape (issue "Hostile
input", canary bypass): a plain forward, a one-group forward, several groups or actions, a listener's default
action, a second rule, on `aws:lb` and `aws:alb` tokens. Only a test route that requires the test header is not a
canary route. The pack runs over the Analyzer protocol as a prod preview runs it (live reads fail fast)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

import policy_factories as f
from policy_support import ROOT
from preview.analyzer_client import AnalysisResult, PolicyPackServer
from preview.wire import UNKNOWN
from task_service.canary import TEST_ROUTE_HEADER

MONO, TASK = f.MONOLITH_TG_ARN, f.TASK_TG_ARN
OTHER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/other-tg/0000000000000000"
TOKENS = ("aws:lb", "aws:alb")
PATHS = [{"pathPattern": {"values": ["/api/tasks", "/api/tasks/*"]}}]


def forward(*groups: tuple[Optional[str], Optional[float]], **extra: Any) -> dict[str, Any]:
    targets = [{"arn": arn, **({} if weight is None else {"weight": weight})} for arn, weight in groups]
    return {"type": "forward", "forward": {"targetGroups": targets}, **extra}


def plain(arn: Optional[str] = TASK, **extra: Any) -> dict[str, Any]:
    return {"type": "forward", "targetGroupArn": arn, **extra}


def rule(actions: list[dict[str, Any]], *, tags: Optional[dict[str, str]] = None, priority: int = 10,
         conditions: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """A listener rule on the monolith's listener; untagged unless told, as a hand-written one would be."""
    return {"listenerArn": f.LISTENER_ARN, "priority": priority, "conditions": conditions or PATHS,
            "actions": actions, "tags": tags or {"Project": "myteacher"}}


def analyze(pack: PolicyPackServer, module: str, kind: str, props: dict[str, Any], name: str = "hand-rule") -> AnalysisResult:
    type_ = f"{module}/{kind[0].lower() + kind[1:]}:{kind}"
    return pack.analyze_resource(f.resource(type_, name, props))


def mandatory(result: AnalysisResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in result.mandatory:
        out.setdefault(d.policy_name, []).append(d.message)
    return out


SHAPES = {
    "plain forward": ([plain()], "sends 100% of its traffic to the canary 'task-service-tg' through a plain forward"),
    "plain forward, unknown ARN": ([plain(UNKNOWN)], "sends 100% of its traffic to the canary"),
    "one-group forward": ([forward((TASK, 1))], "through a forward to that one target group"),
    "one-group forward, unknown ARN": ([forward((UNKNOWN, 100))], "through a forward to that one target group"),
    "one-group forward, no weight": ([forward((TASK, None))], "sends 100% of its traffic"),
    "three groups": ([forward((MONO, 50), (TASK, 25), (OTHER, 25))], "sends 25% of its traffic to the canary "
                     "'task-service-tg' through a forward naming 3 target groups"),
    "weighted plus plain": ([forward((MONO, 95), (TASK, 5)), plain(order=2)], "2 actions of the rule forward to"),
    "forward config plus another targetGroupArn": ([{**forward((MONO, 100), (OTHER, 0)), "targetGroupArn": TASK}],
                                                    "through a plain forward"),
    "authenticate then forward": ([{"type": "authenticate-oidc", "order": 1}, plain(order=2)], "plain forward"),
}


@pytest.mark.parametrize("module", TOKENS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_rule_shape_that_reaches_the_canary_is_judged(prod_pack: PolicyPackServer, module: str, shape: str) -> None:
    actions, expected = SHAPES[shape]
    found = mandatory(analyze(prod_pack, module, "ListenerRule", rule(actions)))
    assert any(expected in m for m in found.get("alb-canary-weights", [])), found


@pytest.mark.parametrize("module", TOKENS)
def test_a_tag_naming_the_monolith_does_not_hide_the_canary(prod_pack: PolicyPackServer, module: str) -> None:
    props = rule([forward((MONO, 0), (TASK, 100))], tags={"CanaryTargetGroup": "myteacher-app-tg"})
    found = mandatory(analyze(prod_pack, module, "ListenerRule", props))
    assert any("2 target groups all count as the canary" in m for m in found["alb-canary-weights"]), found


@pytest.mark.parametrize("module", TOKENS)
@pytest.mark.parametrize("actions", [[plain()], [forward((TASK, 1))], [forward((MONO, 50), (TASK, 50))]],
                         ids=["plain", "one group", "weighted"])
def test_a_listener_default_action_never_reaches_the_canary(prod_pack: PolicyPackServer, module: str,
                                                             actions: list[dict[str, Any]]) -> None:
    props = {"loadBalancerArn": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/x/1",
             "port": 443, "protocol": "HTTPS", "defaultActions": actions}
    found = mandatory(analyze(prod_pack, module, "Listener", props, name="hand-listener"))
    assert any("the listener's default action sends" in m for m in found["alb-canary-weights"]), found


def test_a_listener_default_action_at_zero_or_elsewhere_passes(prod_pack: PolicyPackServer) -> None:
    for actions in ([forward((MONO, 100), (TASK, 0))], [plain(MONO)], [{"type": "fixed-response"}]):
        props = {"port": 80, "protocol": "HTTP", "defaultActions": actions}
        assert analyze(prod_pack, "aws:lb", "Listener", props, name="hand-listener").diagnostics == []


def test_rules_that_never_reach_the_canary_are_left_alone(prod_pack: PolicyPackServer) -> None:
    for actions in ([plain(MONO)], [forward((MONO, 100))], [forward((MONO, 50), (OTHER, 50))]):
        result = analyze(prod_pack, "aws:lb", "ListenerRule", rule(actions))
        assert result.mandatory == [], actions
        assert {n.policy_name for n in result.not_applicable} == {"alb-canary-progression", "alb-canary-health-gate"}
        assert all("does not route to the canary" in n.reason for n in result.not_applicable)


def header(name: str, values: Any) -> dict[str, Any]:
    return {"httpHeader": {"httpHeaderName": name, "values": values}}


@pytest.mark.parametrize("condition", [
    header(TEST_ROUTE_HEADER, ["0f3c9a"]),
    header(TEST_ROUTE_HEADER.lower(), ["0f3c9a"]),  # header names match without case, as on the ALB
    header(TEST_ROUTE_HEADER, [UNKNOWN]),  # a generated secret, unknown during preview
    header(TEST_ROUTE_HEADER, ["a*"]),
], ids=["value", "lower-case name", "unknown value", "wildcard with text"])
def test_a_test_route_is_not_a_canary_route(prod_pack: PolicyPackServer, condition: dict[str, Any]) -> None:
    props = rule([plain()], priority=9, conditions=[*PATHS, condition])
    result = analyze(prod_pack, "aws:lb", "ListenerRule", props, name="test-route")
    assert result.mandatory == []
    assert {n.policy_name for n in result.not_applicable} == {"alb-canary-progression", "alb-canary-health-gate"}
    assert all("a test route" in n.reason for n in result.not_applicable)


@pytest.mark.parametrize("condition", [
    header("X-Other-Header", ["0f3c9a"]),
    header(TEST_ROUTE_HEADER, []),
    header(TEST_ROUTE_HEADER, [""]),
    header(TEST_ROUTE_HEADER, ["*"]),
    header(TEST_ROUTE_HEADER, ["0f3c9a", "?*"]),
    {"queryString": {"values": [{"key": TEST_ROUTE_HEADER, "value": "0f3c9a"}]}},
], ids=["other header", "no values", "empty value", "any value", "one any value", "query string"])
def test_only_the_test_header_with_a_value_makes_a_test_route(prod_pack: PolicyPackServer,
                                                              condition: dict[str, Any]) -> None:
    props = rule([plain()], priority=9, conditions=[*PATHS, condition])
    assert "alb-canary-weights" in mandatory(analyze(prod_pack, "aws:lb", "ListenerRule", props))


def test_a_second_rule_to_the_canary_is_caught_by_the_guardrails(prod_pack: PolicyPackServer) -> None:
    stack = f.prod_stack(weight=5)
    second = f.listener_rule(5, priority=11)
    stack.append(f.resource(f.LISTENER_RULE, "second-rule", second))
    result = prod_pack.analyze_stack_result(stack)
    messages = [d.message for d in result.mandatory if d.policy_name == "canary-guardrails"]
    assert len(messages) == 2 and all("2 routes send ordinary traffic to the canary" in m for m in messages)
    assert {d.urn for d in result.mandatory} == {r.urn for r in stack if r.type == f.LISTENER_RULE}


def test_a_plain_forward_rule_gets_the_guardrails(prod_pack: PolicyPackServer) -> None:
    """Guardrails apply to any route with traffic, not only the two-way split."""
    stack = f.replace(f.prod_stack(weight=0), "task-service-tg", f.target_group(healthCheck={"path": "/"}))
    stack.append(f.resource(f.LISTENER_RULE, "hand-rule", rule([plain()], priority=11)))
    result = prod_pack.analyze_stack_result(stack)
    assert any("'hand-rule' sends 100% to 'task-service-tg', but its health check is not on /health" in d.message
               for d in result.mandatory)


def test_the_programs_rule_is_still_compliant(prod_pack: PolicyPackServer) -> None:
    for weight in (0, 5, 25, 50, 100):
        assert prod_pack.preview(f.prod_stack(weight=weight)).mandatory == [], weight


PLAIN_FORWARD = '''aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=self.target_group.arn)'''


def test_the_hermetic_preview_of_a_plain_forward_program_fails(tmp_path: Path) -> None:
    """The bypass as it was found: the program's rule edited to a plain forward; `python -m preview -s prod`
    exited 0. The copy of the project runs in a fresh interpreter, so its edited components are the ones loaded."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "__main__.py", "stack_config.py", "policy", "preview",
                 "task_service", "stack-references"):
        (tmp_path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "components", tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    route = tmp_path / "components" / "alb_route.py"
    source = route.read_text()
    start = source.index("aws.lb.ListenerRuleActionArgs(\n")
    end = source.index("            ],\n            tags={**tags, \"Name\"")
    route.write_text(source[:start] + PLAIN_FORWARD + "\n" + source[end:])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run([sys.executable, "-m", "preview", "-s", "prod"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, env={**env, "AWS_EC2_METADATA_DISABLED": "true"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "alb-canary-weights" in proc.stdout
    assert "sends 0% of its traffic" not in proc.stdout and "sends 100% of its traffic to the canary" in proc.stdout
