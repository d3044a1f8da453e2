"""A controller's AWS footprint: what it left in the emulated account, in a form that compares
across controllers and clusters, and the replay of one footprint into a fresh emulator.

`dump` reads the account through the API, as any client sees it. Whatever moto makes up per run
is left out (ARNs, IDs, DNS names, times, the VPC) and every reference is by name (a target group
in an action, a security group on a load balancer or in a rule), so two runs that did the same
compare equal; lists are sorted by name, as controllers create concurrently. What is left out of
each description (`_TARGET_GROUP_DROPPED`, `_ACTION_DROPPED`) is what the recorded upstream
footprint lacks; a key that shows only when a resource was asked for differently (a TCP group's
HealthCheckPath, an action's top-level TargetGroupArn, a condition's top-level Values) stays, so
that difference shows.

The security groups the seed made (the EKS cluster group, the frontend group of hand-made load
balancers) are the environment and are left out: the recorded footprint predates them.

`replay` creates a footprint with the requests the upstream controller sends (its request shapes:
only the fields it sets, tags included), so that a controller started afterwards finds the state
upstream would have left, as when it replaces upstream in a cluster. That includes upstream's rules
on the cluster security group, which the recording could not show (the emulator had no network
interfaces then, and upstream gave up on them): from the backend group, one range per protocol
from the lowest to the highest port of the target groups (their port and numeric health-check
port), labelled `elbv2.k8s.aws/targetGroupBinding=shared`, as upstream's restricted rules merge its
bindings' `networking`.
"""

from .peer import client
from .seed import EKS_CLUSTER_TAG, is_environment_group

# Identities (the ARN; the name is `name`), the VPC's ID, the load balancers using the group (the
# listeners say which), and HealthCheckEnabled, which moto always answers (true by default).
_TARGET_GROUP_DROPPED = ("TargetGroupArn", "TargetGroupName", "VpcId", "LoadBalancerArns", "HealthCheckEnabled")
# moto answers an action's Order as it was sent; the footprint shows the actions in order instead.
_ACTION_DROPPED = ("Order",)

STACK_PREFIXES = ("ingress.k8s.aws", "service.k8s.aws")
CLUSTER_TAG = "elbv2.k8s.aws/cluster"

def _clients(endpoint: str, config: dict):
    return client("ec2", endpoint, config["region"]), client("elbv2", endpoint, config["region"])


def _pages(client, operation: str, key: str, **request) -> list:
    return [item for page in client.get_paginator(operation).paginate(**request) for item in page[key]]


def _tag_dict(tags: list) -> dict:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _tag_list(tags: dict) -> list:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _attribute_dict(answer: dict) -> dict:
    return {attribute["Key"]: attribute["Value"] for attribute in answer["Attributes"]}


def _vpc_groups(ec2, vpc_id: str) -> list:
    return _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])


# Dump -----------------------------------------------------------------------------------------


def _elb_tags(elb, arns: list) -> dict:
    """Tags by ARN; DescribeTags takes at most 20 ARNs a call."""
    tags = {}
    for start in range(0, len(arns), 20):
        for description in elb.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tags[description["ResourceArn"]] = _tag_dict(description["Tags"])
    return tags


def dump_actions(actions: list, group_names: dict) -> list:
    """Actions as the footprint shows them: in order, without Order, target groups by name (by
    ARN when not in the account)."""
    shown = []
    for action in sorted(actions, key=lambda a: a.get("Order", 0)):
        action = {key: value for key, value in action.items() if key not in _ACTION_DROPPED}
        if "TargetGroupArn" in action:
            action["TargetGroupArn"] = group_names.get(action["TargetGroupArn"], action["TargetGroupArn"])
        if "ForwardConfig" in action:
            action["ForwardConfig"] = {
                **action["ForwardConfig"],
                "TargetGroups": [
                    {**group, "TargetGroupArn": group_names.get(group["TargetGroupArn"], group["TargetGroupArn"])}
                    for group in action["ForwardConfig"].get("TargetGroups", [])
                ],
            }
        shown.append(action)
    return shown


