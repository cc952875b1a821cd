"""The engine's wire sentinels under one set of names, taken from the SDKs that define them.

Property values travel between the language SDK, the engine and an analyzer as a protobuf Struct. A value that
only a deploy can know is a sentinel string; a secret is an object `{SIGNATURE_KEY: SECRET_SIGNATURE, "value": v}`
(sdk/go/common/resource/plugin/rpc.go, sdk/go/common/resource/properties.go). The Python SDK sends only the string
unknown; the engine may hand an analyzer typed ones, which the policy SDK knows, so tests can send those too.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import rpc
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE

UNKNOWN: str = rpc.UNKNOWN
"""A value only a deploy can know, as the SDK sends it (the engine's UnknownStringValue)."""

UNKNOWN_BOOL: str = UNKNOWN_BOOLEAN_VALUE
"""The engine's unknown for a boolean property, as an analyzer may receive it."""

SIGNATURE_KEY: str = rpc._special_sig_key
"""The key under which a special object (secret, asset, resource reference) carries its type signature."""

SECRET_SIGNATURE: str = rpc._special_secret_sig
"""The signature (the value under SIGNATURE_KEY) that marks a secret."""


def secret(value: Any) -> dict[str, Any]:
    """`value` marked secret, as the engine marshals it with KeepSecrets."""
    return {SIGNATURE_KEY: SECRET_SIGNATURE, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIGNATURE_KEY) == SECRET_SIGNATURE
