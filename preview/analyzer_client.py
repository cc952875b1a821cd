"""Drive a policy pack over the Analyzer gRPC protocol the way the Pulumi engine does, without the CLI or a cloud.

The pack is started exactly as the engine's `pulumi-analyzer-policy-python` shim starts it: from the pack's
directory, `python -u -m pulumi.policy <engine-address> .` with `PULUMI_PROJECT`, `PULUMI_STACK`, `PULUMI_DRY_RUN`
(and `PULUMI_CONFIG`) in the environment. It prints its gRPC port on the first stdout line; the engine address
is passed but never dialled. Calls then follow the engine's order: Handshake (Python packs answer UNIMPLEMENTED),
ConfigureStack, GetAnalyzerInfo, Configure with the config reconciled as the CLI does (schema defaults, then the
pack's initial config, then the `--policy-pack-config` file), Analyze per resource, AnalyzeStack at the end.

Properties go over the wire as a protobuf Struct with camelCase keys, unknowns as the engine's sentinel strings
(`UNKNOWN_STRING` ...) and secrets as `secret(value)` objects, the way the engine's MarshalProperties
(KeepUnknowns, KeepSecrets) sends them.

    with PolicyPackServer("policy", project="task-service", stack="prod") as pack:
        pack.configure("policy/config/prod.json")
        result = pack.preview(resources)     # every Analyze, then AnalyzeStack
        result.mandatory                     # -> list[Diagnostic]
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Optional, Sequence, Union

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi.runtime.proto import analyzer_pb2_grpc as pb_grpc

# The engine's wire sentinels (sdk/go/common/resource/plugin/rpc.go).
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# Any address will do: a Python pack never dials the engine during analysis.
ENGINE_ADDRESS = "127.0.0.1:1"

LEVELS = {
    pb.ADVISORY: "advisory",
    pb.MANDATORY: "mandatory",
    pb.REMEDIATE: "remediate",
    pb.DISABLED: "disabled",
}
LEVEL_VALUES = {name: value for value, name in LEVELS.items()}
SEVERITIES = {
    pb.POLICY_SEVERITY_UNSPECIFIED: "",
    pb.POLICY_SEVERITY_LOW: "low",
    pb.POLICY_SEVERITY_MEDIUM: "medium",
    pb.POLICY_SEVERITY_HIGH: "high",
    pb.POLICY_SEVERITY_CRITICAL: "critical",
}

PathLike = Union[str, "os.PathLike[str]"]


def secret(value: Any) -> dict[str, Any]:
    """A property value marked secret, as the engine marshals it with KeepSecrets."""
    return {SIG_KEY: SECRET_SIG, "value": value}


def make_urn(project: str, stack: str, type_: str, name: str, parent_type: Optional[str] = None) -> str:
    """The engine's URN; `parent_type` is the parent's qualified type chain when the resource has a parent."""
    qualified = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def to_struct(properties: Union[Mapping[str, Any], struct_pb2.Struct]) -> struct_pb2.Struct:
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
    aliases: Sequence[str] = ()
    additional_secret_outputs: Sequence[str] = ()
    custom_timeouts: tuple[float, float, float] = (0.0, 0.0, 0.0)  # create, update, delete (seconds)


@dataclass(frozen=True)
class ProviderInfo:
    urn: str
    type: str
    name: str
    properties: Union[Mapping[str, Any], struct_pb2.Struct] = field(default_factory=dict)


@dataclass
class Resource:
    """One resource as the engine describes it to an analyzer; `properties` in wire (camelCase) form."""

    urn: str
    type: str
    name: str
    properties: Union[Mapping[str, Any], struct_pb2.Struct] = field(default_factory=dict)
    parent: str = ""
    options: ResourceOptions = field(default_factory=ResourceOptions)
    provider: Optional[ProviderInfo] = None
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    custom: bool = True

    @classmethod
    def of(cls, type_: str, name: str, properties: Union[Mapping[str, Any], struct_pb2.Struct], *,
           project: str = "task-service", stack: str = "prod", **kwargs: Any) -> "Resource":
        """A top-level resource with the URN the engine would give it."""
        return cls(urn=make_urn(project, stack, type_, name), type=type_, name=name, properties=properties,
                   **kwargs)


def resources_from_recording(records: Iterable[Any], *, project: str, stack: str) -> list[Resource]:
    """Resources as the engine sends them to an analyzer, from the program recorder's records.

    Reads `.type .name .urn .parent .custom` and, when present, `.inputs_struct` (else `.inputs`),
    `.dependencies .property_dependencies .protect .ignore_changes .delete_before_replace
    .additional_secret_outputs .provider` (a `urn::id` provider reference). A custom resource without an explicit
    provider gets the engine's default provider for its package (properties omitted: the recorder has none).
    """
    records = list(records)
    by_urn = {r.urn: r for r in records}
    out = []
    for r in records:
        props = getattr(r, "inputs_struct", None)
        if props is None:
            props = getattr(r, "inputs", {}) or {}
        provider = None
        if r.custom and not r.type.startswith("pulumi:providers:"):
            ref = (getattr(r, "provider", "") or "").split("::")
            explicit = by_urn.get("::".join(ref[:-1])) if len(ref) > 1 else None
            if explicit is not None:
                provider = ProviderInfo(explicit.urn, explicit.type, explicit.name,
                                        getattr(explicit, "inputs", {}) or {})
            else:
                package = r.type.split(":")[0]
                provider = ProviderInfo(make_urn(project, stack, f"pulumi:providers:{package}", "default"),
                                        f"pulumi:providers:{package}", "default")
        dbr = getattr(r, "delete_before_replace", None)
        out.append(Resource(
            urn=r.urn, type=r.type, name=r.name, properties=props, parent=r.parent or "", custom=r.custom,
            provider=provider,
            dependencies=list(getattr(r, "dependencies", []) or []),
            property_dependencies=dict(getattr(r, "property_dependencies", {}) or {}),
            options=ResourceOptions(
                protect=bool(getattr(r, "protect", False)),
                ignore_changes=tuple(getattr(r, "ignore_changes", ()) or ()),
                delete_before_replace=True if dbr else None,
                additional_secret_outputs=tuple(getattr(r, "additional_secret_outputs", ()) or ()),
            ),
        ))
    return out


@dataclass(frozen=True)
class Diagnostic:
    policy_name: str
    enforcement_level: str  # advisory | mandatory | remediate | disabled
    message: str
    urn: str
    description: str
    policy_pack_name: str = ""
    policy_pack_version: str = ""
    severity: str = ""


@dataclass(frozen=True)
class NotApplicable:
    policy_name: str
    reason: str
    urn: str = ""  # the analysed resource; empty for AnalyzeStack


@dataclass
class AnalysisResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_applicable: list[NotApplicable] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.enforcement_level == "mandatory"]

    @property
    def advisory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.enforcement_level == "advisory"]

    def for_policy(self, name: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.policy_name == name]

    def not_applicable_for(self, name: str) -> list[NotApplicable]:
        return [n for n in self.not_applicable if n.policy_name == name]

    def extend(self, other: "AnalysisResult") -> None:
        self.diagnostics.extend(other.diagnostics)
        self.not_applicable.extend(other.not_applicable)


class PolicyPackError(RuntimeError):
    """The pack failed: did not start, crashed, or answered an RPC with an error."""


class PolicyConfigError(PolicyPackError):
    """The policy config does not validate against the pack's schemas (the CLI refuses it too)."""


