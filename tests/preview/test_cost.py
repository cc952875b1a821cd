"""The cost estimate's arithmetic on the recorded registrations of both stacks, and how config changes move it."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from preview import cost, prices
from preview.cli import main
from preview.engine import Recording, run_program

ROOT = Path(__file__).resolve().parents[2]
TABLE = prices.load("ap-northeast-1")


def _estimate(stack: str, overrides: dict[str, Any] | None = None) -> cost.Estimate:
    return cost.estimate(run_program(ROOT, stack, overrides), TABLE)


def _lines(result: cost.Estimate, key_prefix: str) -> list[cost.Line]:
    return [line for line in result.lines if line.price_key.startswith(key_prefix)]


@pytest.fixture(scope="module")
def prod(prod: Recording) -> cost.Estimate:
    """The estimate of the session's prod recording (tests/conftest.py)."""
    return cost.estimate(prod, TABLE)


@pytest.fixture(scope="module")
def dev(dev: Recording) -> cost.Estimate:
    return cost.estimate(dev, TABLE)


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_every_line_is_quantity_times_its_table_price_and_the_total_their_sum(stack: str, prod: cost.Estimate, dev: cost.Estimate) -> None:
    result = prod if stack == "prod" else dev
    for line in result.lines + result.at_max:
        assert line.unit_usd == Decimal(str(TABLE.prices[line.price_key]["usd"])), line
        assert line.monthly == line.quantity * line.unit_usd
    assert result.total == sum((line.monthly for line in result.lines if not line.moved), Decimal(0))
    assert sum(result.by_service().values(), Decimal(0)) == result.total
    assert cost.as_json(result)["differenceFromSeedUsd"] == str(result.total - Decimal("75.80"))


def test_prod_prices_what_the_program_declares(prod: cost.Estimate) -> None:
    [instance] = _lines(prod, "rds:")
    assert (instance.price_key, instance.quantity) == ("rds:db.t3.medium:multi-az", cost.HOURS)
    [storage] = _lines(prod, "rds-storage:")
    assert (storage.price_key, storage.quantity) == ("rds-storage:gp3:multi-az", Decimal(100))
    assert {line.price_key for line in _lines(prod, "dms")} == {"dms:dms.t3.medium:multi-az", "dms-storage:gp2:multi-az"}
    vcpu, memory = _lines(prod, "fargate:")
    assert (vcpu.quantity, memory.quantity) == (2 * Decimal("0.5") * cost.HOURS, 2 * Decimal(1) * cost.HOURS)  # 2 tasks, 512/1024
    assert len(_lines(prod, "secretsmanager:")) == 3 and len(_lines(prod, "kms:")) == 2
    assert sum(line.quantity for line in _lines(prod, "cloudwatch:alarm")) == 10  # 9 alarms, the 5xx one on 2 metrics
    moved = [line for line in prod.lines if line.moved]
    assert [line.price_key for line in moved] == ["alb:lcu-hour"] and moved[0].monthly > 0  # shown, not totalled


def test_dev_has_no_dms_and_is_single_az(dev: cost.Estimate) -> None:
    assert _lines(dev, "dms") == []
    assert [line.price_key for line in _lines(dev, "rds")] == ["rds:db.t3.micro:single-az", "rds-storage:gp3:single-az"]


def test_a_larger_instance_class_costs_the_price_difference(prod: cost.Estimate) -> None:
    larger = _estimate("prod", {"task-service:db.instanceClass": "db.t3.large"})
    expected = cost.HOURS * (TABLE.usd("rds:db.t3.large:multi-az") - TABLE.usd("rds:db.t3.medium:multi-az"))
    assert expected > 0 and larger.total - prod.total == expected


