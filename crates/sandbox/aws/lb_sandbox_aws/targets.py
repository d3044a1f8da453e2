"""Targets of target groups, keyed by (Id, Port) as ELB keys them, with real health checks.

A registered target is `initial` (Elb.RegistrationInProgress) until HealthyThresholdCount
consecutive checks pass, one every HealthCheckIntervalSeconds, then `healthy`; it turns
`unhealthy` after UnhealthyThresholdCount consecutive failures, with ELB's reason code. A
deregistered target is `draining` for the group's deregistration delay, then gone. A target group
no load balancer uses has `unused` targets (Target.NotInUse) and runs no checks, as in ELB.

Routing lag: a real load balancer's nodes learn of a state change a little later than the API
reports it, so a deregistered target still gets new requests for a moment and a new healthy one
gets none yet. `routing_lag` (seconds, 0 by default, set through the control API) makes the data
plane route by each target's state as it was that long ago.

Security groups: a check the target's security groups drop (see network.py) waits out its
timeout and fails as ELB reports it: `Target.Timeout` for HTTP(S) checks, `Target.FailedHealthChecks`
for TCP ones. The target's `blocked` field says why, for tests and the demo.

Writers are moto's request threads (register, deregister) and the checker tasks on the asyncio
loop; one lock guards the table. Every state change is kept in the target's timeline.
"""

import asyncio
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field

from moto.elbv2.models import elbv2_backends

from . import httpwire

INITIAL = "initial"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"
UNUSED = "unused"
UNAVAILABLE = "unavailable"

