"""Physical names: prod keeps the seed names, other stacks never collide, every name fits AWS's rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from preview.engine import Recording, run_program
from preview.stack_files import load_stack
from task_service.naming import HASH_LENGTH, Kind, Naming, Role, physical_name, stack_prefix

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_WIDE = {"dms-vpc-role", "dms-cloudwatch-logs-role"}
NAME_KEYS = (
    "name",
    "identifier",
    "finalSnapshotIdentifier",
    "dashboardName",
    "replicationInstanceId",
    "replicationSubnetGroupId",
    "endpointId",
    "replicationTaskId",
    "resourceIdentifier",
)
# Inline role policies are named per role, not per account or region.
SCOPED_TYPES = {"aws:iam/rolePolicy:RolePolicy"}
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"  # named by its `family` (elsewhere `family` is not a name)

SEED_NAMES = {
    Role.CLUSTER: "task-service-cluster",
    Role.SERVICE: "task-service",
    Role.TARGET_GROUP: "task-service-tg",
    Role.DB_INSTANCE: "task-service-db",
    Role.DB_SECRET: "task-service/db-password",
    Role.COGNITO_SECRET: "task-service/cognito-config",
    Role.ALARM_TOPIC: "task-service-alarms",
    Role.DASHBOARD: "TaskServiceMetrics",
    Role.SERVICE_LOG_GROUP: "/ecs/task-service",
    Role.EXECUTION_ROLE: "task-service-execution-role",
    Role.TASK_ROLE: "task-service-task-role",
    Role.ECR_REPOSITORY: "task-service",
}


def physical_names(rec: Recording) -> set[str]:
    """Every physical name in the recorded registrations (account- or region-scoped)."""
    return {
        value
        for resource in rec.resources
        if resource.custom and resource.type not in SCOPED_TYPES
        for key in NAME_KEYS + (("family",) if resource.type == TASK_DEFINITION else ())
        if isinstance(value := resource.inputs.get(key), str)
    }


def test_prod_keeps_exactly_the_seed_names(prod: Recording) -> None:
    names = Naming.for_stack("task-service", "prod")
    assert {role: names.of(role) for role in SEED_NAMES} == SEED_NAMES
    assert set(SEED_NAMES.values()) <= physical_names(prod)
    assert {a.inputs["name"] for a in prod.by_type("aws:kms/alias:Alias")} == {"alias/task-service-data", "alias/task-service-telemetry"}


def test_dev_and_prod_share_no_name_but_the_account_wide_dms_roles() -> None:
    """Both stacks with everything on (DMS and its account roles), as they would be in one account."""
    everything = {"task-service:dms.enabled": True, "task-service:dms.createAccountRoles": True}
    dev = physical_names(run_program(ROOT, "dev", everything))
    prod = physical_names(run_program(ROOT, "prod", {"task-service:dms.createAccountRoles": True}))
    assert dev & prod == ACCOUNT_WIDE
    assert len(dev) >= 35 and len(prod) >= 35  # every named resource, not a handful


def test_an_explicit_prefix_replaces_the_derived_one() -> None:
    rec = run_program(ROOT, "dev", {"task-service:namePrefix": "tasks-staging"})
    assert rec.one("aws:lb/targetGroup:TargetGroup").inputs["name"] == "tasks-staging-tg"
    assert rec.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardName"] == "TasksStagingMetrics"


@pytest.mark.parametrize("stack", ["feature_x.2", "Dev", "a" * 80, "2026-q1"])
def test_odd_stack_names_still_give_valid_names(stack: str, dev: Recording) -> None:
    rec = run_program(ROOT, stack, settings_=load_stack(ROOT, "dev"))
    assert rec.one("aws:lb/targetGroup:TargetGroup").inputs["name"] == Naming.for_stack("task-service", stack).of(Role.TARGET_GROUP)
    assert not physical_names(rec) & physical_names(dev)


STACKS = ["prod", "dev", "staging", "feature_x", "feature-x", "Feature-X", "v1.2", "v1-2", "a" * 120, "x", "9lives", "a--b"]
FIELDS = {"migration_type": "full-load-and-cdc", "source": "task-service", "stamp": "20261201t083000z"}
"""Placeholders some roles take besides the prefix (the DMS task's migration type, a snapshot's source and time)."""


def test_every_role_fits_its_kind_for_many_stack_names() -> None:
    for stack in STACKS:
        names = Naming.for_stack("task-service", stack)
        for role in Role:
            name = names.of(role, **FIELDS)
            assert role.kind.value.accepts(name), (stack, role, name)


def test_distinct_stacks_never_share_a_per_stack_name() -> None:
    per_stack = {
        stack: {Naming.for_stack("task-service", stack).of(r, **FIELDS) for r in Role if not r.account_wide}
        for stack in STACKS
    }
    for a, b in itertools.combinations(STACKS, 2):
        assert not per_stack[a] & per_stack[b], (a, b)


def test_long_names_are_cut_with_a_stable_hash() -> None:
    prefix = stack_prefix("task-service", "a-rather-long-feature-branch-name")
    name = physical_name(prefix, Role.TARGET_GROUP)
    assert len(name) == Kind.TARGET_GROUP.value.max_length
    assert name == physical_name(prefix, Role.TARGET_GROUP)  # stable across runs
    assert name[-HASH_LENGTH - 1] == "-" and name.startswith("task-service-a-rather")
    rds = physical_name(stack_prefix("task-service", "b" * 70), Role.DB_INSTANCE)
    assert len(rds) <= 63 and "--" not in rds and rds[0].isalpha()


def test_a_bad_explicit_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="name prefix"):
        stack_prefix("task-service", "dev", "Task_Service")
