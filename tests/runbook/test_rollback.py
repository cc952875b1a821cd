"""`rollback` against moto: from 50% to 100/0 with both groups, idempotent, safe by default."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from runbook import rollback
from runbook.aws import Aws
from runbook.cli import main
from runbook.canary import CONFIG_KEY
from runbook.outputs import load_outputs
from task_service import contract
from tests.runbook import moto_stack

MONOLITH, SERVICE = contract.MONOLITH_TARGET_GROUP_ARN, contract.TARGET_GROUP_ARN


def test_from_fifty_percent_to_all_monolith_keeping_both_groups(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.rule_weights() == {stack.value(MONOLITH): 50, stack.value(SERVICE): 50}
    assert main(["rollback", "--outputs", outputs_file(stack.outputs), "--yes"]) == 0
    assert stack.rule_weights() == {stack.value(MONOLITH): 100, stack.value(SERVICE): 0}
    text = capsys.readouterr().out
    assert "rollback took" in text and "within the 5-minute target" in text
    assert f"pulumi config set {CONFIG_KEY} 0 -s prod" in text
    rule = stack.client("elbv2").describe_rules(RuleArns=[stack.value(contract.LISTENER_RULE_ARN)])["Rules"][0]
    assert rule["Priority"] == str(stack.value(contract.LISTENER_RULE_PRIORITY))
    assert rule["Conditions"][0]["Values"] == [moto_stack.PATH_PATTERN]


def test_second_run_changes_nothing_and_says_so(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs)
    assert main(["rollback", "--outputs", path, "--yes"]) == 0
    capsys.readouterr()
    calls: list[str] = []
    hooked: set[int] = set()
    original = Aws.client

    def recording(self: Aws, service: str) -> Any:
        client = original(self, service)
        if id(client) not in hooked:
            hooked.add(id(client))
            client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return client

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Aws, "client", recording)
        assert main(["rollback", "--outputs", path, "--yes"]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert calls == ["DescribeRules"]


def test_dry_run_prints_the_call_and_changes_nothing(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    before = stack.rule_weights()
    assert main(["rollback", "--outputs", outputs_file(stack.outputs), "--dry-run", "--scale-to-zero"]) == 0
    text = capsys.readouterr().out
    assert "elbv2.modify_rule(RuleArn=" in text and "'Weight': 100" in text
    cluster, service = stack.value(contract.CLUSTER_NAME), stack.value(contract.SERVICE_NAME)
    assert f"ecs.update_service(cluster='{cluster}', service='{service}', desiredCount=0)" in text
    assert stack.rule_weights() == before
    assert stack.service()["desiredCount"] == 2


def test_non_interactive_without_yes_refuses(stack: moto_stack.Stack, outputs_file: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    before = stack.rule_weights()
    assert main(["rollback", "--outputs", outputs_file(stack.outputs)]) == 2
    assert "refusing to roll back without confirmation" in capsys.readouterr().err
    assert stack.rule_weights() == before


def test_interactive_answer_other_than_rollback_changes_nothing(stack: moto_stack.Stack, outputs_file: Any) -> None:
    out = load_outputs(outputs_file(stack.outputs), None)
    before = stack.rule_weights()
    code = rollback.run(out, Aws(stack.region), "prod", yes=False, dry_run=False, scale_to_zero=False, emit=lambda _: None, interactive=lambda: True, confirm=lambda: False)
    assert code == 1
    assert stack.rule_weights() == before


def test_scale_to_zero_pins_autoscaling_and_is_idempotent(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs)
    assert main(["rollback", "--outputs", path, "--yes", "--scale-to-zero"]) == 0
    assert stack.service()["desiredCount"] == 0
    target = stack.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 0)
    assert "pulumi up --refresh -s prod --policy-pack policy --policy-pack-config policy/config/prod.json" in capsys.readouterr().out
    assert main(["rollback", "--outputs", path, "--yes", "--scale-to-zero"]) == 0
    assert "nothing to change" in capsys.readouterr().out


def test_a_failing_step_does_not_skip_the_others(stack: moto_stack.Stack, outputs_file: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    original = Aws.client
    hooked: set[int] = set()

    def failing(self: Aws, service: str) -> Any:
        client = original(self, service)
        if service == "application-autoscaling" and id(client) not in hooked:
            hooked.add(id(client))
            def deny(**_: Any) -> None:
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "RegisterScalableTarget")
            client.meta.events.register("before-call.application-autoscaling.RegisterScalableTarget", deny)
        return client

    monkeypatch.setattr(Aws, "client", failing)
    assert main(["rollback", "--outputs", outputs_file(stack.outputs), "--yes", "--scale-to-zero"]) == 1
    text = capsys.readouterr().out
    assert "FAILED: pin autoscaling at 0" in text and "AccessDeniedException" in text
    assert "1 step(s) failed" in text
    assert stack.rule_weights() == {stack.value(MONOLITH): 100, stack.value(SERVICE): 0}
    assert stack.service()["desiredCount"] == 0


def test_an_unreadable_rule_still_scales_the_service_and_fails(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rule = stack.value(contract.LISTENER_RULE_ARN)
    outputs = moto_stack.with_values(stack.outputs, {contract.LISTENER_RULE_ARN: rule[:-4] + "dead"})
    assert main(["rollback", "--outputs", outputs_file(outputs), "--yes", "--scale-to-zero"]) == 1
    text = capsys.readouterr().out
    assert "FAILED reading the listener rule" in text
    assert "done: scale the service to 0" in text
    assert stack.service()["desiredCount"] == 0