def load_policy_config(source: Union[PathLike, Mapping[str, Any], None]) -> dict[str, dict[str, Any]]:
    """Parse the CLI's `--policy-pack-config` format: name -> level string, or {enforcementLevel?, key: value}."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        text = Path(source).read_text()
        raw = json.loads(text) if text.strip() else {}
    out: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            entry: dict[str, Any] = {"enforcementLevel": value}
        elif isinstance(value, Mapping):
            entry = dict(value)
        else:
            raise PolicyConfigError(f"parsing {name!r}: {value!r} is not a valid value; must be a string or object")
        level = entry.get("enforcementLevel")
        if level is not None and level not in LEVEL_VALUES:
            raise PolicyConfigError(f"parsing enforcement level for {name!r}: {level!r} is not a valid level")
        out[name] = entry
    return out


def reconcile_config(info: pb.AnalyzerInfo, given: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the CLI sends to Configure: schema defaults, then the pack's initial config, then `given`.

    Mirrors ReconcilePolicyPackConfig (pkg/resource/analyzer/config.go): an `all` entry sets every policy's level,
    and the result is validated against each policy's schema.
    """
    result: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        props = json_format.MessageToDict(policy.configSchema.properties)
        schemas[policy.name] = {"type": "object", "properties": props}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
        defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
        result[policy.name] = {"enforcementLevel": LEVELS[policy.enforcementLevel], "properties": defaults}

    # As in the CLI, an initial-config entry always carries a level: the proto's zero value reads as advisory.
    initial = {
        name: {"enforcementLevel": LEVELS[c.enforcementLevel], **json_format.MessageToDict(c.properties)}
        for name, c in info.initialConfig.items()
    }
    for layer in (initial, given):
        all_level = (layer.get("all") or {}).get("enforcementLevel")
        if all_level:
            for entry in result.values():
                entry["enforcementLevel"] = all_level
        for name, values in layer.items():
            entry = result.setdefault(name, {"enforcementLevel": "advisory", "properties": {}})
            for key, value in values.items():
                if key == "enforcementLevel":
                    entry["enforcementLevel"] = value
                else:
                    entry["properties"][key] = value

    _validate(schemas, result)
    return result


