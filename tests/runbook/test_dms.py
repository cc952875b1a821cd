"""`dms status|start|stop` against moto, with the task state driven explicitly."""

from __future__ import annotations

from typing import Any

import pytest

from runbook import dms
from runbook.aws import Aws
from runbook.cli import main
from runbook.dms import start_type
from runbook.output import Invocation
from runbook.outputs import load_outputs
from task_service import contract
from tests.runbook import moto_stack


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The StartReplicationTask parameters the command really sent (moto ignores the start type)."""
    calls: list[dict[str, Any]] = []
    hooked: set[int] = set()
    original = Aws.client

    def recording(self: Aws, service: str) -> Any:
        client = original(self, service)
        if id(client) not in hooked:
            hooked.add(id(client))
            client.meta.events.register("provide-client-params.dms.StartReplicationTask", lambda params, **_: calls.append(dict(params)))
        return client

    monkeypatch.setattr(Aws, "client", recording)
    return calls


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ({"Status": "ready"}, "start-replication"),
        ({"Status": "stopped", "ReplicationTaskStartDate": "2026-01-01"}, "resume-processing"),
        ({"Status": "failed", "ReplicationTaskStartDate": "2026-01-01"}, "resume-processing"),
        ({"Status": "ready", "ReplicationTaskStats": {"StartDate": "2026-01-01"}}, "resume-processing"),
        ({"Status": "creating"}, None),
        ({"Status": "modifying"}, None),
    ],
)
def test_start_type_follows_status_and_history(task: dict[str, Any], expected: str | None) -> None:
    assert start_type(task) == expected


def test_first_start_then_stop_then_resume(stack: moto_stack.Stack, outputs_file: Any, sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs)
    assert main(["dms", "start", "--outputs", path]) == 0
    assert sent[-1]["StartReplicationTaskType"] == "start-replication"
    assert stack.dms_task().status == "running"
    assert main(["dms", "start", "--outputs", path]) == 0
    assert "already running" in capsys.readouterr().out
    assert len(sent) == 1
    assert main(["dms", "stop", "--outputs", path]) == 0
    assert stack.dms_task().status == "stopped"
    assert main(["dms", "start", "--outputs", path]) == 0
    assert sent[-1]["StartReplicationTaskType"] == "resume-processing"
    assert "started with resume-processing (status was 'stopped')" in capsys.readouterr().out


def test_dry_run_start_sends_nothing(stack: moto_stack.Stack, outputs_file: Any, sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dms", "start", "--dry-run", "--outputs", outputs_file(stack.outputs)]) == 0
    assert "StartReplicationTaskType='start-replication'" in capsys.readouterr().out
    assert sent == []
    assert stack.dms_task().status == "ready"


def test_a_task_still_being_created_is_not_started(stack: moto_stack.Stack, outputs_file: Any, sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    stack.dms_task().status = "creating"
    assert main(["dms", "start", "--outputs", outputs_file(stack.outputs)]) == 1
    assert "cannot be started while its status is 'creating'" in capsys.readouterr().out
    assert sent == []


def test_status_reports_progress_and_says_when_table_statistics_are_not_available(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dms", "status", "--outputs", outputs_file(stack.outputs)]) == 0
    text = capsys.readouterr().out
    assert "status: ready" in text
    assert "started: never" in text
    assert "progress: FullLoadProgressPercent=" in text
    assert "table statistics: not available (DescribeTableStatistics failed: HTTP 500" in text
    assert "validation state: not available" in text


def test_stop_when_not_running_is_refused(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dms", "stop", "--outputs", outputs_file(stack.outputs)]) == 1
    assert "cannot be stopped while its status is 'ready'" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["status", "start", "stop"])
def test_dms_disabled_is_bad_input(outputs_file: Any, capsys: pytest.CaptureFixture[str], command: str) -> None:
    path = outputs_file({contract.STACK.name: "dev", contract.REGION.name: "ap-northeast-1", contract.DMS_REPLICATION_TASK_ARN.name: None})
    assert main(["dms", command, "--outputs", path]) == 2
    assert "DMS is disabled in this stack" in capsys.readouterr().err


def test_the_dev_stack_has_no_dms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dms", "status", "--outputs", str(moto_stack.FIXTURES / "outputs-dev.json")]) == 2
    assert "DMS is disabled in this stack" in capsys.readouterr().err


def _watch(stack: moto_stack.Stack, path: str, sleep: Any, timeout_minutes: float = 60) -> tuple[Any, list[Any]]:
    """`dms status --watch` with a recorded progress callback and a `sleep` that moves the task on instead."""
    out = load_outputs(path, None)
    seen: list[Any] = []
    report = dms.watch(out, Aws(stack.region), Invocation(path, "prod"), 30, timeout_minutes, seen.append, sleep)
    return report, [(task["Status"], task["ReplicationTaskStats"]["FullLoadProgressPercent"]) for task in seen]


def test_watch_polls_until_the_full_load_is_complete(stack: moto_stack.Stack, outputs_file: Any) -> None:
    stages = iter([("running", 40, 2, 1), ("running", 90, 1, 0), ("running", 100, 0, 0)])

    def advance(seconds: float) -> None:
        assert seconds == 30
        status, percent, loading, queued = next(stages)
        stack.dms_load(status, FullLoadProgressPercent=percent, TablesLoading=loading, TablesQueued=queued)

    stack.dms_load("starting", FullLoadProgressPercent=0, TablesLoading=0, TablesQueued=6)
    report, seen = _watch(stack, outputs_file(stack.outputs), advance)
    assert seen == [("starting", 0), ("running", 40), ("running", 90), ("running", 100)]
    assert report.exit_code == 0 and report.fields["waitedFor"] == "the full load is complete"


def test_watch_gives_up_after_the_timeout(stack: moto_stack.Stack, outputs_file: Any) -> None:
    stack.dms_load("running", FullLoadProgressPercent=40, TablesLoading=2, TablesQueued=1)
    slept: list[float] = []
    report, seen = _watch(stack, outputs_file(stack.outputs), slept.append, timeout_minutes=2)
    assert len(seen) == 4 and slept == [30, 30, 30]  # 2 minutes at 30 s: four polls, no sleep after the last
    assert report.exit_code == 1 and report.fields["timedOut"] is True
    assert "waited 2 minutes: the full load is not over yet" in report.blocks


@pytest.mark.parametrize(
    ("status", "failure", "waited_for"),
    [("ready", None, dms.NEVER_STARTED), ("failed", "ERROR: relation missing", "the task failed"), ("stopped", None, "the task is stopped")],
)
def test_watch_stops_at_once_when_nothing_will_load(
    stack: moto_stack.Stack, outputs_file: Any, status: str, failure: str | None, waited_for: str
) -> None:
    task = stack.dms_task()
    task.status = status
    if status == "stopped":
        task.start_date = task.creation_date
    described = type(task).to_dict
    task.to_dict = lambda: described(task) | ({"LastFailureMessage": failure} if failure else {})
    report, seen = _watch(stack, outputs_file(stack.outputs), lambda _: pytest.fail("slept"))
    assert len(seen) == 1 and report.fields["waitedFor"] == waited_for
    assert report.exit_code == (0 if status == "stopped" else 1)
    if status == "ready":
        assert [s["reason"] for s in report.next] == ["start it"]


def test_watch_needs_a_positive_interval_and_timeout(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs)
    for bad in (["--interval", "0"], ["--timeout", "-1"], ["--interval", "nan"], ["--timeout", "inf"]):
        assert main(["dms", "status", "--watch", *bad, "--outputs", path]) == 2
        assert capsys.readouterr().err == "error: --interval and --timeout must be positive numbers.\n"
