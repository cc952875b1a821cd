"""The weighted canary of seed 001: 0 -> 5 -> 25 -> 50 -> 100 percent of /api/tasks on the Task Service."""

STEPS: tuple[int, ...] = (0, 5, 25, 50, 100)

CANARY_TAG = "CanaryTargetGroup"
"""Listener-rule tag whose value is the canary target group's name (how the pack and runbook tell it apart)."""


def next_step(current: int) -> int | None:
    """The step after `current`, or None once the service takes 100%."""
    return next((step for step in STEPS if step > current), None)

TEST_ROUTE_HEADER = "X-Task-Service-Test"
"""Header a test-route listener rule requires (its value is a secret): requests without it never reach that rule,
so the policy pack treats such a rule as unreachable by ordinary traffic (not a canary weight)."""
