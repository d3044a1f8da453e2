"""Where moto's ELBv2 differs from ELB in ways the controller depends on, follow ELB.

RegisterTargets, DeregisterTargets and DescribeTargetHealth go to the TargetRegistry: targets
are keyed by (Id, Port), health comes from real checks, deregistered targets drain. moto keeps
its own per-Id view too (it checks instances exist and are running), which nothing reads.

Which load balancers use a target group follows every listener and rule change (moto only adds
on create): a group a modified listener now forwards to is in use (its targets get checked), one
no listener or rule forwards to any more is not.

Throttling: with a rate set (`Throttle`, through the control API), RegisterTargets,
DeregisterTargets and DescribeTargetHealth beyond it are answered `Throttling: Rate exceeded`, as
ELB answers a caller over its API rate.

Rules and certificates: path-pattern conditions may be regular expressions (RegexValues);
SetRulePriorities is one change, so rules may swap priorities; a listener's certificate list
keeps its SNI certificates when the default one changes, and DescribeListeners shows the default
one alone.
"""

import ipaddress
import re
import threading
import time

from moto.elbv2 import models, responses
from moto.elbv2.exceptions import (DuplicatePriorityError, ELBClientError, InvalidConditionValueError,
                                   InvalidTargetError, PriorityInUseError, TargetGroupNotFoundError)
from moto.elbv2.models import FakeHealthStatus


class RegisterValidationError(Exception):
    pass


class Throttle:
    """A token bucket over the target calls: `per_second` calls a second with a burst of as many
    (at least one); None lets every call through. Counts the calls it refused."""

    def __init__(self):
        self.lock = threading.Lock()
        self.per_second = None
        self.tokens = 0.0
        self.last = time.monotonic()
        self.refused = 0

    def set(self, per_second):
        with self.lock:
            self.per_second = per_second if per_second and per_second > 0 else None
            self.tokens = self.burst()
            self.last = time.monotonic()
            return {"per_second": self.per_second, "refused": self.refused}

    def burst(self):
        return max(1.0, self.per_second or 0.0)

    def take(self):
        with self.lock:
            if self.per_second is None:
                return
            now = time.monotonic()
            self.tokens = min(self.burst(), self.tokens + (now - self.last) * self.per_second)
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            self.refused += 1
        raise ELBClientError("Throttling", "Rate exceeded")


def _group(backend, arn):
    group = backend.target_groups.get(arn)
    if group is None:
        raise TargetGroupNotFoundError()
    return group


def _keys(group, targets) -> list[tuple[str, int]]:
    keys = []
    for target in targets:
        port = target.get("Port") or group.port
        keys.append((str(target["Id"]), int(port)))
    return keys


def _check_ip_targets(backend, group, keys) -> None:
    """ELB accepts ip targets only inside the target group's VPC."""
    if group.target_type != "ip":
        return
    vpc = backend.ec2_backend.get_vpc(group.vpc_id)
    networks = [ipaddress.ip_network(block["cidr_block"]) for block in vpc.get_cidr_block_association_set()]
    for target_id, _ in keys:
        try:
            address = ipaddress.ip_address(target_id)
        except ValueError:
            raise InvalidTargetError()
        if not any(address in network for network in networks):
            raise InvalidTargetError()


def _forwarded_groups(actions) -> set:
    arns = set()
    for action in actions or []:
        data = getattr(action, "data", action) or {}
        if data.get("TargetGroupArn"):
            arns.add(data["TargetGroupArn"])
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if group.get("TargetGroupArn"):
                arns.add(group["TargetGroupArn"])
    return arns


def refresh_attachments(backend) -> None:
    """Each target group's load balancers: those with a listener or rule forwarding to it."""
    users = {}
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            actions = list(listener.default_actions)
            for rule in listener.rules.values():
                actions.extend(rule.actions)
            for arn in _forwarded_groups(actions):
                users.setdefault(arn, set()).add(balancer.arn)
    for arn, group in backend.target_groups.items():
        group.load_balancer_arns = sorted(users.get(arn, ()))


