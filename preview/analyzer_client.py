"""Drive a policy pack over the Analyzer gRPC protocol the way the Pulumi engine does, without the CLI or a cloud.

The pack runs as the engine's shim starts it (preview.pack_process). Calls then follow the engine's order:
Handshake (Python packs answer UNIMPLEMENTED), ConfigureStack, GetAnalyzerInfo, Configure with the config
reconciled as the CLI does (preview.policy_config), Analyze per resource, AnalyzeStack at the end, with requests
built as the engine builds them (preview.analyzer_requests).

    with PolicyPackServer("policy", project="task-service", stack="prod") as pack:
        pack.configure("policy/config/prod.json")
        result = pack.preview(resources)     # every Analyze, then AnalyzeStack
        result.mandatory                     # -> list[Diagnostic]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar, Union

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi.runtime.proto import analyzer_pb2_grpc as pb_grpc

from preview.analyzer_requests import Resource, analyze_request, analyze_stack_request, configure_request
from preview.pack_process import ENGINE_ADDRESS, PackProcess, PolicyPackError, pack_version, shim_environment
from preview.policy_config import LEVELS, PathLike, ReconciledConfig, load_policy_config, reconcile_config, source_name

SEVERITIES = {
    pb.POLICY_SEVERITY_UNSPECIFIED: "",
    pb.POLICY_SEVERITY_LOW: "low",
    pb.POLICY_SEVERITY_MEDIUM: "medium",
    pb.POLICY_SEVERITY_HIGH: "high",
    pb.POLICY_SEVERITY_CRITICAL: "critical",
}

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


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

    def specific_lines(self) -> list[str]:
        """The message's lines without the policy's description, which the SDK puts in front of every message."""
        lines = [line for line in self.message.strip().splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].strip() == self.description.strip():
            lines = lines[1:]
        return lines or [self.description]


@dataclass(frozen=True)
class NotApplicable:
    policy_name: str
    reason: str
    urn: str = ""  # the analysed resource; empty for AnalyzeStack


@dataclass
class AnalysisResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_applicable: list[NotApplicable] = field(default_factory=list)

    def at_level(self, level: str) -> list[Diagnostic]:
        """The findings of one enforcement level (mandatory, advisory, remediate, disabled)."""
        return [d for d in self.diagnostics if d.enforcement_level == level]

    @property
    def mandatory(self) -> list[Diagnostic]:
        return self.at_level("mandatory")

    @property
    def advisory(self) -> list[Diagnostic]:
        return self.at_level("advisory")

    def for_policy(self, name: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.policy_name == name]

    def not_applicable_for(self, name: str) -> list[NotApplicable]:
        return [n for n in self.not_applicable if n.policy_name == name]

    def extend(self, other: AnalysisResult) -> None:
        self.diagnostics.extend(other.diagnostics)
        self.not_applicable.extend(other.not_applicable)


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
        # The engine passes config values as text, structured ones as JSON.
        self.stack_config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (stack_config or {}).items()}
        self.extra_env = dict(env or {})
        self.python = python
        self.startup_timeout = startup_timeout
        self.rpc_timeout = rpc_timeout
        self.version = ""
        self.config: ReconciledConfig = {}
        self._process: Optional[PackProcess] = None
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[pb_grpc.AnalyzerStub] = None
        self._info: Optional[pb.AnalyzerInfo] = None

    def __enter__(self) -> PolicyPackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self) -> PolicyPackServer:
        """Start the pack's process without waiting for it, so it boots while the caller does other work."""
        first = self._process is None
        if self._process is None:
            env = shim_environment(project=self.project, stack=self.stack, dry_run=self.dry_run,
                                   organization=self.organization, config=self.stack_config, extra=self.extra_env)
            self._process = PackProcess(self.policy_dir, env, python=self.python, startup_timeout=self.startup_timeout)
        try:
            self._process.spawn()
            if first:
                self.version = pack_version(self.policy_dir)  # a malformed manifest stops us now, not after the program
        except PolicyPackError:
            self.close()
            raise
        return self

    def start(self) -> PolicyPackServer:
        """Spawn the pack if needed, wait for its port and connect; a pack that fails to start is stopped."""
        if self._stub is not None:
            return self
        self.spawn()
        assert self._process is not None
        try:
            self._connect(self._process.start())
        except PolicyPackError:
            self.close()
            raise
        return self

    def _connect(self, port: int) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        except grpc.FutureTimeoutError:
            raise PolicyPackError(self._describe(f"policy pack's port {port} never accepted a connection")) from None
        self._stub = pb_grpc.AnalyzerStub(self._channel)
        self._handshake()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None:
            self._process.close()  # kept: a closed server never spawns a pack again
        self._stub = None

    def _describe(self, what: str) -> str:
        return self._process.describe(what) if self._process is not None else what

    def _call(self, name: str, method: grpc.UnaryUnaryMultiCallable[RequestT, ResponseT],
              request: RequestT) -> ResponseT:
        try:
            return method(request, timeout=self.rpc_timeout)
        except grpc.RpcError as err:
            code, details = (err.code(), err.details()) if isinstance(err, grpc.Call) else (None, str(err))
            raise PolicyPackError(self._describe(f"{name} failed ({code}): {details}")) from err

    def _analyzer(self) -> pb_grpc.AnalyzerStub:
        if self._stub is None:
            raise PolicyPackError("policy pack is not running; use `with PolicyPackServer(...)` or start()")
        return self._stub

    def _handshake(self) -> None:
        """Handshake then ConfigureStack, in the engine's order; Python packs do not implement Handshake."""
        analyzer = self._analyzer()
        try:
            analyzer.Handshake(pb.AnalyzerHandshakeRequest(
                engine_address=ENGINE_ADDRESS, root_directory=str(self.policy_dir),
                program_directory=str(self.policy_dir)), timeout=self.rpc_timeout)
        except grpc.RpcError as err:
            if not (isinstance(err, grpc.Call) and err.code() == grpc.StatusCode.UNIMPLEMENTED):
                details = err.details() if isinstance(err, grpc.Call) else str(err)
                raise PolicyPackError(self._describe(f"Handshake failed: {details}")) from err
        self._call("ConfigureStack", analyzer.ConfigureStack, pb.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization=self.organization, dry_run=self.dry_run,
            config=self.stack_config))

    def analyzer_info(self) -> pb.AnalyzerInfo:
        if self._info is None:
            self._info = self._call("GetAnalyzerInfo", self._analyzer().GetAnalyzerInfo, empty_pb2.Empty())
        return self._info

    def plugin_version(self) -> str:
        return str(self._call("GetPluginInfo", self._analyzer().GetPluginInfo, empty_pb2.Empty()).version)

    def configure(self, config: Union[PathLike, Mapping[str, Any], None] = None, source: Optional[str] = None) -> ReconciledConfig:
        """Send Configure with `config` (a --policy-pack-config file or dict) reconciled as the CLI does; `source`
        names it in messages when `config` is a file already read."""
        reconciled = reconcile_config(self.analyzer_info(), load_policy_config(config), source or source_name(config))
        self._call("Configure", self._analyzer().Configure, configure_request(reconciled))
        self.config = reconciled
        return reconciled

    def analyze_resource(self, resource: Resource) -> AnalysisResult:
        response = self._call("Analyze", self._analyzer().Analyze, analyze_request(resource))
        return _result(response, resource.urn, self.version)

    def analyze(self, resource: Resource) -> list[Diagnostic]:
        return self.analyze_resource(resource).diagnostics

    def analyze_stack_result(self, resources: Iterable[Resource]) -> AnalysisResult:
        response = self._call("AnalyzeStack", self._analyzer().AnalyzeStack, analyze_stack_request(resources))
        return _result(response, "", self.version)

    def preview(self, resources: Sequence[Resource]) -> AnalysisResult:
        """What a preview does with a pack: Analyze every resource as it is registered, then AnalyzeStack."""
        result = AnalysisResult()
        for resource in resources:
            result.extend(self.analyze_resource(resource))
        result.extend(self.analyze_stack_result(resources))
        return result


def _result(response: pb.AnalyzeResponse, urn: str, version: str) -> AnalysisResult:
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
