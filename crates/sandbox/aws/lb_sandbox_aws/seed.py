"""Seeds the emulated account like an EKS cluster's VPC: the VPC is the sandbox's pod CIDR (pods
and nodes have VPC addresses, as with the VPC CNI), one subnet per zone tagged for load balancers
and the cluster, the VPC's default security group, one EC2 instance per node (its private IP is
the node's address, so instance targets resolve), and an issued ACM certificate for *.example.com.
"""

import boto3


def seed(endpoint: str, config: dict) -> dict:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=config["region"]
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

    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    security_group_id = groups[0]["GroupId"]

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
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": node["name"]}, cluster_tag]}],
        )
        instances[node["name"]] = reservation["Instances"][0]["InstanceId"]

    certificate_arn = acm.request_certificate(DomainName="*.example.com", ValidationMethod="DNS")["CertificateArn"]
    return {
        "vpc_id": vpc_id,
        "subnets": subnets,
        "security_group_id": security_group_id,
        "instances": instances,
        "certificate_arn": certificate_arn,
    }
