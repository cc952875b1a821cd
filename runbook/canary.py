"""`canary status`: live weights, the health gate's findings for the current step, and the next step.

The gate is the policy pack's own (`task_service_policies.health_gate`, imported through runbook/pack.py) with the
thresholds the deploy-time gate uses for this stack: the pack's defaults overlaid by `policy/config/<stack>.json`.
So what this prints as ALLOWED is what `pulumi up` under the pack lets through. It never changes weights: moving
forward is a reviewed config change (`pulumi config set canaryWeight N` + `pulumi up`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from runbook.alb import RuleState, dimension_load_balancer, read_rule
from runbook.aws import Aws
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.outputs import Outputs
from runbook.pack import POLICY_DIR, health_gate
from runbook.report import Check, Status, table
from task_service import contract
from task_service.canary import next_step
from task_service.naming import Naming, Role

Finding = health_gate.Finding
Outcome = health_gate.Outcome
Thresholds = health_gate.Thresholds

CONFIG_KEY = "canaryWeight"
"""The stack config key (`task-service:canaryWeight`) that moves the canary; the output of that name only reports it."""

NEEDS = (
    contract.LISTENER_ARN,
    contract.LISTENER_RULE_ARN,
    contract.TARGET_GROUP_ARN,
    contract.MONOLITH_TARGET_GROUP_ARN,
    contract.CANARY_WEIGHT,
    contract.CLUSTER_NAME,
    contract.SERVICE_NAME,
    contract.ALARM_NAMES,
)


def up_command(stack: str) -> str:
    """A deploy of `stack` under the policy pack with that stack's policy config."""
    return f"pulumi up -s {stack} --policy-pack policy --policy-pack-config policy/config/{stack}.json"


def deploy_command(stack: str, weight: int) -> str:
    """The exact, reviewed change that moves the canary to `weight`."""
    return f"pulumi config set {CONFIG_KEY} {weight} -s {stack} && {up_command(stack)}"


def runbook_command(stack: str, outputs_path: str | None, action: str = "canary watch") -> str:
    """A runbook command for this stack, with the outputs file the operator gave (none: the pulumi CLI's)."""
    return f"python -m runbook {action} --stack {stack}" + (f" --outputs {outputs_path}" if outputs_path else "")


def policy_config_path(stack: str) -> Path:
    return POLICY_DIR / "config" / f"{stack}.json"


def thresholds_for(stack: str) -> Thresholds:
    """The gate's thresholds for `stack`: the pack's defaults, overlaid by the gate's part of its policy config."""
    return thresholds_from(policy_config_path(stack))


def thresholds_from(path: Path) -> Thresholds:
    """The pack's defaults overlaid by the gate's section of the policy config at `path` (none: the defaults)."""
    if not path.is_file():
        return Thresholds.from_config()
    try:
        section = json.loads(path.read_text(encoding="utf-8")).get(health_gate.POLICY_NAME, {})
    except (OSError, ValueError, AttributeError) as err:
        raise BadInput(f"{path} cannot be read as a policy config: {err}") from None
    given = {k: v for k, v in section.items() if k in health_gate.SCHEMA} if isinstance(section, dict) else {}
    try:
        jsonschema.validate(given, {"type": "object", "properties": health_gate.SCHEMA})
    except jsonschema.ValidationError as err:
        raise BadInput(f"{path}: {health_gate.POLICY_NAME}.{'.'.join(map(str, err.path))}: {err.message}") from None
    return Thresholds.from_config(given)


def stack_naming(out: Outputs) -> Naming:
    """The stack's names: its prefix is its ECS service's name (Role.SERVICE is `{prefix}`, never shortened)."""
    return Naming(out.string(contract.SERVICE_NAME))


def share(rule: RuleState, service_arn: str) -> float:
    """The service's exact share of the rule's traffic in percent (weights are relative)."""
    total = sum(rule.weights.values())
    return 100.0 * rule.weight(service_arn) / total if total else 0.0


def subject(out: Outputs, rule: RuleState) -> health_gate.Subject:
    service = out.string(contract.TARGET_GROUP_ARN)
    others = tuple(arn for arn in rule.weights if arn != service) or (out.string(contract.MONOLITH_TARGET_GROUP_ARN),)
    return health_gate.Subject(
        load_balancer=dimension_load_balancer(out.string(contract.LISTENER_ARN)),
        canary_group_arn=service,
        baseline_group_arns=others,
        cluster=out.string(contract.CLUSTER_NAME),
        service=out.string(contract.SERVICE_NAME),
        alarm_names=tuple(out.strings(contract.ALARM_NAMES)),
        load_test_parameter=stack_naming(out).of(Role.LOADTEST_RESULT),
    )


