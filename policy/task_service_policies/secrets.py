"""Secrets: database credentials rotate on a schedule, so a leaked password expires on its own."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional

from pulumi_policy import Severity, StackValidationArgs
from pulumi_policy.policy import PolicyResource

from .common import (
    SECRET, SECRET_ROTATION, as_bool, as_number, fmt_number, is_set, is_type, known_or, physical_name, stack_policy,
)

StackReport = Callable[[str, Optional[str]], None]


def _rotates(rotation: PolicyResource, secret: PolicyResource) -> bool:
    """The rotation targets this secret: its secretId depends on the secret (a preview), or names it (an update)."""
    if any(dependency.urn == secret.urn for dependency in rotation.property_dependencies.get("secretId", [])):
        return True
    secret_id = known_or(rotation.props, "secretId")
    name = physical_name(secret)
    return isinstance(secret_id, str) and (secret_id == name or re.search(rf":secret:{re.escape(name)}-[A-Za-z0-9]{{6}}\Z", secret_id) is not None)


def _schedule_problem(rotation: PolicyResource, maximum: float) -> Optional[str]:
    props = rotation.props
    if as_bool(props.get("rotationEnabled")) is False:
        return "rotationEnabled is false"
    if not is_set(props, "rotationLambdaArn"):
        return "rotationLambdaArn is not set, so nothing can rotate it"
    days = as_number(known_or(props, "rotationRules", "automaticallyAfterDays"))
    if days is None:
        if is_set(props, "rotationRules", "scheduleExpression"):
            return None
        return "rotationRules sets neither automaticallyAfterDays nor a scheduleExpression"
    if days > maximum:
        return f"rotationRules.automaticallyAfterDays is {fmt_number(days)}; at most {fmt_number(maximum)} is allowed"
    return None


def _check_rotation(args: StackValidationArgs, cfg: Mapping[str, Any], report: StackReport) -> None:
    pattern = cfg["secretNamePattern"]
    maximum = float(cfg["maximumRotationDays"])
    rotations = [r for r in args.resources if is_type(r.resource_type, SECRET_ROTATION)]
    for secret in [r for r in args.resources if is_type(r.resource_type, SECRET)]:
        name = physical_name(secret)
        if not re.search(pattern, name):
            continue
        linked = [rotation for rotation in rotations if _rotates(rotation, secret)]
        if not linked:
            report(f"secret '{name}' has no rotation schedule (no aws:secretsmanager/SecretRotation targets it).", secret.urn)
        for rotation in linked:
            problem = _schedule_problem(rotation, maximum)
            if problem:
                report(f"secret '{name}' does not rotate: {problem}.", rotation.urn)


db_secret_rotation = stack_policy(
    name="db-secret-rotation",
    area="secrets",
    description="Database credentials secrets rotate automatically, at least every configured number of days.",
    check=_check_rotation,
    remediation="add an aws.secretsmanager.SecretRotation for the secret with AWS's RDS PostgreSQL rotation "
                "function and rotationRules.automaticallyAfterDays within the maximum.",
    severity=Severity.HIGH,
    config={
        "secretNamePattern": {
            "type": "string", "default": "/db-",
            "description": "Regex (re.search) on secret names that hold database credentials.",
        },
        "maximumRotationDays": {
            "type": "integer", "minimum": 1, "maximum": 365, "default": 30,
            "description": "Longest rotation interval accepted, in days.",
        },
    },
)

POLICIES = [db_secret_rotation]
