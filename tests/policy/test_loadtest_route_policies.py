"""The load test's route changes no policy verdict: zero mandatory findings in both stacks with it off and on."""

from __future__ import annotations

import pytest

from policy_support import recorded, stack_resources
from preview.analyzer_client import AnalysisResult, PolicyPackServer
from preview.engine import Recording

ON = {"task-service:testRoute.enabled": True}




def _findings(result: AnalysisResult) -> set[tuple[str, str]]:
    return {(d.policy_name, d.enforcement_level) for d in result.diagnostics}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_no_mandatory_finding_with_the_test_route_off_or_on(
    stack: str, prod_pack: PolicyPackServer, dev_pack: PolicyPackServer, prod: Recording, dev: Recording
) -> None:
    pack, recording = (prod_pack, prod) if stack == "prod" else (dev_pack, dev)
    off, on = pack.preview(stack_resources(recording)), pack.preview(recorded(stack, ON))
    assert on.mandatory == [] and off.mandatory == [], [d.message for d in on.mandatory + off.mandatory]
    assert _findings(on) == _findings(off)  # the route adds no advisory finding either
