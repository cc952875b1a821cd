"""The stack outputs: the contract between the program and the tools that read them, defined once.

`__main__.py` exports exactly these (and nothing else), the runbook parses outputs through them, and the README's
outputs table is generated from them (`python -m task_service.contract`; a test keeps it current). Code refers to
an output by its constant here (`contract.DB_ADDRESS`), never by its name as a string.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal, Mapping

Kind = Literal["string", "integer", "strings"]


@dataclass(frozen=True)
class Output:
    """One stack output."""

    name: str
    """The exported name (what `pulumi stack output` prints)."""
    kind: Kind
    meaning: str
    """One line: what the value is, for messages and the README."""
    secret: bool = False
    """Exported as a secret: shown only with `--show-secrets`."""
    dms: bool = False
    """Absent when DMS is disabled (`dms.enabled: false`, e.g. dev)."""
    pattern: str | None = None
    """A full-match (ASCII) pattern the value must have; tools put these values into commands unquoted."""
    test_route: bool = False
    """Present only when the stack has the load test's route (`testRoute.enabled: true`)."""

    def exported_by(self, dms_enabled: bool, test_route_enabled: bool) -> bool:
        """Whether a stack with DMS and the test route on or off exports this output."""
        return (dms_enabled or not self.dms) and (test_route_enabled or not self.test_route)


STACK_NAME = r"[A-Za-z0-9_.-]{1,100}"
"""A Pulumi stack name."""
REGION_NAME = r"[a-z]{2}(-gov)?-[a-z]+-[0-9]"

PROJECT = Output("project", "string", "the Pulumi project, `task-service`")
STACK = Output("stack", "string", "the stack name", pattern=STACK_NAME)
REGION = Output("region", "string", "the stack's AWS region, e.g. ap-northeast-1", pattern=REGION_NAME)
NAME_PREFIX = Output(
    "namePrefix", "string", "the prefix of every physical name of the stack (`task-service` in prod); the runbook names what it creates with it"
)

DB_INSTANCE_ID = Output("dbInstanceId", "string", "the RDS instance identifier (`task-service-db` in prod)")
DB_ENDPOINT = Output("dbEndpoint", "string", "the RDS endpoint, `host:5432`")
DB_ADDRESS = Output("dbAddress", "string", "the RDS host name")
DB_PORT = Output("dbPort", "integer", "the RDS port, 5432")
DB_NAME = Output("dbName", "string", "the Task Service database, `task_service`")
DB_USERNAME = Output("dbUsername", "string", "the database master user, `task_service_user`")
DB_SECRET_ARN = Output(
    "dbSecretArn", "string", "the ARN of the master credentials secret (`task-service/db-password` in prod); never the password"
)
DB_APP_USERNAME = Output("dbAppUsername", "string", "the application's database role, `task_service_app` (rotation alternates it with `<role>_clone`)")
DB_APP_SECRET_ARN = Output(
    "dbAppSecretArn", "string", "the ARN of the application's credentials secret (`task-service/db-app-credentials` in prod)"
)
DB_ROTATION_FUNCTION_ARN = Output(
    "dbRotationFunctionArn", "string", "the function rotating the master secret, single user (`task-service-rotate-master` in prod)"
)
DB_APP_ROTATION_FUNCTION_ARN = Output(
    "dbAppRotationFunctionArn", "string", "the function rotating the application's secret, alternating users (`task-service-rotate-app` in prod)"
)
SECRET_ROTATION_DAYS = Output("secretRotationDays", "integer", "days between rotations of both database secrets (`secrets.rotationDays`, 30)")
DB_ENGINE_VERSION = Output("dbEngineVersion", "string", "the running engine version, e.g. 16.4 (config pins only the major)")
DB_SECURITY_GROUP_ID = Output("dbSecurityGroupId", "string", "the database's security group")

CLUSTER_NAME = Output("clusterName", "string", "the ECS cluster (`task-service-cluster` in prod)")
SERVICE_NAME = Output("serviceName", "string", "the ECS service (`task-service` in prod)")
TASK_DEFINITION_FAMILY = Output("taskDefinitionFamily", "string", "the task definition family")
ECR_REPOSITORY_URL = Output("ecrRepositoryUrl", "string", "the ECR repository CI pushes the image to")
LOG_GROUP_NAME = Output("logGroupName", "string", "the service's log group (`/ecs/task-service` in prod)")
EXECUTION_ROLE_NAME = Output("executionRoleName", "string", "the ECS task execution role")
TASK_ROLE_NAME = Output("taskRoleName", "string", "the ECS task role (the application's own AWS identity)")
SERVICE_SECURITY_GROUP_ID = Output("serviceSecurityGroupId", "string", "the service's security group")
AUTOSCALING_MIN = Output("autoscalingMin", "integer", "the configured autoscaling minimum")
AUTOSCALING_MAX = Output("autoscalingMax", "integer", "the configured autoscaling maximum")
COGNITO_SECRET_ARN = Output(
    "cognitoSecretArn", "string", "the ARN of the Cognito config secret (`task-service/cognito-config` in prod)"
)

