"""Stack outputs: each stack exports exactly the contract, and the outputs file holds known values only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from preview.cli import stack_outputs
from preview.engine import Recording
from preview.wire import UNKNOWN, secret
from task_service import contract
from task_service.contract import PREVIEW_UNKNOWN_KEY

DMS = {o.name for o in contract.CONTRACT if o.dms}


def names(dms_enabled: bool) -> set[str]:
    return {o.name for o in contract.expected(dms_enabled)}


def test_each_stack_exports_exactly_the_contract(prod: Recording, dev: Recording) -> None:
    assert set(prod.outputs) == names(dms_enabled=True)
    assert set(dev.outputs) == names(dms_enabled=False)
    assert DMS and DMS <= set(prod.outputs) and not DMS & set(dev.outputs)


def _fits(kind: contract.Kind, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


@pytest.mark.parametrize("stack", ["prod", "dev", "prod_deployed"])
def test_known_outputs_have_their_contract_kind(stack: str, request: pytest.FixtureRequest) -> None:
    document = stack_outputs(request.getfixturevalue(stack))
    document.pop(PREVIEW_UNKNOWN_KEY, None)
    wrong = {name: value for name, value in document.items() if not _fits(contract.BY_NAME[name].kind, value)}
    assert wrong == {}


def test_a_deployed_stack_has_every_output_known(prod_deployed: Recording) -> None:
    """With provider values faked, the document is exactly what the CLI prints: no side field."""
    assert set(stack_outputs(prod_deployed)) == names(dms_enabled=True)


def test_unknowns_are_named_not_written() -> None:
    recording = Recording(project="task-service", stack="prod", preview=True, outputs={
        "address": UNKNOWN,
        "alarms": ["task-service-db-cpu-high", UNKNOWN],
        "nested": {"arn": UNKNOWN},
        "password": secret(UNKNOWN),
        "port": 5432.0,
        "ratio": 2.5,
        "tables": ["public.tasks"],
    })
    document = stack_outputs(recording)
    assert document == {
        "password": "[secret]",  # as the CLI prints a secret without --show-secrets, known or not
        "port": 5432,
        "ratio": 2.5,
        "tables": ["public.tasks"],
        PREVIEW_UNKNOWN_KEY: ["address", "alarms", "nested"],  # a list holding an unknown is unknown as a whole
    }
    assert UNKNOWN not in json.dumps(document)
