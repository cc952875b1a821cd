"""`preflight`: before the first deploy, check the existing estate a stack's config points at (read-only).

No stack outputs are needed: the stack's config is read with the program's own loader (`preview.stack_files` as the
CLI merges the files, then `stack_config.parse`), and ids left to the monolith's stack are read from its outputs
(`pulumi stack output --json`, or `--references DIR` files named like `stack-references/`). Then, against AWS:
the VPC, subnets (>= 2 AZs), listener, ALB security group and monolith target group exist; the rule priority is
free on the listener or held by our own rule (its canary tag names our target group); the monolith target group's
stickiness suits a weighted rule with group stickiness off; the DMS account roles exist unless this stack creates
them; the monolith DB's parameter group has `rds.logical_replication=1` for CDC; the monolith secret carries
host/port/username/password; the service image is in ECR; with DMS on, `backup-<stack>.json` in the current directory
names a recent encrypted snapshot of the monolith DB that still exists (`runbook backup`; required before
`dms start`). Each failure comes with one line of remedy.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

import stack_config
from preview.stack_files import load_stack
from runbook import backup, snapshots
from runbook.aws import Aws, error_code, error_text, is_auth_error, reachable
from runbook.errors import EXIT_FAILED, EXIT_OK, BadInput
from runbook.output import JSON_OPTION, Report
from runbook.report import CHECK_COLUMNS, Check, Status, counts, records, summary
from task_service.canary import CANARY_TAG
from task_service.naming import Naming, Role
from task_service.untrusted import InputError, loads, read_text

PROJECT_DIR = Path(__file__).resolve().parents[1]
REFERENCE_TIMEOUT_SECONDS = 60
SECRET_KEYS = ("host", "port", "username", "password")
DMS_ACCOUNT_ROLES = (Role.DMS_VPC_ROLE, Role.DMS_LOGS_ROLE)
ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?")
IAM_DOC = "README 'Least IAM permissions'"


def add_parser(commands: Any) -> None:
    p = commands.add_parser("preflight", parents=[JSON_OPTION], help="before the first deploy: check the estate the stack's config points at (exit 1 on any failure)")
    p.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    p.add_argument("-C", "--project-dir", type=Path, default=PROJECT_DIR, help="the Pulumi project (default: this repository)")
    p.add_argument(
        "--references", type=Path, metavar="DIR",
        help="outputs of referenced stacks as DIR/<org>.<project>.<stack>.json; without it: ask the pulumi CLI",
    )


@dataclass(frozen=True)
class Finding:
    """A report row plus, for a failure, the one thing to do about it."""

    check: Check
    remedy: str = ""


@dataclass(frozen=True)
class Estate:
    """What the stack's config says about the existing estate, every referenced id resolved."""

    stack: str
    region: str
    settings: stack_config.StackFile
    naming: Naming
    network: stack_config.NetworkSettings
    monolith: stack_config.MonolithSettings

    def key(self, section: str, field: str) -> str:
        """The stack-file key of a setting, spelt as the schema spells it (e.g. task-service:network.vpcId)."""
        info = type(getattr(self.settings, section)).model_fields[field]
        return f"{stack_config.PROJECT}:{section}.{info.alias or field}"


def _passed(name: str, detail: str) -> Finding:
    return Finding(Check(name, Status.PASS, detail))


def _failed(name: str, detail: str, remedy: str) -> Finding:
    return Finding(Check(name, Status.FAIL, detail), remedy)


