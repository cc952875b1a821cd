"""Stack outputs: one loader and typed accessors, so every command reports a bad key the same way.

Sources, in order: `--outputs FILE` (the JSON of `pulumi stack output --json --show-secrets`, or the
hermetic preview's file in the same shape); else the `pulumi` CLI when it is on PATH; else a clear
message. Every output is read through its `task_service.contract` constant: its kind decides the type
check and its meaning goes in messages. Outputs the hermetic preview lists under
`contract.PREVIEW_UNKNOWN_KEY` and secrets printed without `--show-secrets` count as "not available":
`render` says so at the step, live commands stop.

An outputs file is input, not trusted code: it is read strictly (task_service.untrusted), values are checked
against their kind and, where the contract gives one, their pattern, messages quote them bounded, and the value
of a secret output is never shown in a message or in rendered text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.errors import BadInput
from task_service import contract
from task_service.contract import Kind, Output
from task_service.untrusted import REDACTED, InputError, clip, loads, quote, read_text

SECRET_PLACEHOLDER = "[secret]"
PREVIEW_UNKNOWN = "unknown until the stack is deployed (this is preview output)"

_TYPES: dict[Kind, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda value: isinstance(value, str) and bool(value), "a non-empty string"),
    "integer": (lambda value: isinstance(value, int) and not isinstance(value, bool), "an integer"),
    "strings": (lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value), "a list of strings"),
}


@dataclass(frozen=True)
class Outputs:
    """The outputs of one stack, with accessors that fail the same way for every command."""

    values: dict[str, Any]
    source: str
    unknown: frozenset[str] = frozenset()
    """Names the hermetic preview could not know (listed under `contract.PREVIEW_UNKNOWN_KEY`)."""

    def present(self, output: Output) -> bool:
        """The file holds the output at all, known or not (null counts as absent, as the CLI drops it)."""
        return output.name in self.unknown or self.values.get(output.name) is not None

    @property
    def dms_enabled(self) -> bool:
        """DMS outputs are exported only when the stack enables DMS (dev has none)."""
        return any(self.present(output) for output in contract.CONTRACT if output.dms)

    @property
    def test_route_enabled(self) -> bool:
        """The test route's outputs are exported only when the stack enables it (`testRoute.enabled`)."""
        return any(self.present(output) for output in contract.CONTRACT if output.test_route)

    def exports(self, output: Output) -> bool:
        """Whether this stack exports `output` at all (DMS and test-route outputs only where those are on)."""
        return output.exported_by(self.dms_enabled, self.test_route_enabled)

    def reason_unavailable(self, output: Output) -> str | None:
        """None when `output` holds a real value; otherwise a short reason fit for a runbook note."""
        if output.name in self.unknown:
            return PREVIEW_UNKNOWN
        if not self.present(output):
            return f"missing from {self.source}"
        if self.values[output.name] == SECRET_PLACEHOLDER:
            return "a secret printed without --show-secrets"
        return None

    def available(self, output: Output) -> bool:
        return self.reason_unavailable(output) is None

    def value(self, output: Output) -> Any:
        """The value, checked against the output's kind; BadInput names the output and its meaning."""
        reason = self.reason_unavailable(output)
        if reason is not None:
            raise BadInput(f"stack output '{output.name}' ({output.meaning}) is {reason}.")
        value = self.values[output.name]
        accepts, expected = _TYPES[output.kind]
        shown = "a secret value" if output.secret else f"{type(value).__name__} {quote(value)}"
        if not accepts(value):
            raise BadInput(f"stack output '{output.name}' ({output.meaning}) in {self.source} should be {expected}, got {shown}.")
        if output.pattern and not re.fullmatch(output.pattern, value, re.ASCII):
            raise BadInput(f"stack output '{output.name}' ({output.meaning}) in {self.source} is not valid, got {shown}.")
        return value

    def _typed(self, output: Output, kind: Kind) -> Any:
        if output.kind != kind:
            raise TypeError(f"output {output.name} is of kind {output.kind}, not {kind}")
        return self.value(output)

    def string(self, output: Output) -> str:
        text: str = self._typed(output, "string")
        return text

    def integer(self, output: Output) -> int:
        number: int = self._typed(output, "integer")
        return number

    def strings(self, output: Output) -> list[str]:
        items: list[str] = self._typed(output, "strings")
        return items

    def require(self, *needed: Output) -> None:
        """Check every output a command needs before it touches AWS, so a bad file changes nothing.

        DMS outputs are skipped when the stack has DMS disabled, the test route's when it has none: their absence is
        legitimate there.
        """
        problems = []
        for output in needed:
            if not self.exports(output):
                continue
            try:
                self.value(output)
            except BadInput as err:
                problems.append(str(err))
        if len(problems) == 1:
            raise BadInput(problems[0])
        if problems:
            raise BadInput(f"{len(problems)} stack outputs are not usable:\n  " + "\n  ".join(problems))

    def display(self, output: Output) -> str:
        """The value as text for the rendered runbook, or a visible placeholder (always one for a secret)."""
        if not self.available(output):
            return f"<{output.name}: not available>"
        if output.secret:
            return f"<{output.name}: {REDACTED}>"
        value = self.values[output.name]
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _unknown_names(data: dict[str, Any], source: str) -> frozenset[str]:
    listed = data.pop(contract.PREVIEW_UNKNOWN_KEY, [])
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise BadInput(f"'{contract.PREVIEW_UNKNOWN_KEY}' in {source} should be a list of output names, got {quote(listed)}.")
    return frozenset(listed)


