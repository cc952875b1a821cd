"""`verify`'s rotation rows: against moto where it can show the state, and against DescribeSecret bodies where it cannot.

moto keeps RotationEnabled, RotationRules, RotationLambdaARN and the version stages as AWS does, so schedules,
functions, a rotation switched off and a rotation whose function never finished (AWSPENDING left behind) are shown
live. It cannot show time: it stamps LastRotatedDate when rotation is configured (AWS leaves it null until the first
rotation) and never ages it. Those states are DescribeSecret response bodies in the API's wire shape, parsed by
botocore exactly as a live call is, then judged by the same functions.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from runbook.cli import main
from runbook.report import Status
from runbook.rotation import Expected, last_rotation, schedule
from task_service import contract
from tests.runbook import moto_stack
from tests.runbook.report_rows import verify_rows

DAYS = 30
FUNCTION = "arn:aws:lambda:ap-northeast-1:123456789012:function:task-service-rotate-app"
SECRET = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:task-service/db-app-credentials-1aee72"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
EXPECTED = Expected(contract.DB_APP_SECRET_ARN, FUNCTION, DAYS)


MASTER, APP = f"rotation {contract.DB_SECRET_ARN.name}", f"rotation {contract.DB_APP_SECRET_ARN.name}"
LAST_MASTER, LAST_APP = f"last {MASTER}", f"last {APP}"


def test_a_deployed_stack_rotates_both_secrets_and_not_cognitos(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 0
    assert rows[MASTER] == ("PASS", f"on, every {DAYS} days, by {stack.names.prefix}-rotate-master")
    assert rows[APP] == ("PASS", f"on, every {DAYS} days, by {stack.names.prefix}-rotate-app")
    for row in (LAST_MASTER, LAST_APP):
        assert rows[row][0] == "PASS" and "(0.0 days ago)" in rows[row][1]
    assert rows[f"rotation {contract.COGNITO_SECRET_ARN.name}"] == (
        "N/A", "static identifiers (user pool and client ids), not credentials: no rotation, by design",
    )
    assert rows[f"secret {contract.DB_APP_SECRET_ARN.name}"] == ("PASS", "readable")


def test_a_rotation_whose_function_never_finished_fails(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """moto's function does nothing, so a manual rotation leaves its AWSPENDING version as a failed one does.

    The function is named in the call: moto forgets the stored one when RotateSecret comes without it, where AWS
    rotates "with the values already stored in the secret".
    """
    arn = stack.value(contract.DB_APP_SECRET_ARN)
    stack.client("secretsmanager").rotate_secret(SecretId=arn, RotationLambdaARN=stack.value(contract.DB_APP_ROTATION_FUNCTION_ARN))
    [stuck] = stack.pending_versions(contract.DB_APP_SECRET_ARN)
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    status, detail = rows[LAST_APP]
    assert code == 1 and status == "FAIL"
    assert detail.startswith(f"version {stuck} staged AWSPENDING without AWSCURRENT: a rotation failed or is still running")
    assert f"/aws/lambda/{stack.names.prefix}-rotate-app" in detail
    assert f"--secret-id {arn} --version-stage AWSPENDING --remove-from-version-id {stuck}" in detail
    assert rows[LAST_MASTER][0] == "PASS"


def test_rotation_switched_off_fails_the_schedule(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.client("secretsmanager").cancel_rotate_secret(SecretId=stack.value(contract.DB_SECRET_ARN))
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 1
    assert rows[MASTER] == ("FAIL", "rotation is off")
    assert rows[LAST_MASTER] == ("N/A", "rotation is off: there is no schedule to judge the last rotation by")
    assert rows[APP][0] == "PASS"


def test_another_schedule_or_function_fails(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    secrets = stack.client("secretsmanager")
    other = stack.client("lambda").create_function(
        FunctionName="someone-elses-rotation",
        Runtime="python3.12",
        Role=stack.client("iam").get_role(RoleName=f"{stack.names.prefix}-rotation")["Role"]["Arn"],
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": moto_stack.function_code()},
    )["FunctionArn"]
    for secret, function, days in ((contract.DB_SECRET_ARN, stack.value(contract.DB_ROTATION_FUNCTION_ARN), 90), (contract.DB_APP_SECRET_ARN, other, DAYS)):
        secrets.rotate_secret(SecretId=stack.value(secret), RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": days}, RotateImmediately=False)
        for version in stack.pending_versions(secret):
            secrets.update_secret_version_stage(SecretId=stack.value(secret), VersionStage="AWSPENDING", RemoveFromVersionId=version)
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 1
    assert rows[MASTER] == ("FAIL", f"every 90 days (outputs: every {DAYS} days)")
    assert rows[APP] == ("FAIL", f"function {other} (outputs: {stack.value(contract.DB_APP_ROTATION_FUNCTION_ARN)})")


def test_a_missing_secret_fails_its_rows_and_the_others_still_run(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.client("secretsmanager").delete_secret(SecretId=stack.value(contract.DB_APP_SECRET_ARN), ForceDeleteWithoutRecovery=True)
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 1
    assert rows[APP][0] == "FAIL" and "ResourceNotFoundException" in rows[APP][1]
    assert LAST_APP not in rows
    assert rows[MASTER][0] == "PASS" and rows["dms task"][0] == "PASS"


def test_outputs_without_the_rotation_period_are_bad_input(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """An outputs file written before the stack exported the period: one line, exit 2, no AWS call needed."""
    code = main(["verify", "--outputs", outputs_file(moto_stack.without(stack.outputs, contract.SECRET_ROTATION_DAYS))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: stack output '{contract.SECRET_ROTATION_DAYS.name}' ({contract.SECRET_ROTATION_DAYS.meaning}) is missing")


def _described(**fields: Any) -> dict[str, Any]:
    """A DescribeSecret body for the app secret with rotation configured (epoch seconds, as on the wire), parsed by
    botocore as a live response is: datetimes where the API has timestamps, absent fields absent."""
    body = {
        "ARN": SECRET,
        "Name": "task-service/db-app-credentials",
        "RotationEnabled": True,
        "RotationLambdaARN": FUNCTION,
        "RotationRules": {"AutomaticallyAfterDays": DAYS},
        "CreatedDate": (NOW - timedelta(days=10)).timestamp(),
        "VersionIdsToStages": {"c1e2-current": ["AWSCURRENT"]},
        **fields,
    }
    body = {key: value for key, value in body.items() if value is not None}
    shape = botocore.session.get_session().get_service_model("secretsmanager").operation_model("DescribeSecret").output_shape
    response = {"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}
    parsed: dict[str, Any] = create_parser("json").parse(response, shape)
    return parsed


def _epoch(days_ago: float) -> float:
    return (NOW - timedelta(days=days_ago)).timestamp()


def test_configured_but_never_rotated_is_not_available_until_the_first_rotation_is_due() -> None:
    """What `pulumi up` leaves (RotateImmediately false): no LastRotatedDate, NextRotationDate ahead."""
    check = last_rotation(_described(NextRotationDate=_epoch(-20)), EXPECTED, NOW)
    assert check.status is Status.NA
    assert check.detail == (
        "never rotated yet; first scheduled rotation by 2026-03-21 12:00 UTC: rotate once by hand now (docs/first-deploy.md, step 3)"
    )
    assert schedule(_described(NextRotationDate=_epoch(-20)), EXPECTED).status is Status.PASS


def test_never_rotated_after_the_first_rotation_was_due_fails() -> None:
    check = last_rotation(_described(NextRotationDate=_epoch(2)), EXPECTED, NOW)
    assert check.status is Status.FAIL
    assert check.detail == "never rotated, though the first rotation was due by 2026-02-27 12:00 UTC"


@pytest.mark.parametrize(("days_ago", "status"), [(1, Status.PASS), (DAYS + 0.9, Status.PASS), (DAYS + 1.1, Status.FAIL), (90, Status.FAIL)])
def test_the_last_rotation_may_be_one_day_late_at_most(days_ago: float, status: Status) -> None:
    check = last_rotation(_described(LastRotatedDate=_epoch(days_ago), NextRotationDate=_epoch(days_ago - DAYS)), EXPECTED, NOW)
    assert check.status is status
    assert check.detail.startswith(f"last rotated {(NOW - timedelta(days=days_ago)):%Y-%m-%d %H:%M} UTC")


def test_a_disabled_rotation_reports_no_dates() -> None:
    """AWS returns null LastRotatedDate and NextRotationDate once rotation is off; RotationRules keep the old schedule."""
    described = _described(RotationEnabled=False)
    assert "LastRotatedDate" not in described and described["RotationRules"] == {"AutomaticallyAfterDays": DAYS}
    assert schedule(described, EXPECTED).detail == "rotation is off"
    assert last_rotation(described, EXPECTED, NOW).status is Status.NA


def test_a_secret_never_configured_for_rotation_fails() -> None:
    described = _described(RotationEnabled=None, RotationLambdaARN=None, RotationRules=None)
    check = schedule(described, EXPECTED)
    assert (check.status, check.detail) == (Status.FAIL, "rotation was never configured on this secret")


def test_a_schedule_expression_is_shown_as_configured() -> None:
    described = _described(RotationRules={"AutomaticallyAfterDays": 7, "ScheduleExpression": "rate(7 days)"})
    assert schedule(described, EXPECTED).detail == f"rate(7 days) (outputs: every {DAYS} days)"
