"""`--json`: the Pulumi CLI's PreviewDigest (`pulumi preview --json`), so jq scripts written for real previews work.

The shape is pulumi/pulumi pkg/display/json.go as pkg/backend/display/json.go fills it: `config` (the stack's config
as the engine's prelude event carries it: structured values as compact JSON, secrets blinded as "[secret]"), `steps`
(`op`, `urn`, `provider`, `newState` as apitype.ResourceV3 with inputs as the state file holds them: secrets
"[secret]", values only a deploy can know as the engine's unknown sentinel; `detailedDiff` null, as for a create),
`diagnostics` (`urn`, `prefix`, `message`, `severity`), `duration` (nanoseconds) and `changeSummary`. Empty fields
are left out, as Go's `omitempty` does.

What the CLI's digest does not hold: the policy results (it skips policy events), here as diagnostics (`prefix`
"mandatory: " / "advisory: ", severity error / warning, the message beginning with the prefix as the CLI
concatenates them; not-applicable results as info) and, in full, in the one extra top-level list
`policyViolations` (`policyName`, `policyPackName`, `policyPackVersion`, `enforcementLevel`, `urn`, `message`,
`severity`, as the engine's PolicyViolationEvent names them); the stack's outputs, on the Stack step's
`newState.outputs`. There are no steps for the default providers the engine would add.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from preview.analyzer_client import AnalysisResult, Diagnostic
from preview.engine import STACK_TYPE, RecordedResource, Recording
from preview.outputs import plain_value

SEVERITY = {"mandatory": "error", "advisory": "warning", "remediate": "info"}
"""The diagnostic severity the CLI gives each enforcement level's finding (mandatory fails the preview)."""


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Go's `omitempty`: drop empty strings, lists, maps and false."""
    return {key: value for key, value in fields.items() if value not in ("", [], {}, False, None)}


def _new_state(resource: RecordedResource) -> dict[str, Any]:
    state = {"urn": resource.urn, "custom": resource.custom, "type": resource.type}
    return state | _present(
        {
            "inputs": plain_value(resource.inputs),
            "parent": resource.parent,
            "protect": resource.protect,
            "dependencies": resource.dependencies,
            "provider": resource.provider,
            "propertyDependencies": resource.property_dependencies,
            "additionalSecretOutputs": resource.additional_secret_outputs,
            "ignoreChanges": resource.ignore_changes,
        }
    )


def steps(recording: Recording) -> list[dict[str, Any]]:
    """The Stack's step, then one create per registration in registration order."""
    stack = {"urn": recording.stack_urn, "custom": False, "type": STACK_TYPE} | _present({"outputs": plain_value(recording.outputs)})
    found = [{"op": "create", "urn": recording.stack_urn, "newState": stack, "detailedDiff": None}]
    for resource in recording.resources:
        found.append({"op": "create", "urn": resource.urn} | _present({"provider": resource.provider}) | {"newState": _new_state(resource), "detailedDiff": None})
    return found


def violation(d: Diagnostic) -> dict[str, Any]:
    return {
        "policyName": d.policy_name,
        "policyPackName": d.policy_pack_name,
        "policyPackVersion": d.policy_pack_version,
        "enforcementLevel": d.enforcement_level,
        "urn": d.urn,
        "message": d.message,
        "severity": d.severity,
    }


def diagnostics(policy: AnalysisResult | None) -> list[dict[str, Any]]:
    """Policy findings as the CLI shows them in text: a prefix naming the level, then `[policy] message`."""
    if policy is None:
        return []
    found = []
    for d in policy.diagnostics:
        prefix = f"{d.enforcement_level}: "
        found.append(_present({"urn": d.urn}) | {"prefix": prefix, "message": f"{prefix}[{d.policy_name}] {d.message}", "severity": SEVERITY.get(d.enforcement_level, "info")})
    for n in policy.not_applicable:
        prefix = "not applicable: "
        found.append(_present({"urn": n.urn}) | {"prefix": prefix, "message": f"{prefix}[{n.policy_name}] {n.reason}", "severity": "info"})
    return found


def digest(recording: Recording, policy: AnalysisResult | None, config: dict[str, str], seconds: float) -> dict[str, Any]:
    everything = steps(recording)
    return _present(
        {
            "config": config,
            "steps": everything,
            "diagnostics": diagnostics(policy),
            "duration": round(seconds * 1e9),
            "changeSummary": dict(Counter(step["op"] for step in everything)),
        }
    ) | {"policyViolations": [violation(d) for d in policy.diagnostics] if policy is not None else []}
