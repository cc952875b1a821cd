"""Network: nothing reachable from the internet that should not be (databases, replication, tasks, open ports)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.policy import PolicyResource

from .common import (
    DMS_REPLICATION_INSTANCE,
    ECS_SERVICE,
    NAME_FILTER_SCHEMA,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SG_INGRESS_RULE,
    as_bool,
    as_list,
    as_number,
    dig,
    fmt_number,
    is_type,
    known_or,
    name_selected,
    resource_policy,
    stack_policy,
)

Report = Callable[[str], None]
StackReport = Callable[[str, Optional[str]], None]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_ALL_PROTOCOLS = ("-1", "all")
_EVERYTHING = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def _check_not_public(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if as_bool(args.props.get("publiclyAccessible")) is True:
        report("publiclyAccessible is true, which gives the instance a public DNS name and IP.")


def _check_ecs_public_ip(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if as_bool(dig(args.props.get("networkConfiguration"), "assignPublicIp")) is True:
        report("networkConfiguration.assignPublicIp is true; tasks in private subnets reach AWS through NAT or "
               "VPC endpoints instead.")


def network_of(cidr: Any) -> Optional[Network]:
    """A CIDR as AWS reads it, however it is spelled (`::0/0`, `0.0.0.0/00`, leading zeros); None if unreadable."""
    if not isinstance(cidr, str) or "/" not in cidr:
        return None
    address, _, prefix = cidr.partition("/")
    if not prefix.isdigit() or not prefix.isascii():
        return None
    octets = address.split(".")
    if len(octets) == 4 and all(o.isdigit() and o.isascii() and int(o) < 256 for o in octets):
        address = ".".join(str(int(o)) for o in octets)
    try:
        return ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)
    except ValueError:
        return None


@dataclass
class Ingress:
    """One ingress rule: where it is declared, the group it opens, what it admits."""

    resource: PolicyResource
    where: str
    group: str
    rule: Any
    protocol_key: str
    cidrs: list[str]

    def networks(self) -> list[Network]:
        return [n for n in (network_of(c) for c in self.cidrs) if n is not None]

    def exposed(self, ports: Iterable[float]) -> list[float]:
        """Which protected ports the rule opens; protocol -1 opens every port. Read only for open groups, so an
        unknown port on a safe rule never blocks the evaluation."""
        if str(dig(self.rule, self.protocol_key)).lower() in _ALL_PROTOCOLS:
            return list(ports)
        low, high = as_number(dig(self.rule, "fromPort")), as_number(dig(self.rule, "toPort"))
        if low is None:
            return []
        high = low if high is None else high
        return [p for p in ports if low <= p <= high]


def _group_of(resource: PolicyResource) -> str:
    """The security group a rule resource opens: the resource it depends on (a preview), else the id it names."""
    depends = resource.property_dependencies.get("securityGroupId", [])
    if depends:
        return depends[0].urn
    known = known_or(resource.props, "securityGroupId")
    return f"id:{known}" if isinstance(known, str) else resource.urn


def _known_items(container: Any, key: str) -> list[Any]:
    """The list at `key`, with what a preview cannot know yet left out (a stack policy must not stop at it)."""
    value = known_or(container, key)
    if value is None or isinstance(value, str):
        return as_list(value)
    return [known_or(value, i) for i in range(len(value))]


def _cidrs(rule: Any) -> list[Any]:
    return _known_items(rule, "cidrBlocks") + _known_items(rule, "ipv6CidrBlocks")


def _ingress(resource: PolicyResource) -> list[Ingress]:
    props, kind, name = resource.props, resource.resource_type, resource.name
    if is_type(kind, SECURITY_GROUP):
        return [
            Ingress(resource, f"{name} ingress[{i}]", resource.urn, rule, "protocol", _cidrs(rule))
            for i, rule in enumerate(_known_items(props, "ingress"))
        ]
    if is_type(kind, SECURITY_GROUP_RULE) and known_or(props, "type") == "ingress":
        cidrs = _cidrs(props)
        return [Ingress(resource, f"the ingress rule {name}", _group_of(resource), props, "protocol", cidrs)]
    if is_type(kind, SG_INGRESS_RULE):
        cidrs = [known_or(props, "cidrIpv4"), known_or(props, "cidrIpv6")]
        return [Ingress(resource, f"the ingress rule {name}", _group_of(resource), props, "ipProtocol", cidrs)]
    return []


def _open_to_all(rules: list[Ingress]) -> list[int]:
    """The IP versions whose whole address space these rules admit between them."""
    versions = []
    for version, everything in _EVERYTHING.items():
        networks = [n for rule in rules for n in rule.networks() if n.version == version]
        if networks and list(ipaddress.collapse_addresses(networks)) == [everything]:  # type: ignore[type-var]
            versions.append(version)
    return versions


def _check_open_ingress(args: StackValidationArgs, cfg: Mapping[str, Any], report: StackReport) -> None:
    """Judge each security group on the union of what its rules admit on a protected port, however it is split
    (0.0.0.0/1 + 128.0.0.0/1) or spelled (::0/0), across inline rules and rule resources."""
    ports = [float(p) for p in cfg["protectedPorts"]]
    groups: dict[str, list[Ingress]] = {}
    for resource in args.resources:
        if name_selected(resource.name, cfg):
            for ingress in _ingress(resource):
                groups.setdefault(ingress.group, []).append(ingress)
    for rules in groups.values():
        if _open_to_all(rules):
            for message, urn in _findings(rules, ports):
                report(message, urn)


def _findings(rules: list[Ingress], ports: list[float]) -> list[tuple[str, str]]:
    """One message per rule and IP version that helps admit everybody, with the protected ports concerned."""
    exposed: dict[tuple[int, int], list[float]] = {}
    alone: dict[tuple[int, int], bool] = {}
    for port in ports:
        reaching = [rule for rule in rules if rule.exposed([port])]
        for version in _open_to_all(reaching):
            for rule in reaching:
                if any(n.version == version for n in rule.networks()):
                    exposed.setdefault((id(rule), version), []).append(port)
                    alone[(id(rule), version)] = version in _open_to_all([rule])
    messages = []
    for rule in rules:
        for version in _EVERYTHING:
            opened = exposed.get((id(rule), version))
            if not opened:
                continue
            cidrs = [c for c in rule.cidrs if (n := network_of(c)) is not None and n.version == version]
            ports_text = ", ".join(fmt_number(p) for p in opened)
            together = "" if alone[(id(rule), version)] else (
                f", which with the group's other ingress admits every IPv{version} address")
            messages.append((f"{rule.where} allows {' and '.join(cidrs[:4])} on port {ports_text}{together}.", rule.resource.urn))
    return messages


no_public_database = resource_policy(
    name="no-public-database",
    area="network",
    description="RDS instances, clusters and cluster instances and DMS replication instances are not publicly accessible.",
    resource_types=[RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE, DMS_REPLICATION_INSTANCE],
    check=_check_not_public,
    remediation="set publiclyAccessible=False and place the instance in isolated/private subnets.",
    severity=Severity.CRITICAL,
)

no_open_ingress = stack_policy(
    name="no-open-ingress",
    area="network",
    description="No security group admits every IPv4 or IPv6 address (0.0.0.0/0, ::/0, or ranges that add up to them) "
                "on the database or service ports.",
    check=_check_open_ingress,
    remediation="allow the port from the calling security group (referencedSecurityGroupId / "
                "sourceSecurityGroupId) instead of a CIDR.",
    severity=Severity.CRITICAL,
    config={
        **NAME_FILTER_SCHEMA,
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