def _reference_outputs(name: str, references: Path | None) -> dict[str, Any]:
    """The outputs of stack `org/project/stack`, from --references DIR or from the pulumi CLI."""
    if references is not None:
        path = references / (name.replace("/", ".") + ".json")
        if not path.is_file():
            raise BadInput(f"{path} not found (expected the outputs of stack {name}: `pulumi stack output --json --stack {name}`)")
        source = str(path)
        try:
            text = read_text(path, source)
        except InputError as err:
            raise BadInput(str(err)) from None
    elif shutil.which("pulumi"):
        source = f"`pulumi stack output --json --stack {name}`"
        try:
            done = subprocess.run(
                ["pulumi", "stack", "output", "--json", "--stack", name],
                capture_output=True, text=True, timeout=REFERENCE_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise BadInput(f"{source} did not answer within {REFERENCE_TIMEOUT_SECONDS}s") from None
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise BadInput(f"{source} failed: {tail}")
        text = done.stdout
    else:
        raise BadInput(f"monolithStack {name} is referenced: pass --references DIR or install the pulumi CLI and log in")
    try:
        outputs = loads(text, source)
    except InputError as err:
        raise BadInput(str(err)) from None
    if not isinstance(outputs, dict):
        raise BadInput(f"{source} should be a JSON object of output name -> value")
    return outputs


def load_estate(project_dir: Path, stack: str, references: Path | None) -> Estate:
    """The stack's config as the program reads it; raises BadInput naming the file or key."""
    try:
        config = load_stack(project_dir, stack).config
    except InputError as err:  # StackFileError and unreadable files alike
        raise BadInput(str(err)) from None
    stack_file = f"Pulumi.{stack}.yaml"
    region = config.get("aws:region")
    if not isinstance(region, str) or not region:
        raise BadInput(f"aws:region is required (e.g. ap-northeast-1) in {stack_file}")
    prefix = stack_config.PROJECT + ":"
    values = {key[len(prefix):]: value for key, value in config.items() if key.startswith(prefix)}
    try:
        settings = stack_config.parse(values, stack_file)
    except stack_config.ConfigError as err:
        raise BadInput(str(err)) from None
    resolved: dict[str, Any] = {section: getattr(settings, section) for section in stack_config.REFERENCEABLE}
    pending = [(s, to_camel(n)) for s, names in stack_config.REFERENCEABLE.items() for n in names if getattr(resolved[s], n) is None]
    if pending and settings.monolith_stack is not None:
        reference = settings.monolith_stack
        outputs = _reference_outputs(reference.name, references)
        for section, alias in pending:
            output = reference.outputs.get(alias, alias)
            if outputs.get(output) in (None, ""):
                raise BadInput(f"stack {reference.name} has no output '{output}' (for {stack_config.PROJECT}:{section}.{alias} in {stack_file})")
            model = type(resolved[section])
            try:  # the same validation the stack file's own value would get
                resolved[section] = model.model_validate({**resolved[section].model_dump(by_alias=True, exclude_none=True), alias: outputs[output]})
            except ValidationError as err:
                problem = err.errors()[0]["msg"]
                raise BadInput(f"stack {reference.name} output '{output}' ({stack_config.PROJECT}:{section}.{alias}) is not valid: {problem}") from None
    unresolved = [f"{s}.{to_camel(n)}" for s, names in stack_config.REFERENCEABLE.items() for n in names if getattr(resolved[s], n) is None]
    if unresolved:  # stack_config refuses this without monolithStack; with it, every pending id was read above
        raise BadInput(f"{stack_config.PROJECT}:{unresolved[0]} is not set in {stack_file}")
    naming = Naming.for_stack(stack_config.PROJECT, stack, settings.name_prefix)
    return Estate(stack, region, settings, naming, resolved["network"], resolved["monolith"])


def _guard(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """An AWS refusal becomes a FAIL row (naming the error), except bad credentials, which stop the command."""
    try:
        return check()
    except ClientError as err:
        if is_auth_error(err):
            raise BadInput(f"AWS rejected the credentials: {error_text(err)}") from None
        return [_failed(name, error_text(err), f"fix the call's error; the reads this command needs are in {IAM_DOC}")]


def vpc_and_subnets(aws: Aws, estate: Estate) -> list[Finding]:
    ec2, vpc = aws.client("ec2"), estate.network.vpc_id
    try:
        ec2.describe_vpcs(VpcIds=[vpc])
    except ClientError as err:
        if error_code(err) != "InvalidVpcID.NotFound":
            raise
        return [_failed("vpc exists", f"{vpc} not found", f"set {estate.key('network', 'vpc_id')} (or the monolith stack's output) to the monolith's VPC")]
    findings = [_passed("vpc exists", f"{vpc}")]
    for field, purpose in (("service_subnet_ids", "service subnets"), ("db_subnet_ids", "db subnets")):
        ids, key = list(getattr(estate.network, field)), estate.key("network", field)
        try:
            subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
        except ClientError as err:
            if error_code(err) != "InvalidSubnetID.NotFound":
                raise
            findings.append(_failed(purpose, error_text(err), f"{key} must list existing subnets of {vpc}"))
            continue
        outside = sorted(s["SubnetId"] for s in subnets if s.get("VpcId") != vpc)
        zones = sorted({s["AvailabilityZone"] for s in subnets})
        if outside:
            findings.append(_failed(purpose, f"{', '.join(outside)} not in {vpc}", f"{key} must list subnets of {vpc}"))
        elif len(zones) < 2:
            findings.append(_failed(purpose, f"all in {', '.join(zones)}", f"{key} needs subnets in >= 2 AZs (Multi-AZ, subnet groups)"))
        else:
            findings.append(_passed(purpose, f"{len(subnets)} subnets in {', '.join(zones)}"))
    return findings


def alb_security_group(aws: Aws, estate: Estate) -> list[Finding]:
    group, vpc = estate.monolith.alb_security_group_id, estate.network.vpc_id
    missing = [_failed("alb security group exists", f"{group} not found", f"set {estate.key('monolith', 'alb_security_group_id')} to the ALB's security group")]
    try:
        groups = aws.client("ec2").describe_security_groups(GroupIds=[group]).get("SecurityGroups", [])
    except ClientError as err:
        if error_code(err) != "InvalidGroup.NotFound":
            raise
        return missing
    if not groups:
        return missing
    found = groups[0]
    if found.get("VpcId") != vpc:
        return [_failed("alb security group exists", f"{group} is in {found.get('VpcId')}, not {vpc}", f"the ALB's security group must be in {estate.key('network', 'vpc_id')}")]
    return [_passed("alb security group exists", f"{group} ({found.get('GroupName')})")]


def listener_and_priority(aws: Aws, estate: Estate) -> list[Finding]:
    elbv2, listener = aws.client("elbv2"), estate.monolith.listener_arn
    try:
        elbv2.describe_listeners(ListenerArns=[listener])
    except ClientError as err:
        if error_code(err) != "ListenerNotFound":
            raise
        return [_failed("listener exists", f"{listener} not found", f"set {estate.key('monolith', 'listener_arn')} to the listener serving /api/tasks")]
    findings = [_passed("listener exists", f"{listener}")]
    rules = [rule for page in elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener) for rule in page["Rules"]]
    priority, ours = estate.settings.route.priority, estate.naming.of(Role.TARGET_GROUP)
    holder = next((rule for rule in rules if rule.get("Priority") == str(priority)), None)
    if holder is None:
        findings.append(_passed("rule priority free", f"priority {priority} is free on the listener"))
        return findings
    described = elbv2.describe_tags(ResourceArns=[holder["RuleArn"]])["TagDescriptions"]
    tags = {tag["Key"]: tag["Value"] for description in described for tag in description.get("Tags", [])}
    if tags.get(CANARY_TAG) == ours:
        findings.append(_passed("rule priority free", f"priority {priority} is held by our own rule ({CANARY_TAG}={ours})"))
        return findings
    taken = {int(rule["Priority"]) for rule in rules if rule.get("Priority", "default").isdigit()}
    free = [n for n in range(1, 50001) if n not in taken][:3]
    findings.append(
        _failed(
            "rule priority free",
            f"priority {priority} is held by {holder['RuleArn']} (not ours: no {CANARY_TAG}={ours} tag)",
            f"set {estate.key('route', 'priority')} to a free one (e.g. {', '.join(map(str, free))}) or move the other rule",
        )
    )
    return findings


def monolith_target_group(aws: Aws, estate: Estate) -> list[Finding]:
    elbv2, arn = aws.client("elbv2"), estate.monolith.target_group_arn
    try:
        elbv2.describe_target_groups(TargetGroupArns=[arn])
    except ClientError as err:
        if error_code(err) != "TargetGroupNotFound":
            raise
        return [_failed("monolith target group exists", f"{arn} not found", f"set {estate.key('monolith', 'target_group_arn')} to the monolith's target group")]
    attributes = {a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
    findings = [_passed("monolith target group exists", f"{arn}")]
    if attributes.get("stickiness.enabled", "false") == "true":
        kind = attributes.get("stickiness.type", "lb_cookie")
        findings.append(
            _failed(
                "monolith stickiness",
                f"stickiness on ({kind}); our weighted rule has group stickiness off",
                "turn stickiness off on the monolith target group, or change the rule to group-level stickiness (program change)",
            )
        )
    else:
        findings.append(_passed("monolith stickiness", "off: fits the weighted rule (group stickiness off)"))
    return findings


def dms_account_roles(aws: Aws, estate: Estate) -> list[Finding]:
    dms = estate.settings.dms
    if not dms.enabled or dms.create_account_roles:
        why = "dms.enabled is false" if not dms.enabled else "this stack creates them (dms.createAccountRoles)"
        return [_passed("dms account roles", f"not needed: {why}")]
    missing = []
    for role in DMS_ACCOUNT_ROLES:
        name = estate.naming.of(role)
        try:
            aws.client("iam").get_role(RoleName=name)
        except ClientError as err:
            if error_code(err) != "NoSuchEntity":
                raise
            missing.append(name)
    if missing:
        return [_failed("dms account roles", f"missing: {', '.join(missing)}", f"set {estate.key('dms', 'create_account_roles')}: true in exactly one stack of this account")]
    return [_passed("dms account roles", ", ".join(estate.naming.of(role) for role in DMS_ACCOUNT_ROLES))]


def logical_replication(aws: Aws, estate: Estate) -> list[Finding]:
    name, dms = "monolith logical replication", estate.settings.dms
    if not dms.enabled or dms.migration_type == "full-load":
        return [_passed(name, f"not needed: {'dms.enabled is false' if not dms.enabled else 'full-load only, no CDC'}")]
    host = estate.monolith.db_host or ""
    instance = snapshots.instance_at(aws.client("rds"), host)
    if instance is None:
        return [_failed(name, f"no RDS instance has endpoint {host}", f"set {estate.key('monolith', 'db_host')} to the monolith DB instance's endpoint address")]
    groups = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])]
    if not groups:
        return [_failed(name, f"{instance['DBInstanceIdentifier']} reports no parameter group", "attach a custom parameter group with rds.logical_replication=1")]
    parameters = aws.client("rds").get_paginator("describe_db_parameters").paginate(DBParameterGroupName=groups[0])
    found = next((p for page in parameters for p in page["Parameters"] if p.get("ParameterName") == "rds.logical_replication"), None)
    value = (found or {}).get("ParameterValue")
    where = f"{instance['DBInstanceIdentifier']} / {groups[0]}"
    remedy = f"set rds.logical_replication=1 in {groups[0]} (a custom group) and reboot the monolith DB in a window"
    if value != "1":
        return [_failed(name, f"{where}: rds.logical_replication={value if value is not None else 'unset (0)'}", remedy)]
    pending = [g for g in instance.get("DBParameterGroups", []) if g.get("ParameterApplyStatus") == "pending-reboot"]
    if pending:
        return [_failed(name, f"{where}: set, but pending-reboot", f"reboot {instance['DBInstanceIdentifier']} in a maintenance window")]
    return [_passed(name, f"{where}: rds.logical_replication=1")]