def _refreshing(original):
    def call(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        refresh_attachments(self)
        return result

    return call


def _accepting_regex_paths(original):
    """ELB takes PathPatternConfig with RegexValues instead of Values (moto reads Values alone: a
    KeyError, so an internal error); each must be a valid expression of at most 128 characters."""

    def call(self, condition):
        regexes = (condition.get("PathPatternConfig") or {}).get("RegexValues")
        if regexes is None:
            return original(self, condition)
        if condition.get("Values") or condition["PathPatternConfig"].get("Values"):
            raise InvalidConditionValueError("You cannot provide both Values and RegexValues for 'path-pattern'")
        if not regexes:
            raise InvalidConditionValueError("A condition value must be specified")
        for regex in regexes:
            if len(regex) > 128:
                raise InvalidConditionValueError("The 'path-pattern' value is too long; the limit is '128'")
            try:
                re.compile(regex)
            except re.error as err:
                raise InvalidConditionValueError(f"The 'path-pattern' regular expression '{regex}' is invalid: {err}")

    return call


def set_rule_priorities(self, rule_priorities):
    """ELB applies the set as one change: only the priorities the listener's rules hold afterwards
    must be distinct, so two rules may swap (moto checks each new priority against the old ones,
    so a swap, or a rule keeping its own priority, is PriorityInUse)."""
    wanted = [int(pair["Priority"]) for pair in rule_priorities]
    for priority in wanted:
        if wanted.count(priority) > 1:
            raise DuplicatePriorityError(str(priority))
    rules = [self.describe_rules(listener_arn=None, rule_arns=[pair["RuleArn"]])[0] for pair in rule_priorities]
    moved = {rule.arn: priority for rule, priority in zip(rules, wanted)}
    for listener_arn in {rule.listener_arn for rule in rules}:
        listener = self.describe_listeners(None, [listener_arn])[0]
        after = [int(moved.get(r.arn, r.priority)) for r in listener.rules.values() if not r.is_default]
        if len(after) != len(set(after)):
            raise PriorityInUseError()
    for rule, priority in zip(rules, wanted):
        rule.priority = priority
    return rules


def _keeping_sni_certificates(original):
    """ModifyListener's Certificates names the default certificate: ELB keeps the listener's other
    (SNI) certificates, moto replaces the whole list with it."""

    def call(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, actions=None):
        others = self.describe_listeners(None, [arn])[0].certificates[1:]
        listener = original(self, arn, port, protocol, ssl_policy, certificates, actions)
        if certificates:
            listener.certificates = [certificates[0]["CertificateArn"], *others]
        return listener

    return call


def _default_certificate_only(data):
    """A listener as ELB describes it names its default certificate alone (the others are
    DescribeListenerCertificates'); moto lists them all."""
    return responses.transform_certificates(data[:1])


def install(registry, throttle) -> None:
    def register_targets(self, target_group_arn, instances):
        throttle.take()
        group = _group(self, target_group_arn)
        keys = _keys(group, instances)
        _check_ip_targets(self, group, keys)
        # moto's own checks (instances exist and are running), and its per-Id view.
        group.register([{"Id": i, "Port": p} for i, p in keys])
        registry.register(group, keys)

    def deregister_targets(self, target_group_arn, instances):
        throttle.take()
        group = _group(self, target_group_arn)
        keys = _keys(group, instances)
        for target_id, _ in keys:
            group.targets.pop(target_id, None)
        registry.deregister(group, keys)

    def describe_target_health(self, target_group_arn, targets):
        throttle.take()
        group = _group(self, target_group_arn)
        wanted = _keys(group, targets) if targets else None
        health_port = group.health_check_port
        return [
            FakeHealthStatus(
                t.id,
                str(t.port),
                str(t.port) if health_port in (None, "", "traffic-port") else str(health_port),
                t.state,
                t.reason,
                t.description,
            )
            for t in registry.describe(group, wanted)
        ]

    models.ELBv2Backend.register_targets = register_targets
    models.ELBv2Backend.deregister_targets = deregister_targets
    models.ELBv2Backend.describe_target_health = describe_target_health
    models.ELBv2Backend._validate_path_pattern_condition = _accepting_regex_paths(
        models.ELBv2Backend._validate_path_pattern_condition
    )
    models.ELBv2Backend.set_rule_priorities = set_rule_priorities
    models.ELBv2Backend.modify_listener = _keeping_sni_certificates(models.ELBv2Backend.modify_listener)
    transformers = responses.ELBV2Response.RESPONSE_KEY_PATH_TO_TRANSFORMER
    for output in ("DescribeListenersOutput", "ModifyListenerOutput"):
        transformers[f"{output}.Listeners.Listener.Certificates"] = _default_certificate_only
    for name in ("modify_listener", "delete_listener", "create_rule", "modify_rule", "delete_rule"):
        setattr(models.ELBv2Backend, name, _refreshing(getattr(models.ELBv2Backend, name)))
