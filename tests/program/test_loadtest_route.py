"""The load test's route (`testRoute`): off by default; when on, a header-gated rule to the service only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preview.engine import ProgramError, Recording, run_program
from preview.wire import SIGNATURE_KEY as SECRET_SIG, UNKNOWN
from task_service import contract
from task_service.canary import CANARY_TAG, TEST_ROUTE_HEADER

ROOT = Path(__file__).resolve().parents[2]
ON = {"task-service:testRoute.enabled": True}
RULE = "aws:lb/listenerRule:ListenerRule"


@pytest.fixture(scope="module")
def prod_on() -> Recording:
    return run_program(ROOT, "prod", ON, preview=False)


def test_off_by_default_in_both_stacks(prod: Recording, dev: Recording) -> None:
    for recording in (prod, dev):
        assert not [r for r in recording.resources if "test-route" in r.name]
        assert contract.TEST_ROUTE_SECRET_ARN.name not in recording.outputs
        assert recording.outputs[contract.LOADTEST_RESULT_PARAMETER.name].endswith("/loadtest/result")


def test_the_rule_needs_the_header_and_forwards_to_the_service_only(prod_on: Recording) -> None:
    rule = prod_on.one(RULE, "task-service-test-route-rule")
    weighted = prod_on.one(RULE, "task-service-route-rule")
    assert rule.inputs["priority"] < weighted.inputs["priority"]
    assert rule.inputs["listenerArn"] == weighted.inputs["listenerArn"]
    paths, header = rule.inputs["conditions"]
    assert paths["pathPattern"]["values"] == weighted.inputs["conditions"][0]["pathPattern"]["values"]
    assert header["httpHeader"]["httpHeaderName"] == TEST_ROUTE_HEADER
    assert [r.name for r in prod_on.resources if r.urn in rule.property_dependencies["conditions"]] == ["task-service-test-route-value"]
    [action] = rule.inputs["actions"]
    assert action["type"] == "forward" and "forward" not in action
    [target] = rule.property_dependencies["actions"]
    assert target.endswith("::task-service-route-tg")
    assert CANARY_TAG not in rule.inputs["tags"]  # not a canary split: the weights stay the weighted rule's


def test_the_header_value_is_a_secret_shared_by_the_rule_and_the_secret(prod_on: Recording) -> None:
    value = prod_on.one("random:index/randomPassword:RandomPassword", "task-service-test-route-value")
    assert value.inputs["special"] is False and value.inputs["length"] >= 32  # no ALB wildcards (* ?) in it
    rule = prod_on.one(RULE, "task-service-test-route-rule")
    [header_value] = rule.inputs["conditions"][1]["httpHeader"]["values"]
    assert header_value[SECRET_SIG]  # marked secret on the wire, so never shown in a diff or state in clear
    secret = prod_on.one("aws:secretsmanager/secret:Secret", "task-service-test-route-secret")
    assert secret.inputs["name"] == "task-service/test-route-header"
    assert secret.inputs["kmsKeyId"]
    version = prod_on.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-test-route-secret-version")
    document = json.loads(version.inputs["secretString"]["value"])
    assert document == {"header": TEST_ROUTE_HEADER, "value": header_value["value"]}
    assert prod_on.outputs[contract.TEST_ROUTE_SECRET_ARN.name] != UNKNOWN
    assert contract.TEST_ROUTE_RULE_ARN.name in prod_on.outputs


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"task-service:testRoute": {"enabled": True, "priority": 10}}, "task-service:testRoute.priority must be lower than route.priority (10)"),
        ({"task-service:testRoute": {"enabled": True, "priority": 0}}, "task-service:testRoute.priority must be between 1 and 50000"),
        ({"task-service:testRoute.enabled": "yes"}, "task-service:testRoute.enabled must be true or false"),
        ({"task-service:testRoute.enabeld": True}, "task-service:testRoute.enabeld is not a known setting"),
        (
            {**ON, "task-service:route.pathPatterns": ["/a", "/b", "/c", "/d", "/e"]},
            "task-service:route.pathPatterns must list at most 3 item(s)",  # ALB: 3 values per condition
        ),
        ({**ON, "task-service:service.image": None}, "task-service:testRoute.enabled must be false until service.image is set"),
    ],
)
def test_bad_settings_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ProgramError) as caught:
        run_program(ROOT, "prod", overrides)
    assert message in str(caught.value) and str(caught.value).endswith("in Pulumi.prod.yaml")