def dump_ingress(permissions: list, group_names: dict) -> list:
    """Ingress rules by protocol and port range (as EC2 groups them), each source a [value,
    description] pair, sorted: CIDRs IPv4 and IPv6 alike, security groups by name (by ID when
    outside the VPC), and prefix lists only in a rule that has some."""
    rules = []
    for permission in permissions:
        rule = {
            "proto": permission["IpProtocol"],
            "from": permission.get("FromPort"),
            "to": permission.get("ToPort"),
            "cidrs": sorted(
                [[r["CidrIp"], r.get("Description", "")] for r in permission.get("IpRanges", [])]
                + [[r["CidrIpv6"], r.get("Description", "")] for r in permission.get("Ipv6Ranges", [])]
            ),
            "groups": sorted(
                [group_names.get(pair["GroupId"], pair["GroupId"]), pair.get("Description", "")]
                for pair in permission.get("UserIdGroupPairs", [])
            ),
        }
        if permission.get("PrefixListIds"):
            rule["prefix_lists"] = sorted(
                [p["PrefixListId"], p.get("Description", "")] for p in permission["PrefixListIds"]
            )
        rules.append(rule)
    unset = -1  # all-traffic rules have no ports
    return sorted(rules, key=lambda r: (r["proto"], r["from"] if r["from"] is not None else unset,
                                        r["to"] if r["to"] is not None else unset))


def _dump_listener(elb, listener: dict, group_names: dict) -> dict:
    rules = _pages(elb, "describe_rules", "Rules", ListenerArn=listener["ListenerArn"])
    return {
        "default_actions": dump_actions(listener["DefaultActions"], group_names),
        "port": listener["Port"],
        "protocol": listener["Protocol"],
        "rules": [
            {
                "actions": dump_actions(rule["Actions"], group_names),
                "conditions": rule["Conditions"],
                "priority": rule["Priority"],
            }
            for rule in sorted((r for r in rules if not r["IsDefault"]), key=lambda r: int(r["Priority"]))
        ],
        "ssl_policy": listener.get("SslPolicy"),
    }


def _dump_load_balancer(elb, balancer: dict, tags: dict, security_group_names: dict, target_group_names: dict) -> dict:
    arn = balancer["LoadBalancerArn"]
    listeners = _pages(elb, "describe_listeners", "Listeners", LoadBalancerArn=arn)
    return {
        "attributes": _attribute_dict(elb.describe_load_balancer_attributes(LoadBalancerArn=arn)),
        "ip_address_type": balancer["IpAddressType"],
        "listeners": sorted((_dump_listener(elb, listener, target_group_names) for listener in listeners),
                            key=lambda listener: listener["port"]),
        "name": balancer["LoadBalancerName"],
        "scheme": balancer["Scheme"],
        "security_groups": [security_group_names.get(i, i) for i in balancer.get("SecurityGroups", [])],
        "tags": tags.get(arn, {}),
        "type": balancer["Type"],
    }


def _dump_target_group(elb, group: dict, tags: dict) -> dict:
    return {
        **{key: value for key, value in group.items() if key not in _TARGET_GROUP_DROPPED},
        "attributes": _attribute_dict(elb.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])),
        "name": group["TargetGroupName"],
        "tags": tags.get(group["TargetGroupArn"], {}),
    }


def _dump_security_group(group: dict, security_group_names: dict) -> dict:
    return {
        "description": group["Description"],
        "ingress": dump_ingress(group["IpPermissions"], security_group_names),
        "name": group["GroupName"],
        "tags": _tag_dict(group.get("Tags", [])),
    }


