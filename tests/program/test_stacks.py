"""The digest's numbers, asserted on every recorded registration of both committed stacks."""

from __future__ import annotations

import json
from collections import Counter

from preview.engine import Recording
from preview.wire import SIGNATURE_KEY as SECRET_SIG, UNKNOWN

OUTPUT_CONTRACT = {
    "region",
    "dbInstanceId", "dbEndpoint", "dbAddress", "dbPort", "dbName", "dbUsername", "dbSecretArn", "dbEngineVersion",
    "dbSecurityGroupId",
    "clusterName", "serviceName", "taskDefinitionFamily", "ecrRepositoryUrl", "logGroupName", "executionRoleName",
    "taskRoleName", "serviceSecurityGroupId", "autoscalingMin", "autoscalingMax",
    "listenerArn", "listenerRuleArn", "listenerRulePriority", "targetGroupArn", "targetGroupName",
    "monolithTargetGroupArn", "canaryWeight",
    "dmsReplicationInstanceArn", "dmsReplicationTaskArn", "dmsSourceEndpointArn", "dmsTargetEndpointArn", "dmsTables",
    "alarmTopicArn", "alarmNames", "dashboardName", "dashboardUrl", "cognitoSecretArn",
}
DMS_OUTPUTS = {"dmsReplicationInstanceArn", "dmsReplicationTaskArn", "dmsSourceEndpointArn", "dmsTargetEndpointArn", "dmsTables"}
SIX_TABLES = ["tasks", "task_images", "task_tag", "scheduled_group_tasks", "scheduled_task_executions", "scheduled_task_tags"]


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def weights(rec: Recording) -> list[float]:
    rule = rec.one("aws:lb/listenerRule:ListenerRule").inputs
    return [tg["weight"] for tg in rule["actions"][0]["forward"]["targetGroups"]]


def test_prod_database_matches_the_digest(prod: Recording) -> None:
    db = prod.one("aws:rds/instance:Instance").inputs
    assert db["engine"] == "postgres" and db["engineVersion"] == "16"
    assert db["instanceClass"] == "db.t3.medium"
    assert db["allocatedStorage"] == 100 and db["storageType"] == "gp3" and db["maxAllocatedStorage"] == 200
    assert db["multiAz"] is True and db["storageEncrypted"] is True
    assert db["kmsKeyId"] == UNKNOWN and db["performanceInsightsKmsKeyId"] == UNKNOWN  # the stack's own key
    assert db["backupRetentionPeriod"] == 7 and db["backupWindow"] and db["maintenanceWindow"]
    assert db["performanceInsightsEnabled"] is True and db["performanceInsightsRetentionPeriod"] == 7
    assert db["monitoringInterval"] == 60 and db["monitoringRoleArn"] == UNKNOWN
    assert db["publiclyAccessible"] is False and db["iamDatabaseAuthenticationEnabled"] is True
    assert db["deletionProtection"] is True and db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"] == "task-service-db-final"
    assert db["copyTagsToSnapshot"] is True
    assert db["dbName"] == "task_service" and db["username"] == "task_service_user"
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert is_secret(db["password"])
    key = prod.one("aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True
    params = {p["name"]: p["value"] for p in prod.one("aws:rds/parameterGroup:ParameterGroup").inputs["parameters"]}
    assert prod.one("aws:rds/parameterGroup:ParameterGroup").inputs["family"] == "postgres16"
    assert params["rds.force_ssl"] == "1" and int(params["log_min_duration_statement"]) > 0
    password = prod.one("random:index/randomPassword:RandomPassword").inputs
    assert password["length"] >= 32


def test_dev_database_is_small_and_disposable(dev: Recording) -> None:
    db = dev.one("aws:rds/instance:Instance").inputs
    assert db["instanceClass"] == "db.t3.micro" and db["allocatedStorage"] == 20
    assert db["multiAz"] is False and db["deletionProtection"] is False and db["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in db
    assert db["storageEncrypted"] is True and db["backupRetentionPeriod"] == 7


def test_service_sizing_and_autoscaling(prod: Recording, dev: Recording) -> None:
    for rec, (lo, hi), name in ((prod, (2, 10), "task-service"), (dev, (2, 4), "task-service-dev")):
        task = rec.one("aws:ecs/taskDefinition:TaskDefinition").inputs
        assert (task["cpu"], task["memory"]) == ("512", "1024")
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
        service = rec.one("aws:ecs/service:Service")
        assert service.inputs["desiredCount"] == 2 and service.inputs["name"] == name
        assert service.ignore_changes == ["desiredCount"]
        assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert service.inputs["networkConfiguration"]["assignPublicIp"] is False
        target = rec.one("aws:appautoscaling/target:Target").inputs
        assert (target["minCapacity"], target["maxCapacity"]) == (lo, hi)
        assert target["scalableDimension"] == "ecs:service:DesiredCount"
        policies = {
            p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]["predefinedMetricType"]:
            p.inputs["targetTrackingScalingPolicyConfiguration"]
            for p in rec.by_type("aws:appautoscaling/policy:Policy")
        }
        assert set(policies) == {"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"}
        for conf in policies.values():
            assert (conf["targetValue"], conf["scaleOutCooldown"], conf["scaleInCooldown"]) == (70, 60, 300)


def test_route_target_group_and_weights(prod: Recording, dev: Recording) -> None:
    tg = prod.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["name"], tg["port"], tg["protocol"], tg["targetType"]) == ("task-service-tg", 3001, "HTTP", "ip")
    hc = tg["healthCheck"]
    assert (hc["path"], hc["interval"], hc["timeout"], hc["healthyThreshold"], hc["unhealthyThreshold"]) == ("/health", 30, 5, 2, 3)
    rule = prod.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["priority"] == 10
    assert "/api/tasks/*" in rule["conditions"][0]["pathPattern"]["values"]
    assert rule["tags"]["CanaryTargetGroup"] == "task-service-tg"
    groups = rule["actions"][0]["forward"]["targetGroups"]
    assert groups[0]["arn"].endswith("targetgroup/myteacher-app-tg/73e2d6bc24d8a067") and groups[1]["arn"] == UNKNOWN
    assert weights(prod) == [100, 0]  # dark launch: both groups named, all traffic on the monolith
    assert weights(dev) == [0, 100]


