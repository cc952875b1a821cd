"""`canary status`: live weights, the health gate's findings for the current step, and the next step.

The gate is the policy pack's own (`task_service_policies.health_gate`, imported through runbook/pack.py) with the
thresholds the deploy-time gate uses for this stack: the pack's defaults overlaid by `policy/config/<stack>.json`.
So what this prints as ALLOWED is what `pulumi up` under the pack lets through. It never changes weights: moving
forward is a reviewed config change (`pulumi config set canaryWeight N` + `pulumi up`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import jsonschema

from runbook.alb import RuleState, dimension_load_balancer, read_rule
from runbook.aws import Aws
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.integrity import dsn
from runbook.output import Invocation, Report
from runbook.outputs import Outputs
from runbook.pack import POLICY_DIR, health_gate
from runbook.report import CHECK_COLUMNS, Check, Status, records
from task_service import contract
from task_service.canary import next_step
from task_service.untrusted import InputError, read_json

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
    contract.LOADTEST_RESULT_PARAMETER,
)


def up_command(stack: str, *, refresh: bool = False) -> str:
    """A deploy of `stack` under the policy pack with that stack's policy config (`--refresh`: after changes made
    outside Pulumi)."""
    return f"pulumi up{' --refresh' if refresh else ''} -s {stack} --policy-pack policy --policy-pack-config policy/config/{stack}.json"


def deploy_command(stack: str, weight: int) -> str:
    """The exact, reviewed change that moves the canary to `weight`."""
    return f"pulumi config set {CONFIG_KEY} {weight} -s {stack} && {up_command(stack)}"


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
        config = read_json(path, "the file")
    except InputError as err:
        raise BadInput(f"{path} cannot be read as a policy config: {err}") from None
    if not isinstance(config, dict):
        raise BadInput(f"{path} cannot be read as a policy config: expected a JSON object of policies")
    section = config.get(health_gate.POLICY_NAME, {})
    given = {k: v for k, v in section.items() if k in health_gate.SCHEMA} if isinstance(section, dict) else {}
    try:
        jsonschema.validate(given, {"type": "object", "properties": health_gate.SCHEMA})
    except jsonschema.ValidationError as err:
        raise BadInput(f"{path}: {health_gate.POLICY_NAME}.{'.'.join(map(str, err.path))}: {err.message}") from None
    return Thresholds.from_config(given)


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
        load_test_parameter=out.string(contract.LOADTEST_RESULT_PARAMETER),
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
    weight = rule.service_share(out.string(contract.TARGET_GROUP_ARN))
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


def _next(report: Report, invocation: Invocation, out: Outputs, reading: Reading, checks: Sequence[Check]) -> None:
    """The verdict on the next step, and the commands for each way on: forward, watch, back, or on to integrity."""
    upcoming = next_step(reading.percent)
    ok = allowed(checks)
    report.exit_code = EXIT_OK if ok else EXIT_FAILED
    if upcoming is None:
        report.say("canary complete: the service takes 100%; next the integrity check, then the end of migration.", nextPercent=None)
        report.suggest("compare the tables (SOURCE_DSN: the monolith database)", integrity_command(invocation, out))
        return
    blocking = [c.name for c in checks if c.status is not Status.PASS]
    report.say(
        f"next step: {reading.percent}% -> {upcoming}%: {'ALLOWED' if ok else 'NOT ALLOWED'}"
        + ("" if ok else f" (blocked by: {', '.join(blocking)})"),
        nextPercent=upcoming,
        allowed=ok,
        blockedBy=blocking,
    )
    if ok:
        report.suggest("move forward", deploy_command(invocation.stack, upcoming))
        return
    report.suggest("watch the step", invocation.command("canary", "watch"))
    report.suggest("when it ends healthy", deploy_command(invocation.stack, upcoming))
    report.suggest("to go back instead", invocation.command("rollback", "--yes"))


def integrity_command(invocation: Invocation, out: Outputs) -> str:
    """`integrity` against the stack's database; the monolith's DSN is the operator's ($SOURCE_DSN)."""
    target = dsn(*(out.display(output) for output in (contract.DB_ADDRESS, contract.DB_PORT, contract.DB_NAME, contract.DB_USERNAME)))
    return f'{invocation.command("integrity", "--target", target)} --source "$SOURCE_DSN"'


def run(out: Outputs, aws: Aws, invocation: Invocation, window_minutes: int | None) -> Report:
    out.require(*NEEDS)
    stack = invocation.stack
    thresholds = thresholds_for(stack)
    if window_minutes is not None:
        if not 1 <= window_minutes <= 1440:
            raise BadInput(f"--window-minutes must be within 1..1440, got {window_minutes}.")
        thresholds = dataclasses.replace(thresholds, soak_minutes=window_minutes)
    configured = out.integer(contract.CANARY_WEIGHT)
    reading = read_or_bad_input(out, aws, thresholds)
    monolith, service = out.string(contract.MONOLITH_TARGET_GROUP_ARN), out.string(contract.TARGET_GROUP_ARN)
    report = Report()
    report.say(
        f"listener rule: monolith {reading.rule.weight(monolith)} / service {reading.rule.weight(service)} "
        f"-> service gets {reading.percent}%",
        monolithWeight=reading.rule.weight(monolith),
        serviceWeight=reading.rule.weight(service),
        livePercent=reading.percent,
    )
    config = str(policy_config_path(stack).relative_to(POLICY_DIR.parent))
    report.say(
        f"configured {CONFIG_KEY}: {configured}; gate thresholds: {config} ({health_gate.POLICY_NAME}), "
        f"soak window {thresholds.soak_minutes} minutes",
        configuredPercent=configured,
        policyConfig=config,
        soakMinutes=thresholds.soak_minutes,
    )
    if reading.soak is not None:
        report.say(f"soak: {reading.soak.detail}", soak=reading.soak.detail)
    checks = [_configured_check(reading, configured, stack), *map(as_check, reading.findings)]
    report.table("checks", CHECK_COLUMNS, records(checks))
    _next(report, invocation, out, reading, checks)
    return report
