"""What the engine sends a policy pack: resources as an analyzer sees them, and the requests that carry them.

Properties go over the wire as a protobuf Struct with camelCase keys, unknowns as the engine's sentinel strings and
secrets as `wire.secret(value)` objects, the way the engine's MarshalProperties (KeepUnknowns, KeepSecrets,
SkipInternalKeys) sends them. Options and the provider travel beside the properties, as in an engine's request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb

from preview.engine import RecordedResource
from preview.policy_config import LEVEL_VALUES, ReconciledConfig

Properties = Union[Mapping[str, Any], struct_pb2.Struct]


def make_urn(project: str, stack: str, type_: str, name: str, parent_type: Optional[str] = None) -> str:
    """The engine's URN; `parent_type` is the parent's qualified type chain when the resource has a parent."""
    qualified = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def to_struct(properties: Properties) -> struct_pb2.Struct:
    if isinstance(properties, struct_pb2.Struct):
        return properties
    out = struct_pb2.Struct()
    out.update(_plain(properties))
    return out


def _plain(value: Any) -> Any:
    """Tuples to lists and mappings to dicts (all Struct.update() accepts), without internal `__` keys.

    The engine marshals analyzer properties with SkipInternalKeys, so keys such as `__defaults` never arrive.
    """
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class ResourceOptions:
    protect: bool = False
    ignore_changes: Sequence[str] = ()
    delete_before_replace: Optional[bool] = None
    additional_secret_outputs: Sequence[str] = ()
    custom_timeouts: tuple[float, float, float] = (0.0, 0.0, 0.0)  # create, update, delete (seconds)


@dataclass(frozen=True)
class ProviderInfo:
    urn: str
    type: str
    name: str
    properties: Properties = field(default_factory=dict)


@dataclass
class Resource:
    """One resource as the engine describes it to an analyzer; `properties` in wire (camelCase) form."""

    urn: str
    type: str
    name: str
    properties: Properties = field(default_factory=dict)
    parent: str = ""
    options: ResourceOptions = field(default_factory=ResourceOptions)
    provider: Optional[ProviderInfo] = None
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


def resources_from_recording(records: Iterable[RecordedResource], *, project: str, stack: str) -> list[Resource]:
    """Resources as the engine sends them to an analyzer, from the program recorder's records."""
    records = list(records)
    by_urn = {r.urn: r for r in records}
    return [
        Resource(
            urn=r.urn, type=r.type, name=r.name, properties=r.inputs_struct, parent=r.parent,
            provider=_provider_of(r, by_urn, project, stack),
            dependencies=list(r.dependencies),
            property_dependencies=dict(r.property_dependencies),
            options=ResourceOptions(
                protect=r.protect,
                ignore_changes=tuple(r.ignore_changes),
                delete_before_replace=True if r.delete_before_replace else None,
                additional_secret_outputs=tuple(r.additional_secret_outputs),
            ),
        )
        for r in records
    ]


def _provider_of(record: RecordedResource, by_urn: Mapping[str, RecordedResource], project: str,
                 stack: str) -> Optional[ProviderInfo]:
    """The provider the engine names: the explicit one (`urn::id` reference), else the package's default.

    The recorder has no inputs for a default provider, so its properties stay empty.
    """
    if not record.custom or record.type.startswith("pulumi:providers:"):
        return None
    ref = record.provider.split("::")
    explicit = by_urn.get("::".join(ref[:-1])) if len(ref) > 1 else None
    if explicit is not None:
        return ProviderInfo(explicit.urn, explicit.type, explicit.name, explicit.inputs)
    provider_type = f"pulumi:providers:{record.type.split(':')[0]}"
    return ProviderInfo(make_urn(project, stack, provider_type, "default"), provider_type, "default")


def _options(resource: Resource) -> pb.AnalyzerResourceOptions:
    opts = resource.options
    return pb.AnalyzerResourceOptions(
        protect=opts.protect,
        ignoreChanges=list(opts.ignore_changes),
        deleteBeforeReplace=bool(opts.delete_before_replace),
        deleteBeforeReplaceDefined=opts.delete_before_replace is not None,
        additionalSecretOutputs=list(opts.additional_secret_outputs),
        customTimeouts=pb.AnalyzerResourceOptions.CustomTimeouts(
            create=opts.custom_timeouts[0], update=opts.custom_timeouts[1], delete=opts.custom_timeouts[2]),
        parent=resource.parent,
    )


def _provider(provider: ProviderInfo) -> pb.AnalyzerProviderResource:
    return pb.AnalyzerProviderResource(type=provider.type, urn=provider.urn, name=provider.name,
                                       properties=to_struct(provider.properties))


def analyze_request(resource: Resource) -> pb.AnalyzeRequest:
    request = pb.AnalyzeRequest(
        type=resource.type, urn=resource.urn, name=resource.name,
        properties=to_struct(resource.properties), options=_options(resource),
    )
    if resource.provider is not None:
        request.provider.CopyFrom(_provider(resource.provider))
    return request


def analyze_stack_request(resources: Iterable[Resource]) -> pb.AnalyzeStackRequest:
    request = pb.AnalyzeStackRequest()
    for resource in resources:
        item = request.resources.add(
            type=resource.type, urn=resource.urn, name=resource.name,
            properties=to_struct(resource.properties), options=_options(resource),
            parent=resource.parent, dependencies=list(resource.dependencies),
        )
        if resource.provider is not None:
            item.provider.CopyFrom(_provider(resource.provider))
        for key, urns in resource.property_dependencies.items():
            if urns:  # the engine skips properties without dependencies
                item.propertyDependencies[key].urns.extend(urns)
    return request


def configure_request(config: ReconciledConfig) -> pb.ConfigureAnalyzerRequest:
    """Configure with the reconciled config: every policy's level, and its properties when it has any."""
    request = pb.ConfigureAnalyzerRequest()
    for name, entry in config.items():
        policy_config = request.policyConfig[name]
        policy_config.enforcementLevel = LEVEL_VALUES[entry["enforcementLevel"]]
        if entry["properties"]:
            policy_config.properties.update(_plain(entry["properties"]))
    return request
