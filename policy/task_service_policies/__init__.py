"""The task-service CrossGuard policies, importable without starting the pack (`serve()` does that)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

from . import availability, backups, canary, encryption, monitoring, network, tags

ALL_POLICIES: list[Policy] = [
    *encryption.POLICIES,
    *backups.POLICIES,
    *availability.POLICIES,
    *monitoring.POLICIES,
    *network.POLICIES,
    *canary.POLICIES,
    *tags.POLICIES,
]

PACK_NAME = "task-service-policies"


def serve() -> None:
    """Build the pack; PolicyPack's constructor serves gRPC and blocks until the engine stops the process."""
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=ALL_POLICIES,
        description="Encryption, backups, availability, network and weighted-canary rules for the Task Service.",
        display_name="Task Service policies",
        provider="aws",
        tags=["aws", "rds", "ecs", "alb", "dms"],
    )


__all__ = ["ALL_POLICIES", "PACK_NAME", "serve"]
