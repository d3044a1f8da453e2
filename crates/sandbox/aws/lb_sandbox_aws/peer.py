"""A second AWS account, for a target group in another account than the cluster's (a
TargetGroupBinding's `iamRoleArnToAssume`): the account gets a VPC like the cluster's (as if
peered, so pod addresses are valid targets), its subnets, an ALB, and the target group with exactly
the ARN the binding names, which the ALB forwards to. moto lets any role be assumed, and the
credentials it returns reach the account in the role's ARN, so the controller's AssumeRole and
calls work as against AWS.
"""

import boto3
from botocore.config import Config
from moto.elbv2.models import elbv2_backends

from .faults import EXEMPT_ACCESS_KEY

# boto3 refuses health checks faster than ELB's minimum (5 s); the sandbox checks every 2 s.
_NO_CLIENT_VALIDATION = Config(parameter_validation=False)


def client(service: str, endpoint: str, region: str, account: str | None = None):
    """A boto3 client of the emulator, in `account` (else moto's default account)."""
    client = boto3.session.Session(
        aws_access_key_id=EXEMPT_ACCESS_KEY, aws_secret_access_key="testing", region_name=region
    ).client(service, endpoint_url=endpoint, config=_NO_CLIENT_VALIDATION)

    def in_account(request, **_):
        request.headers["x-moto-account-id"] = account

    if account is not None:
        client.meta.events.register("before-sign.*.*", in_account)
    return client


def parse_target_group_arn(arn: str) -> tuple[str, str, str]:
    """(region, account, name) of `arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "elasticloadbalancing" or not parts[5].startswith("targetgroup/"):
        raise ValueError(f"{arn} is not a target group ARN")
    resource = parts[5].split("/")
    if len(resource) != 3 or not resource[1]:
        raise ValueError(f"{arn} is not a target group ARN")
    return parts[3], parts[4], resource[1]


def ensure_target_group(endpoint: str, config: dict, arn: str) -> dict:
    """Makes target group `arn` exist, with an ALB in front, in the account and region it names."""
    region, account, name = parse_target_group_arn(arn)
    backend = elbv2_backends[account][region]
    if arn in backend.target_groups:
        return {"target_group_arn": arn, "account": account, "created": False}
    ec2 = client("ec2", endpoint, region, account)
    elb = client("elbv2", endpoint, region, account)
    vpc_id = ec2.create_vpc(CidrBlock=config["pod_cidr"])["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=s["cidr"], AvailabilityZone=s["zone"])["Subnet"]["SubnetId"]
        for s in config["subnets"]
    ]
    group = elb.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType="ip",
        HealthCheckPath="/healthz", HealthCheckIntervalSeconds=2, HealthCheckTimeoutSeconds=1,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]
    # moto makes up the ARN's last part; the binding names a given one.
    fake = backend.target_groups.pop(group["TargetGroupArn"])
    fake.arn = arn
    backend.target_groups[arn] = fake
    elb.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "10"}]
    )
    load_balancer = elb.create_load_balancer(Name=f"{name}-alb"[:32], Subnets=subnets, Type="application")
    elb.create_listener(
        LoadBalancerArn=load_balancer["LoadBalancers"][0]["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
    )
    return {"target_group_arn": arn, "account": account, "vpc_id": vpc_id, "created": True}