def test_single_az_drops_the_standby_instance_and_storage(prod: cost.Estimate) -> None:
    single = _estimate("prod", {"task-service:db.multiAz": False, "task-service:dms.multiAz": False})
    [instance, storage] = _lines(single, "rds")
    assert (instance.price_key, storage.price_key) == ("rds:db.t3.medium:single-az", "rds-storage:gp3:single-az")
    saved = sum((line.monthly for line in _lines(prod, "rds") + _lines(prod, "dms")), Decimal(0)) - sum(
        (line.monthly for line in _lines(single, "rds") + _lines(single, "dms")), Decimal(0)
    )
    assert prod.total - single.total == saved > 0


def test_at_the_autoscaling_maximum_fargate_scales_with_the_task_count(prod: cost.Estimate) -> None:
    per_task = sum((line.monthly for line in _lines(prod, "fargate:")), Decimal(0)) / 2
    assert prod.total_at_max - prod.total == (10 - 2) * per_task
    smaller = _estimate("prod", {"task-service:autoscaling.max": 4})
    assert smaller.total == prod.total and prod.total_at_max - smaller.total_at_max == 6 * per_task


def test_what_the_security_and_load_test_work_adds(prod: cost.Estimate) -> None:
    with_route = _estimate("prod", {"task-service:testRoute.enabled": True})
    assert with_route.total - prod.total == TABLE.usd("secretsmanager:secret-month")  # the header's secret; the rule is within the free 10
    no_nat = _estimate("prod", {"task-service:network.natGateway": False})
    [endpoint] = _lines(no_nat, "vpc-endpoint:")
    assert endpoint.quantity == 2 * cost.HOURS and no_nat.total - prod.total == endpoint.monthly
    assert len(_lines(prod, "lambda:request")) == 2  # one rotation function per database secret
    assert len(_lines(prod, "events:")) == 2 and all(line.monthly == 0 for line in _lines(prod, "events:"))  # DMS's events: free


def test_a_parked_stack_runs_no_tasks(prod: cost.Estimate) -> None:
    parked = _estimate("prod", {"task-service:service.image": None})
    assert _lines(parked, "fargate:") == [] and parked.at_max == [] and parked.total_at_max == parked.total


def test_a_class_the_table_lacks_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(prices.PriceTableError, match="has no price 'rds:db.x2g.large:multi-az'"):
        _estimate("prod", {"task-service:db.instanceClass": "db.x2g.large"})


def test_the_command_prints_and_exports_the_estimate(prod: cost.Estimate, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-s", "prod", "-C", str(ROOT), "--no-policy", "--cost", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)["cost"]
    assert Decimal(document["totalUsd"]) == prod.total
    assert document["pricesRetrieved"] == TABLE.retrieved and document["seed"]["RDS"] == "40"
    text = subprocess.run([sys.executable, "-m", "preview", "-s", "dev", "--no-policy", "--cost"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "total at the desired count" in text.stdout and "seed 000's estimate $75.80: difference" in text.stdout
    assert "Assumptions (preview/cost.py ASSUMPTIONS):" in text.stdout and f"retrieved {TABLE.retrieved}" in text.stdout


def test_the_pull_request_summary_has_the_cost(prod: cost.Estimate, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.md"
    assert main(["-s", "prod", "-C", str(ROOT), "--no-policy", "--summary", str(summary)]) == 0
    text = summary.read_text()
    section = text.split("#### Cost\n", 1)[1]
    result = prod
    assert f"About **{cost.usd(result.total)} a month** at the desired task count, {cost.usd(result.total_at_max)} at the autoscaling maximum" in section
    assert "| RDS | $40.00 | " in section and f"prices of {TABLE.retrieved}" in section
    assert section.count("\n| `") == len(result.lines)  # every line, in the details


def test_a_stack_the_table_cannot_price_still_gets_its_summary(tmp_path: Path) -> None:
    recording = run_program(ROOT, "prod", {"task-service:db.instanceClass": "db.x2g.large"})
    section = cost.summary_section(cost.priced(recording))
    assert section.startswith("\n#### Cost\n\nNot estimated: ") and "rds:db.x2g.large:multi-az" in section