LISTENER_ARN = Output("listenerArn", "string", "the monolith ALB's listener that serves /api/tasks")
LISTENER_RULE_ARN = Output("listenerRuleArn", "string", "the weighted /api/tasks listener rule")
LISTENER_RULE_PRIORITY = Output("listenerRulePriority", "integer", "the rule's priority, 10")
TARGET_GROUP_ARN = Output("targetGroupArn", "string", "the Task Service's target group (the canary)")
TARGET_GROUP_NAME = Output("targetGroupName", "string", "its name (`task-service-tg` in prod)")
MONOLITH_TARGET_GROUP_ARN = Output("monolithTargetGroupArn", "string", "the monolith's target group (the canary's baseline)")
CANARY_WEIGHT = Output("canaryWeight", "integer", "the configured percent of /api/tasks on the Task Service (0-100)")

MONOLITH_DB_HOST = Output("monolithDbHost", "string", "the monolith database host (DMS source, integrity --source)")
MONOLITH_DB_NAME = Output("monolithDbName", "string", "the monolith database name")
MONOLITH_DB_APP_USER = Output("monolithDbAppUser", "string", "the monolith's application role, whose writes are revoked at the end")

DMS_REPLICATION_INSTANCE_ARN = Output("dmsReplicationInstanceArn", "string", "the DMS replication instance", dms=True)
DMS_REPLICATION_TASK_ARN = Output("dmsReplicationTaskArn", "string", "the DMS full-load-and-cdc task", dms=True)
DMS_SOURCE_ENDPOINT_ARN = Output("dmsSourceEndpointArn", "string", "the DMS source endpoint (monolith)", dms=True)
DMS_TARGET_ENDPOINT_ARN = Output("dmsTargetEndpointArn", "string", "the DMS target endpoint (Task Service)", dms=True)
DMS_TABLES = Output("dmsTables", "strings", 'the replicated tables, e.g. ["public.tasks", ...]', dms=True)

TEST_ROUTE_RULE_ARN = Output(
    "testRouteRuleArn", "string", "the listener rule that sends requests carrying the test header to the service only", test_route=True
)
TEST_ROUTE_SECRET_ARN = Output(
    "testRouteSecretArn",
    "string",
    "the ARN of the secret holding that header's value (`task-service/test-route-header` in prod); never the value",
    test_route=True,
)
LOADTEST_RESULT_PARAMETER = Output(
    "loadTestResultParameter", "string", "the SSM parameter `runbook loadtest` writes its last result to (`/task-service/loadtest/result` in prod)"
)

ALARM_TOPIC_ARN = Output("alarmTopicArn", "string", "the alarm SNS topic (`task-service-alarms` in prod)")
ALARM_NAMES = Output("alarmNames", "strings", "every CloudWatch alarm of the stack, by exact name")
DASHBOARD_NAME = Output("dashboardName", "string", "the CloudWatch dashboard (`TaskServiceMetrics` in prod)")
DASHBOARD_URL = Output("dashboardUrl", "string", "the dashboard's console URL")

PREVIEW_UNKNOWN_KEY = "_unknownUntilDeploy"
"""In an outputs file written by the hermetic preview: the names of outputs only a deploy can know (left out)."""

CONTRACT: tuple[Output, ...] = tuple(value for value in list(globals().values()) if isinstance(value, Output))
BY_NAME: dict[str, Output] = {output.name: output for output in CONTRACT}


def expected(dms_enabled: bool, test_route_enabled: bool = False) -> tuple[Output, ...]:
    """The outputs a stack exports: all of them, minus the DMS ones and the test route's where those are off."""
    return tuple(output for output in CONTRACT if output.exported_by(dms_enabled, test_route_enabled))


def check_exports(values: Mapping[Output, object], dms_enabled: bool, test_route_enabled: bool = False) -> None:
    """The program exports exactly the contract: a missing or extra output is a bug, caught before any deploy."""
    wanted = set(expected(dms_enabled, test_route_enabled))
    missing = sorted(o.name for o in wanted - set(values))
    extra = sorted(o.name for o in set(values) - wanted)
    if missing or extra:
        raise ValueError(f"stack outputs differ from task_service.contract: missing {missing}, not in the contract {extra}")


def markdown_table() -> str:
    """The README's outputs table."""
    rows = ["| Output | Type | Value |", "|---|---|---|"]
    for output in CONTRACT:
        notes = [output.meaning]
        if output.dms:
            notes.append("absent when DMS is disabled")
        if output.test_route:
            notes.append("only with `testRoute.enabled`")
        if output.secret:
            notes.append("secret")
        rows.append(f"| `{output.name}` | {output.kind} | {'; '.join(notes)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
