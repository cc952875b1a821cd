"""db-secret-rotation: every database credentials secret has a rotation schedule within the maximum."""

from __future__ import annotations

from typing import Any, Optional

import pytest

import policy_factories as f
from policy_harness import Outcome, run_stack
from task_service_policies import secrets

POLICY = secrets.db_secret_rotation
ROTATION = "task-service-rotation"


def stack(rotation: Optional[dict[str, Any]] = None, *, secret_name: str = "task-service/db-password",
          linked: bool = False, config: Optional[dict[str, Any]] = None) -> Outcome:
    resources = [(f.SECRET, "task-service-db-secret", f.secret(name=secret_name)),
                 (f.SECRET, "task-service-cognito-secret", f.secret(name="task-service/cognito-config"))]
    if rotation is not None:
        resources.append((f.SECRET_ROTATION, ROTATION, rotation))
    links = {ROTATION: {"secretId": ["task-service-db-secret"]}} if linked else None
    return run_stack(POLICY, resources, config=config, links=links)


def test_a_rotating_db_secret_passes_and_cognito_needs_none() -> None:
    assert stack(f.secret_rotation()).ok


def test_a_db_secret_without_rotation_is_caught() -> None:
    outcome = stack(None)
    [message] = outcome.messages
    assert "secret 'task-service/db-password' has no rotation schedule" in message and "Remediation: " in message
    assert outcome.urns == ["urn:pulumi:prod::task-service::aws:secretsmanager/secret:Secret::task-service-db-secret"]


def test_a_rotation_of_another_secret_does_not_count() -> None:
    assert stack(f.secret_rotation(secretId="task-service/cognito-config")).messages


def test_linked_by_property_dependency_while_the_secret_id_is_unknown() -> None:
    rotation = f.secret_rotation(secretId=f.UNKNOWN)
    assert stack(rotation, linked=True).ok
    assert stack(rotation, linked=False).messages  # unknown and unlinked: nothing proves it targets the secret


def test_linked_by_a_known_secret_arn() -> None:
    arn = f"arn:aws:secretsmanager:{f.REGION}:{f.ACCOUNT}:secret:task-service/db-password-AbCdEf"
    assert stack(f.secret_rotation(secretId=arn)).ok


@pytest.mark.parametrize("changes,expected", [
    ({"rotationRules": {"automaticallyAfterDays": 31}}, "automaticallyAfterDays is 31; at most 30"),
    ({"rotationRules": {}}, "neither automaticallyAfterDays nor a scheduleExpression"),
    ({"rotationLambdaArn": None}, "rotationLambdaArn is not set"),
    ({"rotationEnabled": False}, "rotationEnabled is false"),
])
def test_a_rotation_that_does_not_rotate_is_caught(changes: dict[str, Any], expected: str) -> None:
    outcome = stack(f.secret_rotation(**changes))
    assert any(expected in m for m in outcome.messages), outcome.messages
    assert outcome.urns == [f"urn:pulumi:prod::task-service::{f.SECRET_ROTATION}::{ROTATION}"]


def test_schedule_expressions_and_unknown_lambda_arns_count() -> None:
    assert stack(f.secret_rotation(rotationRules={"scheduleExpression": "rate(10 days)"})).ok
    assert stack(f.secret_rotation(rotationLambdaArn=f.UNKNOWN)).ok


def test_config_pattern_and_maximum() -> None:
    assert stack(None, secret_name="task-service/api-key").ok  # not a database secret by the default pattern
    assert stack(None, secret_name="task-service/api-key", config={"secretNamePattern": "api-key"}).messages
    assert stack(f.secret_rotation(rotationRules={"automaticallyAfterDays": 60}), config={"maximumRotationDays": 90}).ok
