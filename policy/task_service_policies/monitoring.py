"""Monitoring: Performance Insights, enhanced monitoring, and alarms that actually notify someone."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity

from .common import METRIC_ALARM, RDS_INSTANCE, as_bool, as_number, fmt_number, is_set, resource_policy

Report = Callable[[str], None]


def _check_performance_insights(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if as_bool(props.get("performanceInsightsEnabled")) is not True:
        report("performanceInsightsEnabled is not true.")
        return
    days = as_number(props.get("performanceInsightsRetentionPeriod"))
    minimum = float(cfg["minimumRetentionDays"])
    # Unset means the free tier's 7 days.
    effective = 7.0 if days is None else days
    if effective < minimum:
        report(f"performanceInsightsRetentionPeriod is {fmt_number(effective)} days; at least "
               f"{fmt_number(minimum)} is required.")


def _check_enhanced_monitoring(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    interval = as_number(props.get("monitoringInterval"))
    maximum = float(cfg["maximumIntervalSeconds"])
    if interval is None or interval == 0:
        report("monitoringInterval is not set, so enhanced (OS-level) monitoring is off.")
    elif interval > maximum:
        report(f"monitoringInterval is {fmt_number(interval)} s; at most {fmt_number(maximum)} s is required.")
    elif not is_set(props, "monitoringRoleArn"):
        report("monitoringRoleArn is not set; RDS needs it to publish enhanced monitoring metrics.")


def _check_alarm_actions(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if as_bool(props.get("actionsEnabled")) is False:
        report("actionsEnabled is false, so the alarm never notifies anyone.")
    elif not is_set(props, "alarmActions"):
        report("alarmActions is empty, so the alarm changes state silently.")


rds_performance_insights = resource_policy(
    name="rds-performance-insights",
    area="monitoring",
    description="RDS Performance Insights is on and keeps at least the configured number of days.",
    resource_types=[RDS_INSTANCE],
    check=_check_performance_insights,
    remediation="set performanceInsightsEnabled=True and performanceInsightsRetentionPeriod >= 7.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
    config={
        "minimumRetentionDays": {
            "type": "integer", "minimum": 7, "default": 7,
            "description": "Fewest days of Performance Insights history accepted.",
        },
    },
)

rds_enhanced_monitoring = resource_policy(
    name="rds-enhanced-monitoring",
    area="monitoring",
    description="RDS enhanced monitoring runs at least every configured number of seconds.",
    resource_types=[RDS_INSTANCE],
    check=_check_enhanced_monitoring,
    remediation="set monitoringInterval (1, 5, 10, 15, 30 or 60) and monitoringRoleArn.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
    config={
        "maximumIntervalSeconds": {
            "type": "integer", "enum": [1, 5, 10, 15, 30, 60], "default": 60,
            "description": "Longest monitoringInterval accepted, in seconds.",
        },
    },
)

alarm_actions = resource_policy(
    name="cloudwatch-alarm-actions",
    area="monitoring",
    description="CloudWatch metric alarms have alarm actions.",
    resource_types=[METRIC_ALARM],
    check=_check_alarm_actions,
    remediation="set alarmActions to the service's SNS topic ARN.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
)

POLICIES = [rds_performance_insights, rds_enhanced_monitoring, alarm_actions]
