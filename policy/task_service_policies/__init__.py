"""The task-service CrossGuard policies, importable without starting the pack (`policy/__main__.py` does that)."""

from __future__ import annotations

from pulumi_policy import Policy

from . import availability, backups, canary, encryption, monitoring, network, secrets, tags

ALL_POLICIES: list[Policy] = [
    *encryption.POLICIES,
    *secrets.POLICIES,
    *backups.POLICIES,
    *availability.POLICIES,
    *monitoring.POLICIES,
    *network.POLICIES,
    *canary.POLICIES,
    *tags.POLICIES,
]

PACK_NAME = "task-service-policies"

__all__ = ["ALL_POLICIES", "PACK_NAME"]
