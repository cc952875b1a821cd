"""Entry point the engine runs (`python -m pulumi.policy <engine> .` from this directory).

PolicyPack's constructor serves gRPC and blocks forever, so nothing else belongs here: the policies live in
`task_service_policies` where tests import them.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from task_service_policies import ALL_POLICIES, PACK_NAME

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
    description="Encryption, backups, availability, network and weighted-canary rules for the Task Service.",
    display_name="Task Service policies",
    provider="aws",
    tags=["aws", "rds", "ecs", "alb", "dms"],
)