def monolith_secret(aws: Aws, estate: Estate) -> list[Finding]:
    name, arn = "monolith secret", estate.monolith.db_secret_arn
    remedy = f"store JSON with {', '.join(SECRET_KEYS)} in {arn} (DMS reads the source endpoint from it)"
    try:
        text = aws.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString")
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        return [_failed(name, f"{arn} not found", f"set {estate.key('monolith', 'db_secret_arn')} to the monolith DB's credentials secret")]
    try:
        document = json.loads(text or "")
    except json.JSONDecodeError:
        return [_failed(name, "not a JSON object (value not shown)", remedy)]
    missing = [key for key in SECRET_KEYS if not isinstance(document, dict) or document.get(key) in (None, "")]
    if missing:
        return [_failed(name, f"lacks {', '.join(missing)} (values not shown)", remedy)]
    return [_passed(name, f"carries {', '.join(SECRET_KEYS)} (values not shown)")]


def image_in_ecr(aws: Aws, estate: Estate) -> list[Finding]:
    name, image = "image in ecr", estate.settings.service.image
    if image is None:
        return [Finding(Check(name, Status.NA, "service.image is not set: the stack deploys parked (see docs/first-deploy.md)"))]
    match = ECR_IMAGE.fullmatch(image)
    if match is None:
        return [Finding(Check(name, Status.NA, f"{image} is not an ECR image: not checked"))]
    repository = match["repo"]
    image_id = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"] or "latest"}
    try:
        aws.client("ecr").describe_images(repositoryName=repository, imageIds=[image_id])
    except ClientError as err:
        if error_code(err) == "RepositoryNotFoundException":
            ours = repository == estate.naming.of(Role.ECR_REPOSITORY)
            detail = f"repository {repository} does not exist yet" + (": this stack creates it" if ours else "")
            if ours:
                return [Finding(Check(name, Status.NA, f"{detail}; the first deploy needs the bootstrap in docs/first-deploy.md"))]
            return [_failed(name, detail, "push the image to an existing repository, or point service.image at ours (see docs/first-deploy.md)")]
        if error_code(err) != "ImageNotFoundException":
            raise
        return [_failed(name, f"{image}: not in {repository}", f"push {image} before deploying (see docs/first-deploy.md)")]
    return [_passed(name, image)]