def _validate(schemas: Mapping[str, Mapping[str, Any]], config: Mapping[str, Mapping[str, Any]]) -> None:
    try:
        import jsonschema
    except ImportError:  # the CLI validates; without the library we only lose the early error
        return
    errors = []
    for name, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(config.get(name, {}).get("properties", {})):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{name}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError("policy pack configuration is invalid:\n  " + "\n  ".join(errors))


class PolicyPackServer:
    """A running policy pack and an Analyzer client bound to it. Use as a context manager."""

    def __init__(
        self,
        policy_dir: PathLike,
        *,
        project: str,
        stack: str,
        dry_run: bool = True,
        organization: str = "organization",
        stack_config: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        python: str = sys.executable,
        startup_timeout: float = 30.0,
        rpc_timeout: float = 60.0,
    ) -> None:
        self.policy_dir = Path(policy_dir).resolve()
        self.project = project
        self.stack = stack
        self.dry_run = dry_run
        self.organization = organization
        self.stack_config = dict(stack_config or {})
        self.extra_env = dict(env or {})
        self.python = python
        self.startup_timeout = startup_timeout
        self.rpc_timeout = rpc_timeout
        self.port: Optional[int] = None
        self.version = ""
        self.config: dict[str, dict[str, Any]] = {}
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[pb_grpc.AnalyzerStub] = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._info: Optional[pb.AnalyzerInfo] = None
        self._stderr_thread: Optional[threading.Thread] = None

    # lifecycle

    def __enter__(self) -> "PolicyPackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
            "PULUMI_ORGANIZATION": self.organization,
        })
        if self.stack_config:
            env["PULUMI_CONFIG"] = json.dumps({k: _config_string(v) for k, v in self.stack_config.items()})
        for key, value in self.extra_env.items():
            if value is None:
                env.pop(key, None)  # None removes an inherited variable (e.g. the developer's AWS_PROFILE)
            else:
                env[key] = value
        return env

    def command(self) -> list[str]:
        return [self.python, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."]

    def start(self) -> "PolicyPackServer":
        if self._process is not None:
            return self
        if not (self.policy_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{self.policy_dir} has no PulumiPolicy.yaml; it is not a policy pack")
        self._process = subprocess.Popen(
            self.command(), cwd=self.policy_dir, env=self.environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        first_line: "queue.Queue[Optional[str]]" = queue.Queue()
        assert self._process.stdout is not None and self._process.stderr is not None
        threading.Thread(target=self._pump_stdout, args=(self._process.stdout, first_line), daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._pump_stderr, args=(self._process.stderr,), daemon=True)
        self._stderr_thread.start()
        try:
            line = first_line.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.close()
            self._join_stderr()
            raise PolicyPackError(self._describe(
                f"policy pack printed no port within {self.startup_timeout:g}s")) from None
        if line is None:
            code = self._process.wait(timeout=5)
            self._join_stderr()
            self.close()
            raise PolicyPackError(self._describe(f"policy pack exited with code {code} before printing its port"))
        try:
            self.port = int(line.strip())
        except ValueError:
            self.close()
            raise PolicyPackError(self._describe(f"policy pack's first stdout line is not a port: {line!r}")) from None
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        except grpc.FutureTimeoutError:
            self.close()
            raise PolicyPackError(self._describe(f"policy pack's port {self.port} never accepted a connection")) from None
        self._stub = pb_grpc.AnalyzerStub(self._channel)
        self.version = pack_version(self.policy_dir)
        self._handshake()
        return self

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._stub = None

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def _pump_stdout(self, stream: IO[bytes], first_line: "queue.Queue[Optional[str]]") -> None:
        line = stream.readline()
        first_line.put(line.decode(errors="replace") if line else None)
        for _ in iter(stream.readline, b""):
            pass  # keep draining so a chatty pack never blocks on a full pipe

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr.append(raw.decode(errors="replace"))

    def _join_stderr(self) -> None:
        """Let the stderr pump collect a crashed pack's traceback before it is reported."""
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)

    def _describe(self, what: str) -> str:
        tail = self.stderr_tail.strip().splitlines()[-25:]
        shown = "\n    ".join(tail) if tail else "(nothing on stderr)"
        return (f"{what}\n  command: {' '.join(self.command())}\n  cwd: {self.policy_dir}\n"
                f"  stderr tail:\n    {shown}")

    # protocol

    def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise PolicyPackError("policy pack is not running; use `with PolicyPackServer(...)` or start()")
        try:
            return getattr(self._stub, method)(request, timeout=self.rpc_timeout)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            details = err.details() if hasattr(err, "details") else str(err)
            raise PolicyPackError(self._describe(f"{method} failed ({code}): {details}")) from err

    def _handshake(self) -> None:
        """Handshake then ConfigureStack, in the engine's order; Python packs do not implement Handshake."""
        assert self._stub is not None
        try:
            self._stub.Handshake(pb.AnalyzerHandshakeRequest(
                engine_address=ENGINE_ADDRESS, root_directory=str(self.policy_dir),
                program_directory=str(self.policy_dir)), timeout=self.rpc_timeout)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise PolicyPackError(self._describe(f"Handshake failed: {err.details()}")) from err
        self._call("ConfigureStack", pb.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization=self.organization, dry_run=self.dry_run,
            config={k: _config_string(v) for k, v in self.stack_config.items()}))

    def analyzer_info(self) -> pb.AnalyzerInfo:
        if self._info is None:
            self._info = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        return self._info

    def plugin_version(self) -> str:
        return str(self._call("GetPluginInfo", empty_pb2.Empty()).version)

    def configure(self, config: Union[PathLike, Mapping[str, Any], None] = None) -> dict[str, dict[str, Any]]:
        """Send Configure with `config` (a --policy-pack-config file or dict) reconciled as the CLI does."""
        reconciled = reconcile_config(self.analyzer_info(), load_policy_config(config))
        request = pb.ConfigureAnalyzerRequest()
        for name, entry in reconciled.items():
            policy_config = request.policyConfig[name]
            policy_config.enforcementLevel = LEVEL_VALUES[entry["enforcementLevel"]]
            if entry["properties"]:
                policy_config.properties.update(_plain(entry["properties"]))
        self._call("Configure", request)
        self.config = reconciled
        return reconciled

    def analyze_resource(self, resource: Resource) -> AnalysisResult:
        request = pb.AnalyzeRequest(
            type=resource.type, urn=resource.urn, name=resource.name,
            properties=to_struct(resource.properties), options=_options(resource),
        )
        if resource.provider is not None:
            request.provider.CopyFrom(_provider(resource.provider))
        return _result(self._call("Analyze", request), resource.urn, self.version)

    def analyze(self, resource: Resource) -> list[Diagnostic]:
        return self.analyze_resource(resource).diagnostics

    def analyze_stack_result(self, resources: Iterable[Resource]) -> AnalysisResult:
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
        return _result(self._call("AnalyzeStack", request), "", self.version)

    def analyze_stack(self, resources: Iterable[Resource]) -> list[Diagnostic]:
        return self.analyze_stack_result(resources).diagnostics

    def preview(self, resources: Sequence[Resource]) -> AnalysisResult:
        """What a preview does with a pack: Analyze every resource as it is registered, then AnalyzeStack."""
        result = AnalysisResult()
        for resource in resources:
            result.extend(self.analyze_resource(resource))
        result.extend(self.analyze_stack_result(resources))
        return result


def _config_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _options(resource: Resource) -> pb.AnalyzerResourceOptions:
    opts = resource.options
    return pb.AnalyzerResourceOptions(
        protect=opts.protect,
        ignoreChanges=list(opts.ignore_changes),
        deleteBeforeReplace=bool(opts.delete_before_replace),
        deleteBeforeReplaceDefined=opts.delete_before_replace is not None,
        additionalSecretOutputs=list(opts.additional_secret_outputs),
        aliases=list(opts.aliases),
        customTimeouts=pb.AnalyzerResourceOptions.CustomTimeouts(
            create=opts.custom_timeouts[0], update=opts.custom_timeouts[1], delete=opts.custom_timeouts[2]),
        parent=resource.parent,
    )


def _provider(provider: ProviderInfo) -> pb.AnalyzerProviderResource:
    return pb.AnalyzerProviderResource(type=provider.type, urn=provider.urn, name=provider.name,
                                       properties=to_struct(provider.properties))


def pack_version(policy_dir: PathLike) -> str:
    """The version in PulumiPolicy.yaml, which the CLI reports instead of the SDK's placeholder 0.0.1."""
    import yaml

    data = yaml.safe_load((Path(policy_dir) / "PulumiPolicy.yaml").read_text()) or {}
    return str(data.get("version") or "")


def _result(response: pb.AnalyzeResponse, urn: str, version: str = "") -> AnalysisResult:
    return AnalysisResult(
        diagnostics=[
            Diagnostic(
                policy_name=d.policyName,
                enforcement_level=LEVELS.get(d.enforcementLevel, str(d.enforcementLevel)),
                message=d.message,
                urn=d.urn or urn,  # the engine attributes Analyze findings to the analysed resource
                description=d.description,
                policy_pack_name=d.policyPackName,
                policy_pack_version=version or d.policyPackVersion,
                severity=SEVERITIES.get(d.severity, str(d.severity)),
            )
            for d in response.diagnostics
        ],
        not_applicable=[NotApplicable(n.policy_name, n.reason, urn) for n in response.not_applicable],
    )
