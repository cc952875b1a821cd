"""The policy pack's health gate, imported under the name the pack itself uses: `task_service_policies.health_gate`.

Why this is clean:
- `policy/` is the pack's import root: the engine runs the pack from that directory and `pulumi policy publish`
  uploads it alone, so its package is top-level there. The runbook appends that same root to `sys.path` (appended,
  so it never shadows a module found elsewhere) instead of copying the module or loading it by file path.
- The package's `__init__` builds nothing: the policies are registered in `task_service_policies.pack`, which only
  the engine's entry point (`policy/__main__.py`) and tests import. Importing `health_gate` runs that module alone,
  and it imports no pulumi-policy (tests/runbook/test_canary_gate.py checks both in a fresh interpreter).
- One module object under one name for the pack, the runbook, the tests and mypy (which checks it as
  `task_service_policies.health_gate` from `policy/`), so the thresholds cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parents[1] / "policy"

if str(POLICY_DIR) not in sys.path:
    sys.path.append(str(POLICY_DIR))

from task_service_policies import health_gate  # noqa: E402

__all__ = ["POLICY_DIR", "health_gate"]