def monolith_backup(aws: Aws, estate: Estate) -> list[Finding]:
    """A verified, recent, encrypted snapshot of the monolith DB, recorded by `runbook backup` and still in RDS."""
    name, path = "monolith backup", backup.record_path(estate.stack)
    if not estate.settings.dms.enabled:
        return [_passed(name, "not needed: dms.enabled is false (nothing is copied from the monolith)")]
    remedy = f"python -m runbook backup --stack {estate.stack} (in this directory; again if older than {backup.MAX_AGE_HOURS:g} h before `dms start`)"
    try:
        recorded = backup.monolith_snapshot(backup.load_record(path, estate.stack))
    except BadInput as err:
        return [_failed(name, str(err), remedy)]
    if recorded is None:
        return [_failed(name, f"{path} holds no encrypted monolith snapshot younger than {backup.MAX_AGE_HOURS:g} h", remedy)]
    api = snapshots.CLUSTER if recorded["kind"] == snapshots.CLUSTER.kind else snapshots.INSTANCE
    try:
        [live] = snapshots.describe(aws.client("rds"), api, **{api.snapshot_id: recorded["snapshotId"]})
    except ClientError as err:
        if not error_code(err).endswith("NotFound") and not error_code(err).endswith("NotFoundFault"):
            raise
        return [_failed(name, f"{recorded['snapshotId']} (in {path}) no longer exists", remedy)]
    tested = (recorded.get("restoreTest") or {}).get("passed")
    detail = f"{recorded['snapshotId']} taken {recorded['createdAt']}, {live.get('Status')}, encrypted" + (", restore-tested" if tested else "")
    if live.get("Status") != "available":
        return [_failed(name, detail, remedy)]
    return [_passed(name, detail)]


