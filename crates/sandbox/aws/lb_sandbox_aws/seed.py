"""Seeds the emulated account like an EKS cluster's VPC: the VPC is the sandbox's pod CIDR (pods
and nodes have VPC addresses, as with the VPC CNI), one subnet per zone tagged for load balancers
and the cluster, the cluster security group EKS makes (tagged `kubernetes.io/cluster/<name>=owned`,
admitting only itself), one EC2 instance per node (its private IP is the node's address, so
instance targets resolve; its primary interface carries the cluster security group, as an EKS
node's does, and later its pods' addresses, see network.py), a frontend group open to every
client for load balancers made by hand, and an ACM certificate for *.example.com issued by
the emulator's own CA (imported with its key, so TLS listeners terminate with it; the CA is handed
to the sandbox so its clients can verify).
"""

import datetime

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .faults import EXEMPT_ACCESS_KEY


def _pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def issue_certificate(names: list[str]) -> tuple[bytes, bytes, bytes]:
    """(certificate, private key, CA certificate) as PEM: a leaf for `names` from a fresh CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb-sandbox ACM CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return _pem(leaf), key_pem, _pem(ca)


# The security groups the seed makes are the environment, not any controller's footprint.
FRONTEND_GROUP_NAME = "lb-sandbox-frontend"
EKS_CLUSTER_TAG = "aws:eks:cluster-name"


def is_environment_group(group: dict) -> bool:
    """A security group the seed made (as DescribeSecurityGroups answers it)."""
    tags = {t["Key"] for t in group.get("Tags", [])}
    return group["GroupName"] == FRONTEND_GROUP_NAME or EKS_CLUSTER_TAG in tags


def seed(endpoint: str, config: dict) -> dict:
    session = boto3.session.Session(
        aws_access_key_id=EXEMPT_ACCESS_KEY, aws_secret_access_key="testing", region_name=config["region"]
    )
    ec2 = session.client("ec2", endpoint_url=endpoint)
    acm = session.client("acm", endpoint_url=endpoint)
    cluster_tag = {"Key": f"kubernetes.io/cluster/{config['cluster_name']}", "Value": "shared"}

    vpc_id = ec2.create_vpc(CidrBlock=config["pod_cidr"])["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "lb-sandbox"}, cluster_tag])

    subnets = {}
    for subnet in config["subnets"]:
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=subnet["cidr"], AvailabilityZone=subnet["zone"]
        )["Subnet"]["SubnetId"]
        ec2.create_tags(
            Resources=[subnet_id],
            Tags=[
                {"Key": "Name", "Value": f"lb-sandbox-{subnet['zone']}"},
                {"Key": "kubernetes.io/role/elb", "Value": "1"},
                {"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
                cluster_tag,
            ],
        )
        subnets[subnet["zone"]] = subnet_id

    cluster_group_id = ec2.create_security_group(
        GroupName=f"eks-cluster-sg-{config['cluster_name']}-1234567890",
        Description="EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": f"kubernetes.io/cluster/{config['cluster_name']}", "Value": "owned"},
            {"Key": EKS_CLUSTER_TAG, "Value": config["cluster_name"]},
            {"Key": "Name", "Value": f"eks-cluster-sg-{config['cluster_name']}-1234567890"},
        ]}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=cluster_group_id,
        IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": cluster_group_id}]}],
    )
    # What a cloud engineer puts on a load balancer made by hand for the cluster: a frontend group
    # open to clients (with the cluster group beside it, the targets admit the load balancer).
    frontend_group_id = ec2.create_security_group(
        GroupName=FRONTEND_GROUP_NAME, Description="clients of hand-made load balancers", VpcId=vpc_id,
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=frontend_group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
    )

    image_id = ec2.describe_images()["Images"][0]["ImageId"]
    instances = {}
    for node in config["nodes"]:
        reservation = ec2.run_instances(
            ImageId=image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="m5.large",
            SubnetId=subnets[node["zone"]],
            PrivateIpAddress=node["address"],
            SecurityGroupIds=[cluster_group_id],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": node["name"]}, cluster_tag]}],
        )
        instances[node["name"]] = reservation["Instances"][0]["InstanceId"]

    certificate, key, ca = issue_certificate(["*.example.com", "*.elb.amazonaws.com"])
    certificate_arn = acm.import_certificate(Certificate=certificate, PrivateKey=key, CertificateChain=ca)[
        "CertificateArn"
    ]
    return {
        "vpc_id": vpc_id,
        "subnets": subnets,
        "cluster_security_group_id": cluster_group_id,
        "frontend_security_group_id": frontend_group_id,
        "instances": instances,
        "certificate_arn": certificate_arn,
        "certificate_ca_pem": ca.decode(),
    }
