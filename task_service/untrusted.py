"""Untrusted input, handled the same way by the program, the preview and the runbook.

Stack files, outputs files, policy configs, DSNs and endpoint answers are written by people and tools we do not
control, so every message about them is bounded (a quoted value never exceeds QUOTE_LIMIT characters, and is
cut before it is rendered, so a huge value costs nothing), secrets are replaced before text leaves the process,
and files are read strictly: UTF-8, at most MAX_FILE_BYTES, JSON without duplicate keys, NaN or runaway nesting.
Standard library only: the program imports this module too.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

QUOTE_LIMIT = 80
"""At most this many characters of a value are quoted in a message."""
TEXT_LIMIT = 300
"""At most this many characters of free text (an AWS or libpq message) are passed on."""
MAX_FILE_BYTES = 1024 * 1024
"""Every file we read is small; a bigger one is refused before it is parsed."""
REDACTED = "[secret]"

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = QUOTE_LIMIT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


class InputError(Exception):
    """A file or value that cannot be used at all; the message is one line naming it and what was expected."""


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)`, at most `limit` characters, computed without rendering more than a few levels of it."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """Free text on one line (whitespace runs become one space), at most `limit` characters."""
    flat = " ".join(text[: limit * 4].split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced, longest first (one may contain another)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {quote(key)}")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{quote(text)} is too large a number")
    return number


def loads(text: str, what: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity, no runaway nesting; InputError names `what` and the problem."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise InputError(f"{what} nests too deeply to be read; expected a small JSON document") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{what} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except ValueError as err:
        raise InputError(f"{what} is not valid JSON ({clip(str(err), QUOTE_LIMIT)})") from None


def read_text(path: Path, what: str) -> str:
    """The file as UTF-8 text, at most MAX_FILE_BYTES; InputError names `what` and why it cannot be used."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{what} does not exist") from None
    except OSError as err:
        raise InputError(f"{what} cannot be read ({err.strerror or type(err).__name__})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what} is larger than {MAX_FILE_BYTES // 1024} KiB; expected a small text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def read_json(path: Path, what: str) -> Any:
    """`loads(read_text(path))`: a small UTF-8 file of strict JSON; InputError names `what` and the problem."""
    return loads(read_text(path, what), what)
