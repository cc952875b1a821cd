"""`verify`'s rotation rows: both database secrets rotate on schedule, by the stack's functions, and the last one finished.

DescribeSecret tells it all without reading a value: RotationEnabled, RotationRules, RotationLambdaARN,
LastRotatedDate and NextRotationDate, and VersionIdsToStages, where a version staged AWSPENDING without AWSCURRENT is a
rotation that failed or is still running (RotateSecret refuses to start another until the label is removed). The
period and the functions come from the stack's outputs. A rotation is late once its period plus one day has passed:
Secrets Manager adds the period to the last rotation and picks the hour within that day. The Cognito secret holds
static identifiers and does not rotate, by design: its row is N/A, not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from runbook.aws import Aws, error_text, is_auth_error
from runbook.outputs import Outputs
from runbook.report import Check, Status
from task_service import contract
from task_service.contract import Output

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
GRACE = timedelta(days=1)
ROTATED = (
    (contract.DB_SECRET_ARN, contract.DB_ROTATION_FUNCTION_ARN),
    (contract.DB_APP_SECRET_ARN, contract.DB_APP_ROTATION_FUNCTION_ARN),
)
"""Each rotated secret, and the output naming its function."""
NEEDS = (contract.SECRET_ROTATION_DAYS, *(output for pair in ROTATED for output in pair))
STATIC = "static identifiers (user pool and client ids), not credentials: no rotation, by design"


@dataclass(frozen=True)
class Expected:
    """What the stack configured for one secret."""

    secret: Output
    function_arn: str
    days: int


def _function(arn: str) -> str:
    """A Lambda ARN's function name, for rows an operator reads."""
    return arn.rsplit(":", 1)[-1] or arn


def log_group(function_arn: str) -> str:
    """Where a Lambda function logs: `/aws/lambda/<name>`."""
    return f"/aws/lambda/{_function(function_arn)}"


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def schedule(description: Mapping[str, Any], expected: Expected) -> Check:
    """Rotation on, every `days` days, by the stack's function."""
    name = f"rotation {expected.secret.name}"
    if "RotationEnabled" not in description:
        return Check(name, Status.FAIL, "rotation was never configured on this secret")
    rules = description.get("RotationRules", {})
    days = rules.get("AutomaticallyAfterDays")
    function = str(description.get("RotationLambdaARN") or "")
    problems = [] if description["RotationEnabled"] else ["rotation is off"]
    if days != expected.days:
        shown = rules.get("ScheduleExpression") or (f"every {days} days" if days else "no schedule")
        problems.append(f"{shown} (outputs: every {expected.days} days)")
    if function != expected.function_arn:
        problems.append(f"function {function or 'none'} (outputs: {expected.function_arn})")
    if problems:
        return Check(name, Status.FAIL, "; ".join(problems))
    return Check(name, Status.PASS, f"on, every {days} days, by {_function(function)}")


def last_rotation(description: Mapping[str, Any], expected: Expected, now: datetime) -> Check:
    """The last rotation finished (nothing left at AWSPENDING) and is not older than the period plus a day."""
    name = f"last rotation {expected.secret.name}"
    stages: Mapping[str, list[str]] = description.get("VersionIdsToStages", {})
    stuck = sorted(version for version, labels in stages.items() if PENDING in labels and CURRENT not in labels)
    if stuck:
        return Check(
            name,
            Status.FAIL,
            f"version {', '.join(stuck)} staged {PENDING} without {CURRENT}: a rotation failed or is still running "
            f"(log group {log_group(expected.function_arn)}); once it failed, remove the label with "
            f"`aws secretsmanager update-secret-version-stage --secret-id {description.get('ARN', expected.secret.name)} "
            f"--version-stage {PENDING} --remove-from-version-id {stuck[0]}` and rotate again",
        )
    if not description.get("RotationEnabled"):
        return Check(name, Status.NA, "rotation is off: there is no schedule to judge the last rotation by")
    period = timedelta(days=expected.days)
    last = description.get("LastRotatedDate")
    if isinstance(last, datetime):
        age = (now - last).total_seconds() / 86400
        if now > last + period + GRACE:
            return Check(name, Status.FAIL, f"last rotated {_when(last)}, {age:.1f} days ago: later than every {expected.days} days (+1)")
        return Check(name, Status.PASS, f"last rotated {_when(last)} ({age:.1f} days ago), next by {_when(last + period)}")
    due = description.get("NextRotationDate")
    if not isinstance(due, datetime):
        return Check(name, Status.NA, "never rotated, and DescribeSecret gives no NextRotationDate")
    if now > due + GRACE:
        return Check(name, Status.FAIL, f"never rotated, though the first rotation was due by {_when(due)}")
    return Check(name, Status.NA, f"never rotated yet; first scheduled rotation by {_when(due)}: rotate once by hand now (docs/first-deploy.md, step 3)")


def rotation_checks(out: Outputs, aws: Aws, now: datetime | None = None) -> list[Check]:
    """Two rows per database secret (schedule, last rotation) and the Cognito secret's N/A row."""
    client = aws.client("secretsmanager")
    moment = now or datetime.now(timezone.utc)
    days = out.integer(contract.SECRET_ROTATION_DAYS)
    checks: list[Check] = []
    for secret, function in ROTATED:
        expected = Expected(secret, out.string(function), days)
        try:
            description = client.describe_secret(SecretId=out.string(secret))
        except ClientError as err:
            if is_auth_error(err):
                raise
            checks.append(Check(f"rotation {secret.name}", Status.FAIL, error_text(err)))
            continue
        checks += [schedule(description, expected), last_rotation(description, expected, moment)]
    checks.append(Check(f"rotation {contract.COGNITO_SECRET_ARN.name}", Status.NA, STATIC))
    return checks