def dump(endpoint: str, config: dict, vpc_id: str) -> dict:
    """The account's load balancers and target groups, and the security groups of the cluster's
    VPC (`vpc_id`), in the recorded footprint's form (crates/lab/fixtures/upstream-footprint)."""
    ec2, elb = _clients(endpoint, config)
    security_groups = [g for g in _vpc_groups(ec2, vpc_id) if not is_environment_group(g)]
    security_group_names = {group["GroupId"]: group["GroupName"] for group in security_groups}
    target_groups = _pages(elb, "describe_target_groups", "TargetGroups")
    target_group_names = {group["TargetGroupArn"]: group["TargetGroupName"] for group in target_groups}
    balancers = _pages(elb, "describe_load_balancers", "LoadBalancers")
    tags = _elb_tags(elb, [b["LoadBalancerArn"] for b in balancers] + [g["TargetGroupArn"] for g in target_groups])
    by_name = lambda item: item["name"]  # noqa: E731
    return {
        "cluster_name": config["cluster_name"],
        "load_balancers": sorted(
            (_dump_load_balancer(elb, b, tags, security_group_names, target_group_names) for b in balancers),
            key=by_name,
        ),
        "security_groups": sorted((_dump_security_group(g, security_group_names) for g in security_groups), key=by_name),
        "target_groups": sorted((_dump_target_group(elb, g, tags) for g in target_groups), key=by_name),
    }


# Replay ---------------------------------------------------------------------------------------


def replay_actions(actions: list, target_group_arns: dict) -> list:
    """Actions as upstream sends them: Order from 1; a forward names its groups in ForwardConfig
    alone, with weights only when there are several and stickiness only when enabled (moto
    answers weight 1 and stickiness off for what is not sent)."""
    sent = []
    for order, action in enumerate(actions, start=1):
        action = dict(action)
        if "ForwardConfig" in action:
            groups = action["ForwardConfig"]["TargetGroups"]
            forward = {
                "TargetGroups": [
                    {"TargetGroupArn": target_group_arns[group["TargetGroupArn"]],
                     **({"Weight": group["Weight"]} if len(groups) > 1 else {})}
                    for group in groups
                ]
            }
            stickiness = action["ForwardConfig"].get("TargetGroupStickinessConfig") or {}
            if stickiness.get("Enabled"):
                forward["TargetGroupStickinessConfig"] = stickiness
            action["ForwardConfig"] = forward
        sent.append({**action, "Order": order})
    return sent


def _described(key: str, value: str, description: str) -> dict:
    return {key: value, **({"Description": description} if description else {})}


def replay_permissions(rules: list, group_id) -> list:
    """Ingress rules as upstream sends them: one permission per source, a description only where
    there is one; `group_id` gives a source group's ID from its footprint name."""
    permissions = []
    for rule in rules:
        ports = {"FromPort": rule["from"], "ToPort": rule["to"]} if rule["from"] is not None else {}
        base = {"IpProtocol": rule["proto"], **ports}
        for cidr, description in rule["cidrs"]:
            if ":" in cidr:
                permissions.append({**base, "Ipv6Ranges": [_described("CidrIpv6", cidr, description)]})
            else:
                permissions.append({**base, "IpRanges": [_described("CidrIp", cidr, description)]})
        for group, description in rule["groups"]:
            permissions.append({**base, "UserIdGroupPairs": [_described("GroupId", group_id(group), description)]})
        for prefix_list, description in rule.get("prefix_lists", []):
            permissions.append({**base, "PrefixListIds": [_described("PrefixListId", prefix_list, description)]})
    return permissions


def _discovered_subnets(ec2, vpc_id: str, scheme: str) -> list:
    """Upstream's subnet discovery: the VPC's subnets tagged for the scheme's role, the lowest ID
    in each zone, sorted by ID."""
    role = "kubernetes.io/role/elb" if scheme == "internet-facing" else "kubernetes.io/role/internal-elb"
    subnets = _pages(ec2, "describe_subnets", "Subnets", Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": f"tag:{role}", "Values": ["", "1"]},
    ])
    by_zone = {}
    for subnet in sorted(subnets, key=lambda s: s["SubnetId"]):
        by_zone.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    return sorted(by_zone.values())


def _changed(defaults: dict, wanted: dict) -> list:
    """The attributes to modify: upstream sends only those it wants that differ, sorted by key."""
    return [{"Key": key, "Value": value} for key, value in sorted(wanted.items()) if defaults.get(key) != value]


