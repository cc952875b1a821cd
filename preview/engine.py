"""Run the Pulumi program unchanged under Pulumi's mock runtime and record what the engine would receive.

A `MockMonitor` subclass sees every RegisterResource request exactly as the language SDK sends it to the engine:
type, name, parent, dependencies, options and `request.object`, already in wire format (camelCase keys, secret
and unknown sentinels). The program runs inside `run_in_stack`, so `pulumi.export` values arrive as the root
Stack's RegisterResourceOutputs. URNs are built as the engine builds them (the parent's type chain, except the
root Stack's). In preview mode provider-computed outputs (ARNs, endpoints) stay unknown, as in a real preview of
a new stack; StackReference reads are answered from `stack-references/<org>.<project>.<stack>.json`.
"""

from __future__ import annotations

import asyncio
import hashlib
import contextvars
import functools
import logging
import runpy
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

from preview.stack_files import StackSettings, load_stack, set_path
from task_service.untrusted import InputError, clip, read_json

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
FAKE_ACCOUNT = "123456789012"


class ProgramError(Exception):
    """The program stopped (bad config, a missing stack reference file, a bug); the message says why."""


@dataclass
class RecordedResource:
    """One RegisterResource request, as the engine would receive it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs_struct: struct_pb2.Struct
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    provider: str
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """Alias specs as sent (`{"spec": {"name", "type", "parentUrn", ...}}`), or `{"urn": ...}`."""

    @functools.cached_property
    def inputs(self) -> dict[str, Any]:
        """The wire inputs as Python values, sentinels kept (converted on first use: most runs never need it)."""
        return _to_python(self.inputs_struct)


@dataclass
class Recording:
    project: str
    stack: str
    preview: bool
    resources: list[RecordedResource] = field(default_factory=list)
    stack_urn: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: list[tuple[str, str, str]] = field(default_factory=list)
    """ReadResource requests (type, name, id): StackReferences and `.get()` lookups of existing resources."""

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.by_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {len(found)}")
        return found[0]


def _to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct, preserving_proto_field_name=True)


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mock: mocks.Mocks, recording: Recording, preview: bool):
        super().__init__(mock)
        self.recording = recording
        self.preview = preview

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine omits the root Stack from a child's type chain; the SDK's mock does not.
        if parent and parent.split("::")[2] == STACK_TYPE:
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:
        if self.preview and request.type != STACK_TYPE:
            # A preview echoes the inputs back, so the request's own Struct is the answer: skipping the mock's
            # deserialize/serialize round trip halves the per-resource cost.
            response = resource_pb2.RegisterResourceResponse(
                urn=self.make_urn(request.parent, request.type, request.name), object=request.object
            )
        else:
            response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            self.recording.stack_urn = response.urn
            return response
        self.recording.resources.append(
            RecordedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=bool(request.custom),
                inputs_struct=request.object,
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                provider=request.provider,
                aliases=[json_format.MessageToDict(alias) for alias in request.aliases],
            )
        )
        return response

    def ReadResource(self, request: Any) -> Any:
        self.recording.reads.append((request.type, request.name, request.id))
        return super().ReadResource(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self.recording.stack_urn:
            self.recording.outputs = _to_python(request.outputs)
        else:
            self.recording.component_outputs[request.urn] = _to_python(request.outputs)
        return super().RegisterResourceOutputs(request)


class _Mocks(pulumi.runtime.Mocks):
    """Answers registrations: inputs echo back; computed outputs are unknown (preview) or plausible fakes."""

    def __init__(self, region: str, preview: bool, references_dir: Path):
        self.region = region
        self.preview = preview
        self.references_dir = references_dir
        self.reference_problems: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE_TYPE:
            return args.name, {"name": args.inputs["name"], "outputs": self._stack_outputs(args.inputs["name"])}
        state = dict(args.inputs)
        if self.preview:
            return None, state
        fakes = self._fakes(args.typ, args.name, state)
        return str(fakes["id"]), {**fakes, **state}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": FAKE_ACCOUNT, "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:user/preview", "userId": "preview"}, None
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}, None
        return {}, None

    def _stack_outputs(self, stack_name: str) -> dict[str, Any]:
        """Outputs of a referenced stack from a local file. Problems are reported after the run: raising here,
        inside the SDK's RPC thread, would surface as a confusing asyncio error instead of this message."""
        path = self.references_dir / (stack_name.replace("/", ".") + ".json")
        problem = None
        outputs: Any = {}
        if not path.is_file():
            problem = f"no outputs file {path} (save the referenced stack's `pulumi stack output --json` there)"
        else:
            try:
                outputs = read_json(path, str(path))
            except InputError as exc:
                problem = str(exc)
            if not problem and not isinstance(outputs, dict):
                problem = f"{path} must hold a JSON object of outputs"
        if problem:
            self.reference_problems.append(f"stack reference {stack_name!r}: {problem}")
            return {}
        return outputs

    def _fakes(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        """Deterministic stand-ins for what AWS computes, shaped like the real values (ARN formats, physical names),
        for tests and fixtures that need values rather than unknowns."""
        physical = str(state.get("name") or name)
        digest = hashlib.sha256(f"{typ}/{name}".encode()).hexdigest()
        service = typ.split(":")[1].split("/")[0]
        prefix = f"arn:aws:{{}}:{self.region}:{FAKE_ACCOUNT}:"
        fakes: dict[str, Any] = {"arn": prefix.format(service) + physical, "id": f"{name}-id"}
        if typ == "aws:lb/targetGroup:TargetGroup":
            suffix = f"targetgroup/{physical}/{digest[:16]}"
            fakes.update(arn=prefix.format("elasticloadbalancing") + suffix, arnSuffix=suffix)
        elif typ == "aws:lb/listenerRule:ListenerRule":
            listener = str(state.get("listenerArn", ""))
            fakes["arn"] = listener.replace(":listener/", ":listener-rule/", 1) + f"/{digest[:16]}"
        elif typ == "aws:secretsmanager/secret:Secret":
            fakes["arn"] = prefix.format("secretsmanager") + f"secret:{physical}-{digest[:6]}"
        elif typ == "aws:kms/key:Key":
            fakes.update(arn=prefix.format("kms") + f"key/{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}")
        elif typ == "aws:iam/role:Role":
            fakes["arn"] = f"arn:aws:iam::{FAKE_ACCOUNT}:role/{physical}"
        elif typ == "aws:rds/instance:Instance":
            address = f"{state.get('identifier', name)}.abcdefghij12.{self.region}.rds.amazonaws.com"
            fakes.update(address=address, endpoint=f"{address}:5432", engineVersionActual="16.4", port=5432)
        elif typ == "aws:ecr/repository:Repository":
            fakes["repositoryUrl"] = f"{FAKE_ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{physical}"
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            fakes["id"] = f"sg-{digest[:17]}"
        elif typ == "aws:dms/replicationInstance:ReplicationInstance":
            fakes["replicationInstanceArn"] = prefix.format("dms") + f"rep:{state.get('replicationInstanceId')}"
        elif typ == "aws:dms/endpoint:Endpoint":
            fakes["endpointArn"] = prefix.format("dms") + f"endpoint:{state.get('endpointId')}"
        elif typ == "aws:dms/replicationTask:ReplicationTask":
            fakes["replicationTaskArn"] = prefix.format("dms") + f"task:{state.get('resourceIdentifier')}"
        elif typ == "random:index/randomPassword:RandomPassword":
            fakes["result"] = "x" * int(state.get("length", 32))
        return fakes


def _quiet_about_reported_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A config error fails every output that depends on it; each such future, collected later, would be logged
    with a traceback. The error is reported once, as the run's result; anything else is logged as usual."""
    if isinstance(context.get("exception"), pulumi.RunError):
        return
    loop.default_exception_handler(context)


def run_program(
    project_dir: Path,
    stack: str,
    overrides: dict[str, Any] | None = None,
    *,
    preview: bool = True,
    references_dir: Path | None = None,
    settings_: StackSettings | None = None,
) -> Recording:
    """Run `project_dir/__main__.py` for `stack` and return every registration and the stack outputs.

    `overrides` maps config keys, optionally with a `--path` style suffix (`task-service:db.multiAz`), to values.
    """
    project_dir = project_dir.resolve()
    stack_settings = settings_ or load_stack(project_dir, stack)
    for key, value in (overrides or {}).items():
        set_path(stack_settings.config, key, value)
    region = str(stack_settings.config.get("aws:region", "us-east-1"))
    recording = Recording(project=stack_settings.project, stack=stack, preview=preview)
    mock = _Mocks(region, preview, references_dir or project_dir / "stack-references")

    def run() -> None:
        # The SDK tracks outstanding outputs in a process-wide set that set_mocks does not reset (its own test
        # decorator clears it too); a failed earlier run would leave tasks of a closed event loop in it.
        settings.SETTINGS.outputs.clear()
        pulumi.runtime.set_all_config(stack_settings.engine_config(), sorted(stack_settings.secret_keys))
        # set_mocks would create and finish a Stack of its own; a placeholder root makes it skip that, so the
        # program's exports land on the Stack that run_in_stack creates.
        settings.ROOT.set(object())  # type: ignore[arg-type]
        pulumi.runtime.set_mocks(
            mock,
            project=stack_settings.project,
            stack=stack,
            preview=preview,
            monitor=_RecordingMonitor(mock, recording, preview),
        )
        settings.ROOT.set(None)
        main = str(project_dir / "__main__.py")

        def program() -> None:
            runpy.run_path(main, run_name="__main__")

        async def in_stack() -> None:
            asyncio.get_running_loop().set_exception_handler(_quiet_about_reported_errors)
            await run_in_stack(program)

        asyncio.run(in_stack())

    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    # A failed run leaves futures nobody awaits; asyncio would log each with a traceback. The failure itself is
    # reported below, once, so keep asyncio's logger and the never-awaited warnings quiet meanwhile.
    asyncio_logger = logging.getLogger("asyncio")
    previous_level = asyncio_logger.level
    asyncio_logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
            contextvars.Context().run(run)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message; the cause decides which
        settings.SETTINGS.outputs.clear()
        if mock.reference_problems:
            raise ProgramError(mock.reference_problems[0]) from None
        if isinstance(exc, pulumi.RunError):
            raise ProgramError(str(exc)) from None
        raise ProgramError(f"the program failed: {type(exc).__name__}: {clip(str(exc))}") from exc
    finally:
        asyncio_logger.setLevel(previous_level)
    return recording