CHECKS: tuple[tuple[str, Callable[[Aws, Estate], list[Finding]]], ...] = (
    ("vpc exists", vpc_and_subnets),
    ("listener exists", listener_and_priority),
    ("alb security group exists", alb_security_group),
    ("monolith target group exists", monolith_target_group),
    ("dms account roles", dms_account_roles),
    ("monolith logical replication", logical_replication),
    ("monolith secret", monolith_secret),
    ("image in ecr", image_in_ecr),
    ("monolith backup", monolith_backup),
)


def findings(aws: Aws, estate: Estate) -> Iterator[Finding]:
    for name, check in CHECKS:
        yield from _guard(name, lambda: check(aws, estate))


def run(args: argparse.Namespace) -> Report:
    estate = load_estate(args.project_dir, args.stack, args.references)
    aws = Aws(estate.region)
    with reachable():
        results = list(findings(aws, estate))
    checks = [f.check for f in results]
    failed = [f for f in results if f.check.status is Status.FAIL]
    report = Report(EXIT_FAILED if failed else EXIT_OK)
    report.say(f"Preflight of stack {estate.stack} ({estate.region}), read-only\n", stack=estate.stack, region=estate.region)
    report.table("checks", CHECK_COLUMNS, [row | {"remedy": f.remedy} for row, f in zip(records(checks), results)])
    if failed:
        report.say("\nTo fix:")
        for finding in failed:
            report.say(f"- {finding.check.name}: {finding.remedy}")
    report.say("\n" + summary(checks), **counts(checks))
    return report