def test_dms_full_load_and_cdc_of_the_six_tables(prod: Recording) -> None:
    instance = prod.one("aws:dms/replicationInstance:ReplicationInstance").inputs
    assert instance["replicationInstanceClass"] == "dms.t3.medium" and instance["allocatedStorage"] == 50
    assert instance["multiAz"] is True and instance["publiclyAccessible"] is False and instance["kmsKeyArn"] == UNKNOWN
    task = prod.one("aws:dms/replicationTask:ReplicationTask").inputs
    assert task["migrationType"] == "full-load-and-cdc" and task["startReplicationTask"] is False
    rules = json.loads(task["tableMappings"])["rules"]
    assert [r["object-locator"]["table-name"] for r in rules] == SIX_TABLES
    assert {r["object-locator"]["schema-name"] for r in rules} == {"public"}
    settings = json.loads(task["replicationTaskSettings"])
    assert settings["ValidationSettings"]["EnableValidation"] is True and settings["Logging"]["EnableLogging"] is True
    assert settings["FullLoadSettings"]["TargetTablePrepMode"] == "DO_NOTHING"
    endpoints = {e.inputs["endpointType"]: e.inputs for e in prod.by_type("aws:dms/endpoint:Endpoint")}
    assert endpoints["source"]["databaseName"] == "myteacher_production"
    assert endpoints["target"]["databaseName"] == "task_service"
    assert endpoints["target"]["postgresSettings"]["afterConnectScript"] == "SET session_replication_role = 'replica'"
    assert "postgresSettings" not in endpoints["source"]
    for endpoint in endpoints.values():
        assert endpoint["sslMode"] == "require" and endpoint["engineName"] == "postgres"
        assert endpoint["secretsManagerArn"] and endpoint["secretsManagerAccessRoleArn"] == UNKNOWN
    # the account-level roles exist once per account; prod does not claim them
    assert not [r for r in prod.by_type("aws:iam/role:Role") if r.inputs["name"].startswith("dms-")]


