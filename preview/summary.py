"""The Markdown summary a reviewer reads on the pull request: resources by change, policy findings by level with
the resource and the remedy, and the outputs. CI gets it in `$GITHUB_STEP_SUMMARY`; `--summary FILE` writes it
for the workflow's pull-request comment.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from preview.analyzer_client import AnalysisResult, Diagnostic
from preview.engine import Recording
from preview.outputs import stack_outputs
from task_service.contract import PREVIEW_UNKNOWN_KEY

LEVELS = (("mandatory", "❌"), ("advisory", "⚠️"), ("remediate", "🔧"))
REMEDY_PREFIX = "Remediation:"
VALUE_WIDTH = 100


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\r", "").strip().replace("\n", "<br>")


def finding_and_remedy(d: Diagnostic) -> tuple[str, str]:
    """The pack ends every message with `Remediation: <remedy>` (policy/task_service_policies/common.py)."""
    lines = [line.strip() for line in d.specific_lines()]
    remedy = [line[len(REMEDY_PREFIX):].strip() for line in lines if line.startswith(REMEDY_PREFIX)]
    finding = [line for line in lines if not line.startswith(REMEDY_PREFIX)]
    return " ".join(finding) or d.description, " ".join(remedy) or "see the policy's description"


def _resource(names: dict[str, tuple[str, str]], urn: str) -> str:
    if urn in names:
        type_, name = names[urn]
        return f"`{name}` ({cell(type_)})"
    return "the stack" if not urn or "::pulumi:pulumi:Stack::" in urn else f"`{cell(urn)}`"


def _policy(policy: AnalysisResult | None, names: dict[str, tuple[str, str]]) -> list[str]:
    if policy is None:
        return ["Not run (`--no-policy`)."]
    if not policy.diagnostics and not policy.not_applicable:
        return ["✅ No violations."]
    lines = []
    for level, marker in LEVELS:
        found = policy.at_level(level)
        if not found:
            continue
        lines += ["", f"**{marker} {level} ({len(found)})**", "", "| policy | resource | finding | remedy |", "|---|---|---|---|"]
        for d in found:
            finding, remedy = finding_and_remedy(d)
            lines.append(f"| `{d.policy_name}` | {_resource(names, d.urn)} | {cell(finding)} | {cell(remedy)} |")
    if policy.not_applicable:
        lines += ["", f"**∅ not applicable ({len(policy.not_applicable)})**", "", "| policy | resource | why |", "|---|---|---|"]
        lines += [f"| `{n.policy_name}` | {_resource(names, n.urn)} | {cell(n.reason)} |" for n in policy.not_applicable]
    return lines[1:]


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return cell(text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "...")


def _outputs(recording: Recording) -> list[str]:
    known = stack_outputs(recording)
    unknown = known.pop(PREVIEW_UNKNOWN_KEY, [])
    rows = [(name, f"`{_value(value)}`") for name, value in known.items()] + [(name, "*known after deploy*") for name in unknown]
    return [
        f"<details><summary>{len(rows)} outputs ({len(unknown)} known only after deploy)</summary>",
        "",
        "| output | value |",
        "|---|---|",
        *(f"| `{name}` | {shown} |" for name, shown in sorted(rows)),
        "",
        "</details>",
    ]


def markdown(recording: Recording, policy: AnalysisResult | None, exit_code: int) -> str:
    names = {r.urn: (r.type, r.name) for r in recording.resources}
    by_type = Counter(r.type for r in recording.resources)
    mandatory = len(policy.mandatory) if policy is not None else 0
    verdict = f"❌ {mandatory} mandatory policy violation(s): exit {exit_code}" if mandatory else f"✅ exit {exit_code}"
    lines = [
        f"### Hermetic preview of `{recording.project}/{recording.stack}`",
        "",
        f"{verdict}. The program under Pulumi's mock runtime and the policy pack over its Analyzer protocol: no cloud, no Pulumi CLI.",
        "",
        "#### Resources by change",
        "",
        "| change | resources |",
        "|---|---|",
        f"| create | {len(recording.resources) + 1} (the stack and {len(recording.resources)} resources) |",
        "",
        f"<details><summary>By type ({len(by_type)} types)</summary>",
        "",
        "| type | create |",
        "|---|---|",
        *(f"| `{type_}` | {count} |" for type_, count in sorted(by_type.items())),
        "",
        "</details>",
        "",
        "#### Policy violations",
        "",
        *_policy(policy, names),
        "",
        "#### Outputs",
        "",
        *_outputs(recording),
    ]
    return "\n".join(lines) + "\n"