def _stack_tags(tags: dict) -> tuple[str, dict]:
    """(tag prefix, the stack's tracking tags) of a load balancer's tags."""
    for prefix in STACK_PREFIXES:
        if f"{prefix}/stack" in tags:
            return prefix, {CLUSTER_TAG: tags[CLUSTER_TAG], f"{prefix}/stack": tags[f"{prefix}/stack"]}
    raise ValueError(f"load balancer tags {tags} name no stack")


def _replay_security_groups(ec2, vpc_id: str, footprint: dict, name) -> tuple[dict, dict]:
    """(created: name -> ID, every group of the VPC: name -> ID). Rules go in once every group
    exists, as one may name another."""
    created = {}
    for group in footprint["security_groups"]:
        if group["name"] == "default":
            continue
        request = {"GroupName": name(group["name"]), "Description": group["description"], "VpcId": vpc_id}
        if group["tags"]:
            request["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": _tag_list(group["tags"])}]
        created[request["GroupName"]] = ec2.create_security_group(**request)["GroupId"]
    group_ids = {group["GroupName"]: group["GroupId"] for group in _vpc_groups(ec2, vpc_id)}
    for group in footprint["security_groups"]:
        if group["name"] != "default" and group["ingress"]:
            ec2.authorize_security_group_ingress(
                GroupId=group_ids[name(group["name"])],
                IpPermissions=replay_permissions(group["ingress"], lambda source: group_ids.get(name(source), source)),
            )
    return created, group_ids


RULE_LABEL = "elbv2.k8s.aws/targetGroupBinding=shared"
BACKEND_RESOURCE = ("elbv2.k8s.aws/resource", "backend-sg")


def upstream_target_rules(footprint: dict) -> list:
    """Upstream's restricted rules on the targets' group for this footprint: (protocol, from, to)
    from the backend group."""
    ports: dict[str, list[int]] = {}
    for group in footprint["target_groups"]:
        protocols = {"UDP": ["udp"], "TCP_UDP": ["tcp", "udp"]}.get(group["Protocol"], ["tcp"])
        numbers = [int(group["Port"])]
        if str(group.get("HealthCheckPort", "")).isdigit():
            numbers.append(int(group["HealthCheckPort"]))
        for protocol in protocols:
            ports.setdefault(protocol, []).extend(numbers)
    return [(protocol, min(numbers), max(numbers)) for protocol, numbers in sorted(ports.items())]


def _replay_target_rules(ec2, vpc_id: str, config: dict, footprint: dict, group_ids: dict, name):
    backend = [g for g in footprint["security_groups"]
               if g["tags"].get(BACKEND_RESOURCE[0]) == BACKEND_RESOURCE[1]]
    if not backend:
        return
    cluster_groups = [g for g in _vpc_groups(ec2, vpc_id)
                      if {t["Key"]: t["Value"] for t in g.get("Tags", [])}.get(EKS_CLUSTER_TAG) == config["cluster_name"]]
    source = group_ids[name(backend[0]["name"])]
    permissions = [
        {"IpProtocol": protocol, "FromPort": low, "ToPort": high,
         "UserIdGroupPairs": [{"GroupId": source, "Description": RULE_LABEL}]}
        for protocol, low, high in upstream_target_rules(footprint)
    ]
    for group in cluster_groups:
        if permissions:
            ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=permissions)