def _check_names(outputs: Outputs) -> None:
    """Notice a renamed export: the file has names the contract does not know and lacks ones it expects."""
    strange = sorted((set(outputs.values) | outputs.unknown) - set(contract.BY_NAME))
    absent = [output for output in contract.expected(outputs.dms_enabled, outputs.test_route_enabled) if not outputs.present(output)]
    if strange and absent:
        wanted = "; ".join(f"'{output.name}' ({output.meaning})" for output in absent)
        raise BadInput(
            f"{outputs.source} lacks {wanted} but has {', '.join(quote(name) for name in strange[:5])}, which the "
            "stack-output contract does not define (renamed?); write the file again from the deployed stack."
        )


def parse(text: str, source: str) -> Outputs:
    """The outputs in `text` (JSON of `pulumi stack output --json`), checked against the contract's names."""
    try:
        data = loads(text, source)
    except InputError as err:
        raise BadInput(f"{err}; expected the output of `pulumi stack output --json --show-secrets`.") from None
    if not isinstance(data, dict):
        raise BadInput(f"{source} should hold a JSON object of stack outputs, got {type(data).__name__}.")
    unknown = _unknown_names(data, source)
    outputs = Outputs(data, source, unknown)
    _check_names(outputs)
    return outputs


def _from_cli(stack: str | None) -> Outputs:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets"]
    if stack:
        command += ["--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BadInput(f"`{' '.join(command)}` could not run: {err}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise BadInput(f"`{' '.join(command)}` failed (exit {done.returncode}): {clip(detail[0])}")
    return parse(done.stdout, f"`pulumi stack output` of stack {stack or '(selected)'}")


def _from_file(path: str) -> Outputs:
    try:
        text = read_text(Path(path), f"outputs file {path}")
    except InputError as err:
        raise BadInput(
            f"{err}; expected the JSON written by `pulumi stack output --json --show-secrets --stack <stack> > FILE`."
        ) from None
    return parse(text, f"outputs file {path}")


def load_outputs(path: str | None, stack: str | None) -> Outputs:
    """Read the outputs from `path`, else from the pulumi CLI; check they belong to `stack`."""
    if stack is not None and not re.fullmatch(contract.STACK_NAME, stack, re.ASCII):
        raise BadInput(f"--stack {quote(stack)} is not a stack name: 1-100 letters, digits, '-', '_' or '.'.")
    if path is not None:
        outputs = _from_file(path)
    elif shutil.which("pulumi"):
        outputs = _from_cli(stack)
    else:
        raise BadInput(
            "no stack outputs: pass --outputs FILE (written by `pulumi stack output --json "
            "--show-secrets --stack <stack>`), or install the pulumi CLI and log in."
        )
    recorded = outputs.values.get(contract.STACK.name)
    if stack and isinstance(recorded, str) and outputs.available(contract.STACK) and recorded != stack:
        raise BadInput(f"--stack {stack} does not match {outputs.source}, which is for stack '{recorded}'.")
    return outputs


def stack_name(outputs: Outputs, override: str | None) -> str:
    """The stack the commands talk about: --stack wins, else the outputs' own stack."""
    return override if override else outputs.string(contract.STACK)


def region_name(outputs: Outputs, override: str | None) -> str:
    """--region wins over the outputs' region."""
    if override is not None and not re.fullmatch(contract.REGION_NAME, override, re.ASCII):
        raise BadInput(f"--region {quote(override)} is not an AWS region such as ap-northeast-1.")
    return override if override else outputs.string(contract.REGION)
