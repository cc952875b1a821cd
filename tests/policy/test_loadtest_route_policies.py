"""The load test's route changes no policy verdict: zero mandatory findings in both stacks with it off and on."""

from __future__ import annotations

import pytest

from policy_support import ROOT
from preview.analyzer_client import AnalysisResult, PolicyPackServer
from preview.analyzer_requests import resources_from_recording
from preview.engine import run_program

ON = {"task-service:testRoute.enabled": True}


def _analyse(pack: PolicyPackServer, stack: str, overrides: dict[str, object]) -> AnalysisResult:
    recording = run_program(ROOT, stack, overrides)
    return pack.preview(resources_from_recording(recording.resources, project=recording.project, stack=stack))


def _findings(result: AnalysisResult) -> set[tuple[str, str]]:
    return {(d.policy_name, d.enforcement_level) for d in result.diagnostics}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_no_mandatory_finding_with_the_test_route_off_or_on(
    stack: str, prod_pack: PolicyPackServer, dev_pack: PolicyPackServer
) -> None:
    pack = prod_pack if stack == "prod" else dev_pack
    off, on = _analyse(pack, stack, {}), _analyse(pack, stack, ON)
    assert on.mandatory == [] and off.mandatory == [], [d.message for d in on.mandatory + off.mandatory]
    assert _findings(on) == _findings(off)  # the route adds no advisory finding either
