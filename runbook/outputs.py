"""Stack outputs: one loader and typed accessors, so every command reports a bad key the same way.

Sources, in order: `--outputs FILE` (the JSON of `pulumi stack output --json --show-secrets`, or the
hermetic preview's file in the same shape); else the `pulumi` CLI when it is on PATH; else a clear
message. Values the engine does not know yet (preview) and secrets printed without
`--show-secrets` count as "not available": `render` says so at the step, live commands stop.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runbook.errors import BadInput

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_PLACEHOLDER = "[secret]"

Kind = Literal["string", "integer", "strings", "optional_string"]

# What each key means, used in messages so the operator knows what is expected.
DESCRIPTIONS: dict[str, str] = {
    "region": "the AWS region, e.g. ap-northeast-1",
    "stack": "the stack name",
    "project": "the Pulumi project name",
    "dbInstanceId": "the RDS instance identifier",
    "dbEndpoint": "the RDS endpoint host:port",
    "dbAddress": "the RDS host name",
    "dbPort": "the RDS port (integer)",
    "dbName": "the Task Service database name",
    "dbUsername": "the Task Service database user",
    "dbSecretArn": "the ARN of secret task-service/db-password",
    "dbEngineVersion": "the actual RDS engine version, e.g. 16.4",
    "clusterName": "the ECS cluster name",
    "serviceName": "the ECS service name",
    "autoscalingMin": "the autoscaling minimum (integer)",
    "autoscalingMax": "the autoscaling maximum (integer)",
    "listenerArn": "the ARN of the monolith ALB listener",
    "listenerRuleArn": "the ARN of the weighted /api/tasks/* listener rule",
    "listenerRulePriority": "the listener rule priority (integer)",
    "targetGroupArn": "the ARN of target group task-service-tg",
    "monolithTargetGroupArn": "the ARN of the monolith's target group",
    "canaryWeight": "the configured canary weight of the service (integer 0-100)",
    "dmsReplicationTaskArn": "the ARN of the DMS replication task (null when DMS is disabled)",
    "dmsReplicationInstanceArn": "the ARN of the DMS replication instance",
    "dmsSourceEndpointArn": "the ARN of the DMS source endpoint",
    "dmsTargetEndpointArn": "the ARN of the DMS target endpoint",
    "dmsTables": "the list of replicated tables, e.g. [\"public.tasks\"]",
    "alarmTopicArn": "the ARN of the alarm SNS topic",
    "alarmNames": "the list of CloudWatch alarm names",
    "dashboardName": "the CloudWatch dashboard name",
    "dashboardUrl": "the CloudWatch dashboard URL",
    "cognitoSecretArn": "the ARN of secret task-service/cognito-config",
    "executionRoleName": "the ECS execution role name",
    "taskRoleName": "the ECS task role name",
    "monolithDbAppUser": "the monolith's application DB user (for the REVOKE step)",
    "monolithDbHost": "the monolith database host (DMS source, integrity --source)",
    "monolithDbName": "the monolith database name",
    "ecrRepositoryUrl": "the ECR repository URL",
    "logGroupName": "the CloudWatch log group of the service",
}


def _not_known(value: Any) -> str | None:
    """Why a value is not usable, or None when it is."""
    if value == UNKNOWN_SENTINEL:
        return "unknown until the stack is deployed (this looks like preview output)"
    if value == SECRET_PLACEHOLDER:
        return "a secret printed without --show-secrets"
    if isinstance(value, list) and any(_not_known(item) for item in value):
        return "a list with values unknown until the stack is deployed"
    return None


@dataclass(frozen=True)
class Outputs:
    """The outputs of one stack, with accessors that fail the same way for every command."""

    values: dict[str, Any]
    source: str

    def reason_unavailable(self, key: str) -> str | None:
        """None when `key` holds a real value; otherwise a short reason fit for a runbook note."""
        if key not in self.values or self.values[key] is None:
            return f"missing from {self.source}"
        return _not_known(self.values[key])

    def available(self, key: str) -> bool:
        return self.reason_unavailable(key) is None

    def _raw(self, key: str) -> Any:
        reason = self.reason_unavailable(key)
        if reason is not None:
            expected = DESCRIPTIONS.get(key, "a value")
            raise BadInput(f"stack output '{key}' ({expected}) is {reason}.")
        return self.values[key]

    def _bad_type(self, key: str, value: Any, kind: str) -> BadInput:
        return BadInput(
            f"stack output '{key}' in {self.source} should be {kind}, got {type(value).__name__} {value!r}."
        )

    def string(self, key: str) -> str:
        value = self._raw(key)
        if not isinstance(value, str) or not value:
            raise self._bad_type(key, value, "a non-empty string")
        return value

    def integer(self, key: str) -> int:
        value = self._raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad_type(key, value, "an integer")
        return value

    def strings(self, key: str) -> list[str]:
        value = self._raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad_type(key, value, "a list of strings")
        return value

    def optional_string(self, key: str) -> str | None:
        """For outputs that are legitimately absent or null (DMS in dev); unknown still fails."""
        if self.values.get(key) is None:
            return None
        return self.string(key)

    def require(self, spec: dict[str, Kind]) -> None:
        """Check every key a command needs before it touches AWS, so a bad file changes nothing.

        `spec` maps each key to the accessor that reads it.
        """
        problems = []
        for key, kind in spec.items():
            try:
                getattr(self, kind)(key)
            except BadInput as err:
                problems.append(str(err))
        if len(problems) == 1:
            raise BadInput(problems[0])
        if problems:
            raise BadInput(f"{len(problems)} stack outputs are not usable:\n  " + "\n  ".join(problems))

    def display(self, key: str) -> str:
        """The value as text for the rendered runbook, or a visible placeholder."""
        if not self.available(key):
            return f"<{key}: not available>"
        value = self.values[key]
        return ", ".join(value) if isinstance(value, list) else str(value)


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(
            f"{source} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
            "expected the output of `pulumi stack output --json --show-secrets`."
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"{source} should hold a JSON object of stack outputs, got {type(data).__name__}.")
    return data


def _from_cli(stack: str | None) -> Outputs:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets"]
    if stack:
        command += ["--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BadInput(f"`{' '.join(command)}` could not run: {err}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise BadInput(f"`{' '.join(command)}` failed (exit {done.returncode}): {detail[0]}")
    source = f"`pulumi stack output` of stack {stack or '(selected)'}"
    return Outputs(_parse(done.stdout, source), source)


def load_outputs(path: str | None, stack: str | None) -> Outputs:
    """Read the outputs from `path`, else from the pulumi CLI; check they belong to `stack`."""
    if path is not None:
        file = Path(path)
        source = f"outputs file {path}"
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BadInput(
                f"outputs file {path} does not exist; expected the JSON written by "
                "`pulumi stack output --json --show-secrets --stack <stack> > FILE`."
            ) from None
        except (OSError, UnicodeDecodeError) as err:
            raise BadInput(f"outputs file {path} cannot be read: {err}") from None
        outputs = Outputs(_parse(text, source), source)
    elif shutil.which("pulumi"):
        outputs = _from_cli(stack)
    else:
        raise BadInput(
            "no stack outputs: pass --outputs FILE (written by `pulumi stack output --json "
            "--show-secrets --stack <stack>`), or install the pulumi CLI and log in."
        )
    recorded = outputs.values.get("stack")
    if stack and isinstance(recorded, str) and outputs.available("stack") and recorded != stack:
        raise BadInput(f"--stack {stack} does not match {outputs.source}, which is for stack '{recorded}'.")
    return outputs


def stack_name(outputs: Outputs, override: str | None) -> str:
    """The stack the commands talk about: --stack wins, else the outputs' own `stack`."""
    return override if override else outputs.string("stack")


def region_name(outputs: Outputs, override: str | None) -> str:
    """--region wins over the outputs' `region`."""
    return override if override else outputs.string("region")