REGISTRATION_IN_PROGRESS = ("Elb.RegistrationInProgress", "Target registration is in progress")
DEREGISTRATION_IN_PROGRESS = ("Target.DeregistrationInProgress", "Target deregistration is in progress")
NOT_IN_USE = ("Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
NOT_REGISTERED = ("Target.NotRegistered", "Target is not registered to the target group")
HEALTH_CHECK_DISABLED = ("Target.HealthCheckDisabled", "Health checks are disabled")
TIMEOUT = ("Target.Timeout", "Request timed out")
FAILED = ("Target.FailedHealthChecks", "Health checks failed")


@dataclass
class Target:
    group_arn: str
    id: str
    port: int
    state: str = ""
    reason: str | None = REGISTRATION_IN_PROGRESS[0]
    description: str | None = REGISTRATION_IN_PROGRESS[1]
    successes: int = 0
    failures: int = 0
    generation: int = 0
    timeline: list = field(default_factory=list)
    checks: int = 0
    # Failed checks by reason code: one failure short of the threshold changes no state, so
    # the timeline alone would not show it (a starved checker's timeouts, say).
    failed_checks: dict = field(default_factory=dict)
    # Why the last check was dropped by a security group (None: it was not).
    blocked: str | None = None

    def state_at(self, moment: float) -> str | None:
        """The state the target was in at `moment` (None: not registered yet)."""
        state = None
        for event in self.timeline:
            if event["at"] > moment:
                break
            state = event["state"]
        return state

    def set_state(self, state: str, reason: tuple[str, str] | None) -> None:
        changed = state != self.state or (reason and reason[0] != self.reason)
        self.state = state
        self.reason, self.description = reason if reason else (None, None)
        if changed:
            self.timeline.append({"at": time.time(), "state": state, "reason": self.reason})


def matcher_accepts(matcher: str, status: int) -> bool:
    """ELB matchers: "200", "200-399", "200,302", or a mix."""
    for part in matcher.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= status <= int(high):
                return True
        elif part and int(part) == status:
            return True
    return False


class TargetRegistry:
    def __init__(self, loop: asyncio.AbstractEventLoop, guard, elbv2_backend, ec2_backend, network):
        self.loop = loop
        self.network = network
        self.guard = guard
        self.elbv2 = elbv2_backend
        self.ec2 = ec2_backend
        self.lock = threading.RLock()
        self.targets: dict[tuple[str, str, int], Target] = {}
        self.round_robin: dict[str, int] = {}
        self.routing_lag = 0.0

    # Called from moto's request threads -------------------------------------------------------

    def register(self, group, targets: list[tuple[str, int]]) -> None:
        with self.lock:
            for target_id, port in targets:
                key = (group.arn, target_id, port)
                existing = self.targets.get(key)
                if existing is not None and existing.state != DRAINING:
                    continue  # Registering a registered target again changes nothing.
                target = existing or Target(group.arn, target_id, port)
                target.generation += 1
                target.successes = target.failures = 0
                target.set_state(INITIAL, REGISTRATION_IN_PROGRESS)
                self.targets[key] = target
                asyncio.run_coroutine_threadsafe(self._check_loop(target, target.generation), self.loop)

    def deregister(self, group, targets: list[tuple[str, int]]) -> None:
        delay = float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
        with self.lock:
            for target_id, port in targets:
                target = self.targets.get((group.arn, target_id, port))
                if target is None or target.state == DRAINING:
                    continue
                target.generation += 1  # Stops its health checks.
                target.set_state(DRAINING, DEREGISTRATION_IN_PROGRESS)
                generation = target.generation
                self.loop.call_soon_threadsafe(
                    self.loop.call_later, delay, self._forget, target, generation
                )

    def describe(self, group, wanted: list[tuple[str, int]] | None) -> list[Target]:
        with self.lock:
            if not wanted:
                return [t for (arn, _, _), t in self.targets.items() if arn == group.arn]
            found = []
            for target_id, port in wanted:
                target = self.targets.get((group.arn, target_id, port))
                if target is None:
                    target = Target(group.arn, target_id, port)
                    target.set_state(UNUSED, NOT_REGISTERED)
                found.append(target)
            return found

    # Called from the data plane and the control API (on the loop) ----------------------------

    def timeline(self, group_arn: str) -> list[dict]:
        with self.lock:
            return [
                {
                    "id": t.id,
                    "port": t.port,
                    "state": t.state,
                    "reason": t.reason,
                    "checks": t.checks,
                    "failed_checks": dict(t.failed_checks),
                    "blocked": t.blocked,
                    "timeline": list(t.timeline),
                }
                for (arn, _, _), t in self.targets.items()
                if arn == group_arn
            ]

    def pick(self, group_arn: str) -> Target | None:
        """The next target for a new request: healthy ones round robin; if none is healthy but
        some are unhealthy, those (ELB fails open); never initial, unused or draining ones. States
        are read `routing_lag` seconds in the past."""
        with self.lock:
            moment = time.time() - self.routing_lag
            candidates = [
                (t, t.state if self.routing_lag <= 0 else t.state_at(moment))
                for (arn, _, _), t in self.targets.items()
                if arn == group_arn
            ]
            healthy = [t for t, state in candidates if state == HEALTHY]
            pool = healthy or [t for t, state in candidates if state == UNHEALTHY]
            if not pool:
                return None
            index = self.round_robin.get(group_arn, 0)
            self.round_robin[group_arn] = index + 1
            return pool[index % len(pool)]

    def group(self, arn: str):
        """The target group `arn`, in the account and region its ARN names (a cross-account
        binding's target group lives in another account than the cluster's)."""
        group = self.elbv2.target_groups.get(arn)
        if group is not None:
            return group
        parts = arn.split(":")
        if len(parts) < 6:
            return None
        region, account = parts[3], parts[4]
        return elbv2_backends[account][region].target_groups.get(arn)

    def address_of(self, group, target: Target) -> str | None:
        """The IP a target is reached at: itself for ip targets, the instance's private IP."""
        if group.target_type == "ip":
            return target.id
        instance = self.ec2.get_instance_by_id(target.id) if target.id.startswith("i-") else None
        return getattr(instance, "private_ip", None) if instance else None

    # The checker ------------------------------------------------------------------------------

    def _forget(self, target: Target, generation: int) -> None:
        with self.lock:
            if target.generation == generation:
                self.targets.pop((target.group_arn, target.id, target.port), None)

    async def _check_loop(self, target: Target, generation: int) -> None:
        while True:
            group = self.group(target.group_arn)
            if group is None:
                self._forget(target, generation)
                return
            await asyncio.sleep(float(group.health_check_interval_seconds))
            with self.lock:
                if target.generation != generation:
                    return
            group = self.group(target.group_arn)
            if group is None:
                self._forget(target, generation)
                return
            if not group.load_balancer_arns:
                with self.lock:
                    if target.generation == generation:
                        target.successes = target.failures = 0
                        target.set_state(UNUSED, NOT_IN_USE)
                continue
            if not group.health_check_enabled:
                with self.lock:
                    if target.generation == generation:
                        target.set_state(UNAVAILABLE, HEALTH_CHECK_DISABLED)
                continue
            with self.lock:
                if target.state in (UNUSED, UNAVAILABLE):
                    target.successes = target.failures = 0
                    target.set_state(INITIAL, REGISTRATION_IN_PROGRESS)
            ok, reason = await self._check_once(group, target)
            with self.lock:
                if target.generation != generation:
                    return
                self._record(group, target, ok, reason)

    def _record(self, group, target: Target, ok: bool, reason) -> None:
        target.checks += 1
        if ok:
            target.successes += 1
            target.failures = 0
        else:
            target.failures += 1
            target.successes = 0
            code = reason[0] if reason else "unknown"
            target.failed_checks[code] = target.failed_checks.get(code, 0) + 1
        healthy_threshold = int(group.healthy_threshold_count)
        unhealthy_threshold = int(group.unhealthy_threshold_count)
        if ok and target.state in (INITIAL, UNHEALTHY) and target.successes >= healthy_threshold:
            target.set_state(HEALTHY, None)
        elif not ok and target.state in (INITIAL, HEALTHY) and target.failures >= unhealthy_threshold:
            target.set_state(UNHEALTHY, reason)
        elif not ok and target.state == UNHEALTHY:
            target.set_state(UNHEALTHY, reason)

    async def _check_once(self, group, target: Target):
        host = self.address_of(group, target)
        if host is None or not self.guard.allows(host):
            return False, (FAILED[0], f"sandbox guard refused the destination {host}")
        port_setting = group.health_check_port
        port = target.port if port_setting in (None, "", "traffic-port") else int(port_setting)
        timeout = float(group.health_check_timeout_seconds)
        protocol = (group.health_check_protocol or "HTTP").upper()
        target.blocked = self.network.target_blocked(group, target.id, port, traffic=False)
        if target.blocked:
            # Dropped packets: nothing answers, the check waits out its timeout.
            await asyncio.sleep(timeout)
            return False, (TIMEOUT if protocol in ("HTTP", "HTTPS") else FAILED)
        try:
            if protocol in ("HTTP", "HTTPS"):
                status = await asyncio.wait_for(
                    http_get_status(host, port, group.health_check_path or "/", protocol == "HTTPS"),
                    timeout,
                )
                codes = (getattr(group, "matcher", None) or {}).get("HttpCode", "200")
                if matcher_accepts(codes, status):
                    return True, None
                return False, ("Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]")
            reader_writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            reader_writer[1].close()
            return True, None
        except asyncio.TimeoutError:
            return False, TIMEOUT
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            return False, FAILED


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


async def http_get_status(host: str, port: int, path: str, tls: bool) -> int:
    reader, writer = await asyncio.open_connection(host, port, ssl=_INSECURE if tls else None)
    try:
        host_header = f"{host}:{port}" if ipaddress.ip_address(host).version == 4 else f"[{host}]:{port}"
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: ELB-HealthChecker/2.0\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        head = await httpwire.read_head(reader)
        if head is None:
            raise ConnectionResetError("no response")
        return httpwire.status_of(head)[0]
    finally:
        writer.close()
