"""`python -m preview`: a `pulumi preview` with the policy pack that needs no CLI, no plugin and no cloud.

Runs `__main__.py` unchanged under the mock runtime (see preview.engine), serves every registration to the policy
pack over its Analyzer protocol exactly as the engine does (see preview.analyzer_client), and prints what a person
expects from `pulumi preview`: the resource tree, a summary, the policy results and the stack outputs.
Exit codes: 0 clean or advisory only, 1 mandatory policy violations, 2 bad config, files or usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from preview import cost, prices
from preview.analyzer_client import AnalysisResult, PolicyPackServer
from preview.analyzer_requests import resources_from_recording
from preview.digest import digest
from preview.engine import STACK_TYPE, ProgramError, Recording, run_program
from preview.outputs import plain_value, stack_outputs
from preview.pack_process import PolicyPackError
from preview.policy_config import load_policy_config, source_name
from preview.stack_files import StackFileError, load_stack
from preview.summary import markdown
from preview.wire import UNKNOWN
from task_service.contract import PREVIEW_UNKNOWN_KEY
from task_service.untrusted import InputError
from task_service.version import version

EXIT_OK, EXIT_MANDATORY, EXIT_USAGE = 0, 1, 2


@dataclass
class PreviewResult:
    recording: Recording
    policy: AnalysisResult | None
    timings: dict[str, float] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    """The stack's config as the engine's prelude shows it (secrets blinded)."""

    @property
    def exit_code(self) -> int:
        return EXIT_MANDATORY if self.policy is not None and self.policy.mandatory else EXIT_OK


class _Progress:
    """Phase messages on an interactive terminal; silent in CI and when output is piped."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.enabled = stream.isatty() and not os.environ.get("CI")

    def step(self, message: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\033[K… {message}")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run_preview(
    project_dir: Path,
    stack: str,
    *,
    policy_dir: Path | None,
    policy_config: Path | None,
    references_dir: Path | None = None,
    progress: _Progress | None = None,
) -> PreviewResult:
    """Program under mocks, then the policy pack over gRPC; raises StackFileError/ProgramError/PolicyPackError."""
    progress = progress or _Progress(sys.stderr)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    settings = load_stack(project_dir, stack)
    # A malformed policy config file is refused before anything runs; names and settings need the pack's schemas.
    given = load_policy_config(policy_config)
    pack = None
    if policy_dir is not None:
        pack = PolicyPackServer(
            policy_dir, project=settings.project, stack=stack, dry_run=True, stack_config=settings.engine_config()
        )
    policy = None
    with contextlib.ExitStack() as cleanup:
        if pack is not None:
            cleanup.callback(pack.close)  # also when a signal unwinds the stack (see preview/__main__.py)
            # The pack's interpreter boots (about a second) while the program runs, as the engine overlaps them too.
            pack.spawn()
        progress.step(f"running the program for {settings.project}/{stack}")
        recording = run_program(project_dir, stack, settings_=settings, references_dir=references_dir)
        timings["program"] = time.perf_counter() - started
        if pack is not None:
            progress.step("evaluating the policy pack")
            pack.start()
            policy_started = time.perf_counter()
            pack.configure(given, source_name(policy_config))
            policy = pack.preview(resources_from_recording(recording.resources, project=settings.project, stack=stack))
            timings["policy"] = time.perf_counter() - policy_started
    timings["total"] = time.perf_counter() - started
    progress.done()
    return PreviewResult(recording, policy, timings, settings.prelude_config())


def _display(value: Any) -> str:
    if value == UNKNOWN:
        return "output<string>"
    if isinstance(value, (dict, list)):
        text = json.dumps(value).replace(json.dumps(UNKNOWN), "output<string>")
        return text if len(text) <= 100 else text[:97] + "..."
    return str(value)


def render(result: PreviewResult, out: TextIO) -> None:
    rec = result.recording
    children: dict[str, list[Any]] = {}
    for resource in rec.resources:
        children.setdefault(resource.parent, []).append(resource)
    width = max((len(r.type) for r in rec.resources), default=20) + 8

    out.write(f"Previewing update ({rec.project}/{rec.stack}): hermetic, no cloud calls\n\n")
    out.write(f"     {'Type':<{width}} Name\n")
    out.write(f" +   {STACK_TYPE:<{width}} {rec.project}-{rec.stack}\n")

    def walk(parent: str, prefix: str) -> None:
        # Registration order depends on when each resource's inputs resolve; sort so reports diff cleanly.
        kids = sorted(children.get(parent, []), key=lambda r: (r.name, r.type))
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            branch = f"{prefix}{'└─ ' if last else '├─ '}"
            out.write(f" +   {branch + resource.type:<{width}} {resource.name}\n")
            walk(resource.urn, prefix + ("   " if last else "│  "))

    walk(rec.stack_urn, "")
    if result.policy is not None:
        _render_policy(result.policy, rec, out)
    out.write("\nOutputs:\n")
    outputs = {key: plain_value(value) for key, value in sorted(rec.outputs.items())}
    key_width = max((len(k) for k in outputs), default=0)
    for key, value in outputs.items():
        out.write(f"    {key:<{key_width}}: {_display(value)}\n")
    out.write("\nResources:\n")
    out.write(f"    + {len(rec.resources) + 1} to create\n")
    for type_, count in sorted(Counter(r.type for r in rec.resources).items()):
        out.write(f"      {count:>3} {type_}\n")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    out.write(f"\nDuration: {timing}\n")


def _render_policy(policy: AnalysisResult, rec: Recording, out: TextIO) -> None:
    names = {r.urn: f"{r.type} ({r.name})" for r in rec.resources}
    out.write("\nPolicies:\n")
    if not policy.diagnostics and not policy.not_applicable:
        out.write("    ✅ no violations\n")
    for level, marker in (("mandatory", "❌"), ("advisory", "⚠️ "), ("remediate", "🔧"), ("disabled", "  ")):
        found = policy.at_level(level)
        if not found:
            continue
        out.write(f"    {marker} {level} ({len(found)})\n")
        for d in found:
            where = names.get(d.urn, d.urn or "the stack")
            out.write(f"        - [{d.policy_name}] {where}\n")
            for line in d.specific_lines():
                out.write(f"          {line}\n")
    if policy.not_applicable:
        out.write(f"    ∅  not applicable ({len(policy.not_applicable)})\n")
        for n in policy.not_applicable:
            where = names.get(n.urn, n.urn or "the stack")
            out.write(f"        - [{n.policy_name}] {where}: {n.reason}\n")


def as_json(result: PreviewResult) -> dict[str, Any]:
    """The CLI's PreviewDigest plus `policyViolations` (see preview.digest)."""
    return digest(result.recording, result.policy, result.config, result.timings.get("total", 0.0))


def _summaries(args: argparse.Namespace) -> list[tuple[Path, str, str]]:
    """Where the Markdown summary goes, as (path, mode, what): `--summary`, and CI's step summary."""
    summaries = []
    if args.summary is not None:
        summaries.append((args.summary, "w", "summary file"))
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        summaries.append((Path(os.environ["GITHUB_STEP_SUMMARY"]), "a", "$GITHUB_STEP_SUMMARY"))
    return summaries


def _files(
    args: argparse.Namespace, result: PreviewResult, priced: cost.Estimate | prices.PriceTableError | None
) -> list[tuple[Path, str, str, str]]:
    """What this run writes besides stdout, as (path, mode, text, what): the outputs, the summary, CI's step summary."""
    files = []
    if args.outputs is not None:
        files.append((args.outputs, "w", json.dumps(stack_outputs(result.recording), indent=2) + "\n", "outputs file"))
    summaries = _summaries(args)
    if summaries and priced is not None:
        text = markdown(result.recording, result.policy, result.exit_code) + cost.summary_section(priced)
        files.extend((path, mode, text, what) for path, mode, what in summaries)
    return files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m preview",
        description="Hermetic `pulumi preview` with the policy pack: no Pulumi CLI, no provider plugin, no cloud.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("-s", "--stack", default="dev", help="stack name, reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("-C", "--cwd", type=Path, default=Path.cwd(), help="project directory (default: .)")
    parser.add_argument("--policy-pack", type=Path, default=None, help="policy pack directory (default: <cwd>/policy)")
    parser.add_argument(
        "--policy-pack-config", type=Path, default=None, help="policy config JSON (default: <pack>/config/<stack>.json)"
    )
    parser.add_argument("--no-policy", action="store_true", help="skip the policy pack")
    parser.add_argument("--stack-references", type=Path, default=None, help="outputs of referenced stacks (default: <cwd>/stack-references)")
    parser.add_argument(
        "--json", action="store_true",
        help="print the result as `pulumi preview --json` does (its PreviewDigest), plus policyViolations",
    )
    parser.add_argument(
        "--summary", type=Path, default=None, metavar="FILE",
        help="write the Markdown summary to FILE (it always goes to $GITHUB_STEP_SUMMARY when that is set)",
    )
    parser.add_argument(
        "--cost", action="store_true",
        help="also print the stack's monthly cost estimate (under `cost` with --json); the summary always has it",
    )
    parser.add_argument(
        "--outputs", type=Path, default=None,
        help=f"write the outputs as `pulumi stack output --json` does; unknown ones are named under {PREVIEW_UNKNOWN_KEY}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    project_dir = args.cwd.resolve()
    policy_dir = None if args.no_policy else (args.policy_pack or project_dir / "policy").resolve()
    policy_config = args.policy_pack_config
    if policy_dir is not None and policy_config is None:
        default = policy_dir / "config" / f"{args.stack}.json"
        policy_config = default if default.is_file() else None
    try:
        if policy_dir is not None and not (policy_dir / "PulumiPolicy.yaml").is_file():
            raise StackFileError(f"{policy_dir / 'PulumiPolicy.yaml'} not found (expected a policy pack directory)")
        if policy_config is not None and not policy_config.is_file():
            raise StackFileError(f"{policy_config} not found (expected a --policy-pack-config JSON file)")
        result = run_preview(
            project_dir, args.stack, policy_dir=policy_dir, policy_config=policy_config, references_dir=args.stack_references
        )
    except (InputError, ProgramError, PolicyPackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    priced = cost.priced(result.recording) if args.cost or _summaries(args) else None
    for path, mode, text, what in _files(args, result, priced):
        try:
            with open(path, mode, encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            print(f"error: cannot write {what} {path}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    estimate = None
    if args.cost:
        if isinstance(priced, prices.PriceTableError):
            print(f"error: {priced}", file=sys.stderr)
            return EXIT_USAGE
        estimate = priced
    if args.json:
        document = as_json(result) | ({"cost": cost.as_json(estimate)} if estimate else {})
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        render(result, sys.stdout)
        if estimate:
            cost.render(estimate, sys.stdout.write)
    return result.exit_code