def test_dev_has_no_dms(dev: Recording) -> None:
    assert not [r for r in dev.resources if r.type.startswith("aws:dms/") or r.type.startswith("task-service:dms")]
    assert not DMS_OUTPUTS & set(dev.outputs)  # exported as None: absent from the stack outputs


def test_names_from_the_runbook(prod: Recording) -> None:
    names = {(r.type, r.inputs.get("name")) for r in prod.resources}
    for expected in (
        ("aws:ecs/cluster:Cluster", "task-service-cluster"),
        ("aws:ecr/repository:Repository", "task-service"),
        ("aws:iam/role:Role", "task-service-execution-role"),
        ("aws:iam/role:Role", "task-service-task-role"),
        ("aws:secretsmanager/secret:Secret", "task-service/db-password"),
        ("aws:secretsmanager/secret:Secret", "task-service/cognito-config"),
        ("aws:cloudwatch/logGroup:LogGroup", "/ecs/task-service"),
        ("aws:sns/topic:Topic", "task-service-alarms"),
    ):
        assert expected in names
    assert prod.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardName"] == "TaskServiceMetrics"
    assert prod.one("aws:rds/instance:Instance").inputs["identifier"] == "task-service-db"


def test_alarm_thresholds(prod: Recording) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in prod.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert all(name.startswith("task-service") for name in alarms)
    assert all(a["alarmActions"] == [UNKNOWN] for a in alarms.values())  # the (new) alarm topic
    expected = {
        "task-service-ecs-cpu-high": 80,
        "task-service-ecs-memory-high": 85,
        "task-service-db-cpu-high": 70,
        "task-service-db-connections-high": 80,
        "task-service-api-5xx-rate-high": 1,
        "task-service-api-p95-latency-high": 0.5,
        "task-service-api-unhealthy-hosts": 0,
    }
    for name, threshold in expected.items():
        assert alarms[name]["threshold"] == threshold, name
    assert alarms["task-service-api-p95-latency-high"]["extendedStatistic"] == "p95"
    queries = {q["id"]: q for q in alarms["task-service-api-5xx-rate-high"]["metricQueries"]}
    assert queries["errors"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert queries["requests"]["metric"]["metricName"] == "RequestCount"
    assert queries["rate"]["returnData"] is True
    assert {"task-service-db-free-storage-low", "task-service-db-freeable-memory-low"} <= set(alarms)
    assert sorted(prod.outputs["alarmNames"]) == sorted(alarms)


def test_outputs_contract(prod: Recording, dev: Recording) -> None:
    assert OUTPUT_CONTRACT <= set(prod.outputs)
    assert OUTPUT_CONTRACT - DMS_OUTPUTS <= set(dev.outputs)
    assert prod.outputs["dmsTables"] == [f"public.{t}" for t in SIX_TABLES]
    assert (prod.outputs["canaryWeight"], dev.outputs["canaryWeight"]) == (0, 100)
    assert prod.outputs["listenerRulePriority"] == 10 and prod.outputs["targetGroupName"] == "task-service-tg"
    assert prod.outputs["dbEngineVersion"] == UNKNOWN  # provider-computed: unknown in a preview


def test_dms_is_the_only_difference_in_shape(prod: Recording, dev: Recording) -> None:
    """Dev is prod minus DMS: the same resources by URN, except the DMS component's tree and the DB's DMS rule."""
    def shape(rec: Recording) -> set[str]:
        return {r.urn.split("::", 2)[2] for r in rec.resources}

    extra = shape(prod) - shape(dev)
    assert not shape(dev) - shape(prod)
    assert extra == {u for u in extra if "task-service:dms:DmsReplication" in u or u.endswith("::task-service-db-from-dms")}
    assert len(extra) == 16  # the component, its 14 children, and the DB ingress rule for DMS
    assert Counter(r.type for r in prod.resources)["aws:cloudwatch/metricAlarm:MetricAlarm"] == 9
