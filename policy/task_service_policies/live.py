"""Reads the listener rule's current forward weights from AWS (or whatever `AWS_ENDPOINT_URL` points at).

Kept apart from the policy so the reading can be tested on its own and swapped in tests. Every failure becomes
`LiveStateUnavailable` with a reason a person can act on (`LiveStateDenied` when AWS refuses the identity);
timeouts are short and retries off, so an unreachable endpoint answers within a couple of seconds instead of
stalling a preview. `client` builds the same short-timeout clients for the health gate's reads.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from .health_gate import ACCESS_DENIED, REFUSED_CREDENTIALS


class LiveStateUnavailable(Exception):
    """The live rule could not be read; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LiveStateDenied(LiveStateUnavailable):
    """AWS refused this identity the read: `permission` is the IAM action it lacks."""

    def __init__(self, reason: str, permission: str) -> None:
        super().__init__(reason)
        self.permission = permission


DENIED = ACCESS_DENIED | REFUSED_CREDENTIALS
"""Codes that mean the identity may not read, as the health gate sorts them."""


@dataclass(frozen=True)
class LiveRule:
    arn: str
    # (target group ARN, weight) as AWS reports them; a plain forward is one group at weight 1.
    targets: tuple[tuple[str, float], ...]
    tags: dict[str, str] = field(default_factory=dict)


def region_of(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "elasticloadbalancing" or not parts[3]:
        raise LiveStateUnavailable(f"'{arn}' is not an elasticloadbalancing listener ARN")
    return parts[3]


@functools.lru_cache(maxsize=32)
def _client(service: str, region: str, timeout: float, env_key: tuple[Optional[str], ...]) -> Any:
    """One client per service, region and AWS environment: building one costs more than the calls it makes."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    # Any: the service is chosen at run time, and boto3's stubs type `client` only per literal service name.
    session: Any = boto3.session.Session()
    return session.client(service, region_name=region, config=config)


_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "AWS_ENDPOINT_URL_CLOUDWATCH",
             "AWS_ENDPOINT_URL_SSM", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_SESSION_TOKEN",
             "AWS_WEB_IDENTITY_TOKEN_FILE")


def client(service: str, region: str, timeout: float) -> Any:
    """A client with short timeouts and no retries, for the current AWS environment."""
    return _client(service, region, timeout, tuple(os.environ.get(k) for k in _ENV_KEYS))


def _targets(actions: list[dict[str, Any]]) -> tuple[tuple[str, float], ...]:
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            return tuple((g["TargetGroupArn"], float(g.get("Weight", 1))) for g in groups)
        if action.get("TargetGroupArn"):
            return ((action["TargetGroupArn"], 1.0),)
    return ()


def _find_rule(client: Any, listener_arn: str, priority: int) -> Optional[dict[str, Any]]:
    kwargs: dict[str, Any] = {"ListenerArn": listener_arn}
    while True:
        page = client.describe_rules(**kwargs)
        found = next((r for r in page.get("Rules", []) if r.get("Priority") == str(priority)), None)
        if found is not None or not page.get("NextMarker"):
            return found
        kwargs["Marker"] = page["NextMarker"]


def read_live_rule(listener_arn: str, priority: int, timeout: float = 1.5) -> Optional[LiveRule]:
    """The rule at `priority` on the listener, or None when the listener has no rule there (a new rule)."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = region_of(listener_arn)
    permission = "elasticloadbalancing:DescribeRules"
    try:
        elbv2 = client("elbv2", region, timeout)
        found = _find_rule(elbv2, listener_arn, priority)
        if found is None:
            return None
        permission = "elasticloadbalancing:DescribeTags"
        described = elbv2.describe_tags(ResourceArns=[found["RuleArn"]]).get("TagDescriptions", [])
        tags = {t["Key"]: t["Value"] for d in described for t in d.get("Tags", [])}
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        reason = f"AWS answered {code} for listener {listener_arn}: {err}"
        if code in DENIED or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            raise LiveStateDenied(reason, permission) from err
        raise LiveStateUnavailable(reason) from err
    except BotoCoreError as err:
        raise LiveStateUnavailable(f"{type(err).__name__}: {err}") from err
    except Exception as err:  # noqa: BLE001 - a policy must report, not crash the preview
        raise LiveStateUnavailable(f"unexpected {type(err).__name__}: {err}") from err
    return LiveRule(arn=found["RuleArn"], targets=_targets(found.get("Actions", [])), tags=tags)
