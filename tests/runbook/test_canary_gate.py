"""The runbook and the policy pack judge the canary with one gate: the same module, the same thresholds, the same
verdict on the same account."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from preview.analyzer_client import PolicyPackServer
from preview.analyzer_requests import Resource, make_urn
from runbook import canary
from runbook.cli import main
from runbook.pack import POLICY_DIR, health_gate
from task_service import contract
from task_service.canary import CANARY_TAG
from tests.runbook import canary_story, moto_stack

ROOT = Path(__file__).resolve().parents[2]
GATE = health_gate.POLICY_NAME


def test_the_runbook_imports_the_packs_own_module_cleanly() -> None:
    """One file, imported by its own name, and nothing of the pack's registrations or pulumi-policy with it."""
    assert Path(health_gate.__file__) == POLICY_DIR / "task_service_policies" / "health_gate.py"
    assert health_gate.__name__ == "task_service_policies.health_gate"
    probe = ("import sys, runbook.cli; "
             "print(sorted(m for m in sys.modules if m.startswith(('pulumi_policy', 'task_service_policies'))))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['task_service_policies', 'task_service_policies.health_gate']"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pack_and_runbook_use_the_same_thresholds(stack: str) -> None:
    """What the pack is configured with (schema defaults + the stack file, reconciled as the CLI does) is what the
    runbook reads for that stack."""
    with PolicyPackServer(POLICY_DIR, project="task-service", stack=stack) as pack:
        configured = pack.configure(POLICY_DIR / "config" / f"{stack}.json")[GATE]["properties"]
    assert canary.thresholds_for(stack) == health_gate.Thresholds.from_config(configured)
    defaults = health_gate.Thresholds.from_config()
    assert (defaults.soak_minutes, defaults.max_error_rate, defaults.max_p50_ms, defaults.max_p95_ms,
            defaults.max_cpu, defaults.max_memory) == (30, 1.0, 200.0, 500.0, 70.0, 80.0)  # seed 001


@pytest.fixture(scope="module")
def prod_pack(moto_endpoint: str) -> Iterator[PolicyPackServer]:
    """The prod pack reading the runbook suite's moto server (each test's `stack` resets and builds its account)."""
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": moto_stack.program_outputs()[contract.REGION.name], "AWS_EC2_METADATA_DISABLED": "true"}
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="prod", env=env) as pack:
        pack.configure(POLICY_DIR / "config" / "prod.json")
        yield pack


def _raise_to(stack: moto_stack.Stack, weight: int) -> Resource:
    """The program's rule at `weight`, as the engine would send it for this stack."""
    props: dict[str, Any] = {
        "listenerArn": stack.value(contract.LISTENER_ARN),
        "priority": stack.value(contract.LISTENER_RULE_PRIORITY),
        "conditions": [{"pathPattern": {"values": ["/api/tasks", "/api/tasks/*"]}}],
        "actions": [{"type": "forward", "forward": {"targetGroups": [
            {"arn": stack.value(contract.MONOLITH_TARGET_GROUP_ARN), "weight": 100 - weight},
            {"arn": stack.value(contract.TARGET_GROUP_ARN), "weight": weight}]}}],
        "tags": {CANARY_TAG: stack.value(contract.TARGET_GROUP_NAME)},
    }
    type_ = "aws:lb/listenerRule:ListenerRule"
    return Resource(urn=make_urn("task-service", "prod", type_, "route-rule"), type=type_, name="route-rule", properties=props)


@pytest.mark.parametrize("story,blocking", [
    ({}, set()),
    ({"error_percent": 3.0}, {"error rate"}),
    ({"memory": 81.0}, {"memory"}),
    ({"latency_ms": ()}, {"p50 latency", "p95 latency"}),
], ids=["healthy", "5xx", "memory", "no latency data"])
def test_status_allows_exactly_what_the_pack_lets_through(stack: moto_stack.Stack, prod_pack: PolicyPackServer,
                                                          outputs_file: Any, capsys: pytest.CaptureFixture[str],
                                                          story: dict[str, Any], blocking: set[str]) -> None:
    canary_story.telemetry(stack).soaked(50, **story)
    canary_story.all_alarms_ok(stack)
    code = main(["canary", "status", "--outputs", outputs_file(stack.outputs)])
    text = capsys.readouterr().out
    refused = {d.message.split("\n")[1].split(": ")[1] for d in prod_pack.analyze_resource(_raise_to(stack, 100)).for_policy(GATE)}
    assert refused == blocking
    assert (code == 0) == (not blocking)
    assert ("next step: 50% -> 100%: ALLOWED" in text) == (not blocking)