@dataclass(frozen=True)
class Reading:
    """One look at the live step: its weight and the gate's findings for raising it."""

    rule: RuleState
    weight: float
    findings: list[Finding]

    @property
    def percent(self) -> int:
        return round(self.weight)

    @property
    def breaches(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome is Outcome.BREACH]

    @property
    def soak(self) -> Finding | None:
        return next((f for f in self.findings if f.gate == "soak"), None)


def read(out: Outputs, aws: Aws, thresholds: Thresholds) -> Reading:
    """The live rule and the gate's findings; AWS unreachable raises health_gate.Unreachable."""
    rule = read_rule(aws.client("elbv2"), out.string(contract.LISTENER_RULE_ARN))
    weight = share(rule, out.string(contract.TARGET_GROUP_ARN))
    return Reading(rule, weight, health_gate.evaluate(aws.client, subject(out, rule), thresholds, weight))


def read_or_bad_input(out: Outputs, aws: Aws, thresholds: Thresholds) -> Reading:
    try:
        return read(out, aws, thresholds)
    except health_gate.Unreachable as err:
        raise BadInput(f"AWS cannot be read: {err.reason}") from None


def as_check(finding: Finding) -> Check:
    status = {Outcome.PASS: Status.PASS, Outcome.MISSING: Status.NA}.get(finding.outcome, Status.FAIL)
    return Check(finding.gate, status, finding.detail)


def allowed(checks: Sequence[Check]) -> bool:
    """Forward only on evidence: a gate that could not be measured blocks like a failed one."""
    return bool(checks) and all(c.status is Status.PASS for c in checks)


def _configured_check(reading: Reading, configured: int, stack: str) -> Check:
    live = reading.percent
    return Check(
        "live weight == configured",
        Status.PASS if live == configured else Status.FAIL,
        f"live {live}%, configured {configured}%" + ("" if live == configured else f" (after a rollback: {deploy_command(stack, live)})"),
    )


def next_lines(reading: Reading, checks: Sequence[Check], stack: str, outputs_path: str | None) -> list[str]:
    """The verdict on the next step and the exact command(s) for it."""
    upcoming = next_step(reading.percent)
    if upcoming is None:
        return ["canary complete: the service takes 100%. Next: `python -m runbook integrity`, then the end of migration."]
    ok = allowed(checks)
    lines = [f"next step: {reading.percent}% -> {upcoming}%: {'ALLOWED' if ok else 'NOT ALLOWED'}"]
    if ok:
        return lines + [f"  {deploy_command(stack, upcoming)}"]
    blocking = [c.name for c in checks if c.status is not Status.PASS]
    return lines + [
        f"  blocked by: {', '.join(blocking)}. Watch the step: {runbook_command(stack, outputs_path)}",
        f"  when it ends healthy: {deploy_command(stack, upcoming)}",
        f"  to go back instead: {runbook_command(stack, outputs_path, 'rollback')}",
    ]


def run(out: Outputs, aws: Aws, stack: str, window_minutes: int | None, outputs_path: str | None,
        emit: Callable[[str], Any] = print) -> int:
    out.require(*NEEDS)
    thresholds = thresholds_for(stack)
    if window_minutes is not None:
        if not 1 <= window_minutes <= 1440:
            raise BadInput(f"--window-minutes must be within 1..1440, got {window_minutes}.")
        thresholds = dataclasses.replace(thresholds, soak_minutes=window_minutes)
    configured = out.integer(contract.CANARY_WEIGHT)
    reading = read_or_bad_input(out, aws, thresholds)
    monolith, service = out.string(contract.MONOLITH_TARGET_GROUP_ARN), out.string(contract.TARGET_GROUP_ARN)
    emit(f"listener rule: monolith {reading.rule.weight(monolith)} / service {reading.rule.weight(service)} "
         f"-> service gets {reading.percent}%")
    emit(f"configured {CONFIG_KEY}: {configured}; gate thresholds: {policy_config_path(stack).relative_to(POLICY_DIR.parent)} "
         f"({health_gate.POLICY_NAME}), soak window {thresholds.soak_minutes} minutes")
    if reading.soak is not None:
        emit(f"soak: {reading.soak.detail}")
    checks = [_configured_check(reading, configured, stack), *map(as_check, reading.findings)]
    emit(table(checks))
    for line in next_lines(reading, checks, stack, outputs_path):
        emit(line)
    return EXIT_OK if allowed(checks) else EXIT_FAILED
