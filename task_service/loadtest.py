"""The load test seed 001 asks for before any user traffic moves, and the shape of its recorded result.

`runbook loadtest` drives the service at `USERS` users and `RPS` requests per second and passes when p95 stays under
`MAX_P95_MS` and errors under `MAX_ERROR_RATE_PERCENT`. It writes the result as JSON to the stack's SSM parameter
(`Naming.of(Role.LOADTEST_RESULT)`, exported as `loadTestResultParameter`), where the canary's health gate reads it
at the first step (0 -> 5): `canary status`/`watch` and the policy pack's `alb-canary-health-gate`, which also decides
how old a passing result may be (`loadTestMaxAgeHours` in policy/config/<stack>.json). `REQUIRED_FIELDS` are the keys every reader may rely on.
"""

USERS = 100
RPS = 50.0
MAX_P95_MS = 500.0
MAX_ERROR_RATE_PERCENT = 1.0
DURATION_SECONDS = 60

REQUIRED_FIELDS = ("passed", "finishedAt", "p95Ms", "errorRatePercent", "requests")
"""`passed` (bool), `finishedAt` (ISO-8601 UTC, e.g. 2026-12-01T08:30:00Z), `p95Ms` and `errorRatePercent` (numbers),
`requests` (int). The result holds more (see runbook/loadtest.py); these never change meaning."""