def _replay_target_groups(elb, vpc_id: str, footprint: dict, name) -> dict:
    """Footprint name -> ARN of each group created, with its attributes."""
    arns = {}
    for group in footprint["target_groups"]:
        request = {
            "Name": name(group["name"]),
            "Protocol": group["Protocol"],
            "Port": group["Port"],
            "VpcId": vpc_id,
            "TargetType": group["TargetType"],
            "HealthCheckEnabled": True,
            "HealthCheckProtocol": group["HealthCheckProtocol"],
            "HealthCheckPort": group["HealthCheckPort"],
            "HealthCheckIntervalSeconds": group["HealthCheckIntervalSeconds"],
            "HealthCheckTimeoutSeconds": group["HealthCheckTimeoutSeconds"],
            "HealthyThresholdCount": group["HealthyThresholdCount"],
            "UnhealthyThresholdCount": group["UnhealthyThresholdCount"],
            "Tags": _tag_list(group["tags"]),
        }
        request.update({key: group[key] for key in ("ProtocolVersion", "Matcher") if key in group})
        if group["HealthCheckProtocol"] in ("HTTP", "HTTPS"):
            request["HealthCheckPath"] = group["HealthCheckPath"]
        if group["IpAddressType"] != "ipv4":
            request["IpAddressType"] = group["IpAddressType"]
        arn = elb.create_target_group(**request)["TargetGroups"][0]["TargetGroupArn"]
        changes = _changed(_attribute_dict(elb.describe_target_group_attributes(TargetGroupArn=arn)), group["attributes"])
        if changes:
            elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=changes)
        arns[group["name"]] = arn
    return arns


def _replay_listeners(elb, balancer: dict, arn: str, target_group_arns: dict):
    """The load balancer's listeners and rules, each tagged with the stack's tracking tags and its
    resource ID, as upstream tags them (ListenerRulesTagging is on)."""
    prefix, stack = _stack_tags(balancer["tags"])
    for listener in balancer["listeners"]:
        port = listener["port"]
        request = {
            "LoadBalancerArn": arn,
            "Protocol": listener["protocol"],
            "Port": port,
            "DefaultActions": replay_actions(listener["default_actions"], target_group_arns),
            "Tags": _tag_list({**stack, f"{prefix}/resource": str(port)}),
        }
        if listener["protocol"] in ("HTTPS", "TLS"):
            request["SslPolicy"] = listener["ssl_policy"]
        listener_arn = elb.create_listener(**request)["Listeners"][0]["ListenerArn"]
        for rule in listener["rules"]:
            priority = rule["priority"]
            elb.create_rule(
                ListenerArn=listener_arn,
                Priority=int(priority),
                Conditions=[{key: value for key, value in c.items() if key != "Values"} for c in rule["conditions"]],
                Actions=replay_actions(rule["actions"], target_group_arns),
                Tags=_tag_list({**stack, f"{prefix}/resource": f"{port}:{priority}"}),
            )


def replay(endpoint: str, config: dict, vpc_id: str, footprint: dict, renames: dict) -> dict:
    """Creates what `footprint` (as `dump` answers it) holds in VPC `vpc_id`, each name through
    `renames` (names that hash a Kubernetes UID differ per cluster). Answers the security groups,
    target groups and load balancers created: their names -> IDs and ARNs."""
    ec2, elb = _clients(endpoint, config)

    def name(footprint_name: str) -> str:
        return renames.get(footprint_name, footprint_name)

    created_groups, group_ids = _replay_security_groups(ec2, vpc_id, footprint, name)
    target_group_arns = _replay_target_groups(elb, vpc_id, footprint, name)
    _replay_target_rules(ec2, vpc_id, config, footprint, group_ids, name)
    created = {
        "security_groups": created_groups,
        "target_groups": {name(n): arn for n, arn in target_group_arns.items()},
        "load_balancers": {},
    }
    for balancer in footprint["load_balancers"]:
        request = {
            "Name": name(balancer["name"]),
            "Type": balancer["type"],
            "Scheme": balancer["scheme"],
            "IpAddressType": balancer["ip_address_type"],
            "Subnets": _discovered_subnets(ec2, vpc_id, balancer["scheme"]),
            "Tags": _tag_list(balancer["tags"]),
        }
        if balancer["security_groups"]:
            request["SecurityGroups"] = [group_ids[name(group)] for group in balancer["security_groups"]]
        arn = elb.create_load_balancer(**request)["LoadBalancers"][0]["LoadBalancerArn"]
        created["load_balancers"][request["Name"]] = arn
        changes = _changed(_attribute_dict(elb.describe_load_balancer_attributes(LoadBalancerArn=arn)),
                           balancer["attributes"])
        if changes:
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=changes)
        _replay_listeners(elb, balancer, arn, target_group_arns)
    return created
