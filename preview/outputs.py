"""Stack outputs as `pulumi stack output --json` prints them, and wire values as the CLI's JSON shows them."""

from __future__ import annotations

from typing import Any

from preview.engine import Recording
from preview.wire import UNKNOWN, is_secret
from task_service.contract import PREVIEW_UNKNOWN_KEY

SECRET_TEXT = "[secret]"


def plain_value(value: Any) -> Any:
    """A wire value as `pulumi stack output --json` shows it: secrets hidden, whole numbers as integers."""
    if is_secret(value):
        return SECRET_TEXT
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unknown(value: Any) -> bool:
    """Only a deploy can tell the value: it is, or holds, the unknown sentinel (a secret always shows as hidden)."""
    if is_secret(value):
        return False
    if isinstance(value, dict):
        return any(_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_unknown(v) for v in value)
    return value == UNKNOWN


def stack_outputs(recording: Recording) -> dict[str, Any]:
    """What `pulumi stack output --json` would print once the stack is deployed, as far as a preview can tell.

    Outputs only a deploy can know are left out, their names listed under PREVIEW_UNKNOWN_KEY (absent when there
    are none), so a reader never mistakes the engine's sentinel for a value.
    """
    known: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in sorted(recording.outputs.items()):
        if _unknown(value):
            unknown.append(name)
        else:
            known[name] = plain_value(value)
    if unknown:
        known[PREVIEW_UNKNOWN_KEY] = unknown
    return known
