"""Network: nothing reachable from the internet that should not be (databases, replication, tasks, open ports)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

from pulumi_policy import ResourceValidationArgs, Severity

from .common import (
    DMS_REPLICATION_INSTANCE,
    ECS_SERVICE,
    RDS_INSTANCE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SG_INGRESS_RULE,
    as_list,
    as_number,
    dig,
    fmt_number,
    resource_policy,
)

Report = Callable[[str], None]

_OPEN_CIDRS = ("0.0.0.0/0", "::/0")
_ALL_PROTOCOLS = ("-1", "all")


def _check_not_public(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if args.props.get("publiclyAccessible") is True:
        report("publiclyAccessible is true, which gives the instance a public DNS name and IP.")


def _check_ecs_public_ip(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if dig(args.props.get("networkConfiguration"), "assignPublicIp") is True:
        report("networkConfiguration.assignPublicIp is true; tasks in private subnets reach AWS through NAT or "
               "VPC endpoints instead.")


def _exposed_ports(protocol: Any, from_port: Any, to_port: Any, ports: Iterable[float]) -> list[float]:
    """Which protected ports a (protocol, from, to) rule opens; protocol -1 opens every port."""
    if str(protocol).lower() in _ALL_PROTOCOLS:
        return list(ports)
    low, high = as_number(from_port), as_number(to_port)
    if low is None:
        return []
    high = low if high is None else high
    return [p for p in ports if low <= p <= high]


def _rule_finding(where: str, cidrs: Iterable[Any], rule: Mapping[str, Any], protocol_key: str,
                  ports: list[float]) -> Optional[str]:
    """Ports are read only once a CIDR is open, so an unknown port on a safe rule never blocks evaluation."""
    open_cidrs = [c for c in cidrs if c in _OPEN_CIDRS]
    if not open_cidrs:
        return None
    exposed = _exposed_ports(dig(rule, protocol_key), dig(rule, "fromPort"), dig(rule, "toPort"), ports)
    if not exposed:
        return None
    shown = ", ".join(fmt_number(p) for p in exposed)
    return f"{where} allows {' and '.join(open_cidrs)} on port {shown}."


def _check_open_ingress(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    ports = [float(p) for p in cfg["protectedPorts"]]
    findings: list[Optional[str]] = []
    if args.resource_type == SECURITY_GROUP:
        for i, rule in enumerate(as_list(props.get("ingress"))):
            cidrs = as_list(dig(rule, "cidrBlocks")) + as_list(dig(rule, "ipv6CidrBlocks"))
            findings.append(_rule_finding(f"ingress[{i}]", cidrs, rule, "protocol", ports))
    elif args.resource_type == SECURITY_GROUP_RULE:
        if props.get("type") == "ingress":
            cidrs = as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks"))
            findings.append(_rule_finding("the ingress rule", cidrs, props, "protocol", ports))
    else:
        cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6")]
        findings.append(_rule_finding("the ingress rule", cidrs, props, "ipProtocol", ports))
    for finding in findings:
        if finding:
            report(finding)


no_public_database = resource_policy(
    name="no-public-database",
    area="network",
    description="RDS instances and DMS replication instances are not publicly accessible.",
    resource_types=[RDS_INSTANCE, DMS_REPLICATION_INSTANCE],
    check=_check_not_public,
    remediation="set publiclyAccessible=False and place the instance in isolated/private subnets.",
    severity=Severity.CRITICAL,
)

no_open_ingress = resource_policy(
    name="no-open-ingress",
    area="network",
    description="No security group ingress from 0.0.0.0/0 or ::/0 on the database or service ports.",
    resource_types=[SECURITY_GROUP, SECURITY_GROUP_RULE, SG_INGRESS_RULE],
    check=_check_open_ingress,
    remediation="allow the port from the calling security group (referencedSecurityGroupId / "
                "sourceSecurityGroupId) instead of a CIDR.",
    severity=Severity.CRITICAL,
    config={
        "protectedPorts": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 65535},
            "default": [5432, 3001],
            "description": "Ports that must never be open to the internet (PostgreSQL, the service's port).",
        },
    },
)

ecs_no_public_ip = resource_policy(
    name="ecs-no-public-ip",
    area="network",
    description="ECS services do not assign public IPs to tasks.",
    resource_types=[ECS_SERVICE],
    check=_check_ecs_public_ip,
    remediation="set networkConfiguration.assignPublicIp=False.",
)

POLICIES = [no_public_database, no_open_ingress, ecs_no_public_ip]
