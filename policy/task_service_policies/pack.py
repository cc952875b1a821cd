"""The pack itself: every policy, and `serve()`, which the engine's entry point (policy/__main__.py) calls.

Kept out of the package's `__init__` so that importing one module of the package (the runbook imports
`health_gate`) builds no policy and needs no pulumi-policy.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

from . import availability, backups, canary, canary_gate, encryption, monitoring, network, secrets, tags

ALL_POLICIES: list[Policy] = [
    *encryption.POLICIES,
    *secrets.POLICIES,
    *backups.POLICIES,
    *availability.POLICIES,
    *monitoring.POLICIES,
    *network.POLICIES,
    *canary.POLICIES,
    *canary_gate.POLICIES,
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
