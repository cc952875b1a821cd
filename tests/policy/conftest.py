"""Shared fixtures: import paths the pack itself uses, and packs started once per session."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

_ROOT = Path(__file__).resolve().parents[2]
for path in (_ROOT, _ROOT / "policy", Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from policy_support import FAKE_AWS, POLICY_DIR, Alb  # noqa: E402
from preview.analyzer_client import PolicyPackServer  # noqa: E402
from tests.pgserver import free_port  # noqa: E402


@pytest.fixture(scope="session")
def unreachable_aws() -> dict[str, str]:
    return {**FAKE_AWS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}


@pytest.fixture(scope="session")
def prod_pack(unreachable_aws: dict[str, str]) -> Iterator[PolicyPackServer]:
    """The pack as a prod preview runs it, with AWS pointed at a closed port (live reads fail fast)."""
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="prod", env=unreachable_aws) as pack:
        pack.configure(POLICY_DIR / "config" / "prod.json")
        yield pack


@pytest.fixture(scope="session")
def dev_pack(unreachable_aws: dict[str, str]) -> Iterator[PolicyPackServer]:
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="dev", env=unreachable_aws) as pack:
        pack.configure(POLICY_DIR / "config" / "dev.json")
        yield pack


# moto: a real HTTP endpoint for the live-state reads

@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from tests.moto_server import serving

    with serving() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    return {**FAKE_AWS, "AWS_ENDPOINT_URL": moto_endpoint}


@pytest.fixture(scope="session")
def moto_pack(aws_env: dict[str, str]) -> Iterator[PolicyPackServer]:
    """The prod pack reading live state from moto."""
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="prod", env=aws_env) as pack:
        pack.configure(POLICY_DIR / "config" / "prod.json")
        yield pack


@pytest.fixture
def alb(moto_endpoint: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Alb:
    """A fresh moto account: VPC, two subnets, the monolith's ALB and listener, both target groups; no rule yet."""
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5)
    for key, value in aws_env.items():
        monkeypatch.setenv(key, value)
    region = FAKE_AWS["AWS_DEFAULT_REGION"]
    ec2 = boto3.client("ec2", region_name=region)
    elb = boto3.client("elbv2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "c"))]
    lb = elb.create_load_balancer(Name="myteacher-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]

    def tg(name: str, port: int) -> str:
        return str(elb.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=vpc, TargetType="ip")
                   ["TargetGroups"][0]["TargetGroupArn"])

    monolith, task = tg("myteacher-app-tg", 80), tg("task-service-tg", 3001)
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": monolith}])
    return Alb(elb, listener["Listeners"][0]["ListenerArn"], monolith, task)
