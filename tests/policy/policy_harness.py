"""Call a policy in-process with the same argument objects the SDK builds from an Analyze request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy


@dataclass
class Outcome:
    messages: list[str] = field(default_factory=list)
    urns: list[Optional[str]] = field(default_factory=list)
    not_applicable: Optional[str] = None

    @property
    def ok(self) -> bool:
        return not self.messages and self.not_applicable is None


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _props(props: Mapping[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(dict(props)))


def run(policy: Policy, type_: str, props: Mapping[str, Any], *, name: str = "task-service-x",
        config: Optional[Mapping[str, Any]] = None,
        provider_props: Optional[Mapping[str, Any]] = None) -> Outcome:
    """Validate one resource (a stack policy sees a stack of just it); UnknownValueError propagates as it does
    inside the SDK."""
    if isinstance(policy, StackValidationPolicy):
        return run_stack(policy, [(type_, name, props)], config)
    provider = None
    if provider_props is not None:
        provider = PolicyProviderResource("pulumi:providers:aws", _props(provider_props),
                                          "urn:pulumi:prod::task-service::pulumi:providers:aws::default", "default")
    args = ResourceValidationArgs(type_, _props(props), f"urn:pulumi:prod::task-service::{type_}::{name}", name,
                                  _opts(), provider, dict(config) if config is not None else None)
    outcome = Outcome()

    def report(message: str, urn: Optional[str] = None) -> None:
        outcome.messages.append(message)
        outcome.urns.append(urn)

    try:
        policy.validate(args, report)  # type: ignore[attr-defined]
    except _NotApplicableError as err:
        outcome.not_applicable = err.reason
    return outcome


def run_stack(policy: Policy, resources: list[tuple[str, str, Mapping[str, Any]]],
              config: Optional[Mapping[str, Any]] = None,
              links: Optional[Mapping[str, Mapping[str, list[str]]]] = None) -> Outcome:
    """Validate a stack given as (type, name, props) triples; `links` gives property dependencies by name
    (`{"rotation": {"secretId": ["secret"]}}`), as the SDK resolves them from the engine's URNs."""
    items = [
        PolicyResource(t, _props(p), f"urn:pulumi:prod::task-service::{t}::{n}", n, _opts(), None, None, [], {})
        for t, n, p in resources
    ]
    by_name = {item.name: item for item in items}
    for name, properties in (links or {}).items():
        by_name[name].property_dependencies = {key: [by_name[n] for n in names] for key, names in properties.items()}
    outcome = Outcome()

    def report(message: str, urn: Optional[str] = None) -> None:
        outcome.messages.append(message)
        outcome.urns.append(urn)

    try:
        policy.validate(StackValidationArgs(items, dict(config) if config is not None else None), report)  # type: ignore[attr-defined]
    except _NotApplicableError as err:
        outcome.not_applicable = err.reason
    return outcome
