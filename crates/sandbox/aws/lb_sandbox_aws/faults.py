"""Faults of the AWS API, injected on demand (the control API's /faults), for the fault matrix.

Every request to the emulator's endpoint passes through `FaultingApp`, a WSGI layer in front of
moto. It names the call `service:Operation` (the service from the SigV4 credential scope, the
operation from `Action=` or `X-Amz-Target`) and applies the first rule that matches:

  throttle  answered as AWS answers a caller over its rate, the work not done: ELB and STS
            `Throttling: Rate exceeded` (400), EC2 `RequestLimitExceeded` (503), ACM
            `ThrottlingException` (400)
  error     a server error, the work not done: `InternalFailure` (500; ACM `InternalFailureException`)
  latency   the call waits `seconds` first, then runs
  lose      the call runs (the work is done) but its answer never arrives: the connection is held
            for `seconds` (beyond the client's attempt timeout), then closed without a response
  pause     after the call has run and answered, the whole endpoint pauses (the harness kills the
            controller at that point, then resumes)

A rule applies to a `share` of its matching calls (a seeded generator: runs repeat), at most
`times` times when given. `operation` is `service:Operation`, `service:*`, `*:Operation` or `*`;
`mutating` true limits it to calls that change something (not Describe*/List*/Get*). While paused,
every call waits (the whole endpoint stops answering, as in an outage) until resumed.
Calls the sandbox makes itself (seeding, the control API's footprint) pass untouched: they sign
with their own access key.
"""

import io
import random
import socket
import threading
import time
from urllib.parse import parse_qs

EXEMPT_ACCESS_KEY = "sandbox-internal"
KINDS = ("throttle", "error", "latency", "lose", "pause")
READ_PREFIXES = ("Describe", "List", "Get")


class Rule:
    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise ValueError(f"a rule is an object, not {spec!r}")
        self.operation = str(spec.get("operation", "*"))
        self.kind = spec.get("kind")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is none of {', '.join(KINDS)}")
        self.share = float(spec.get("share", 1.0))
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share {self.share} is outside 0..1")
        times = spec.get("times")
        self.times = None if times is None else int(times)
        self.seconds = float(spec.get("seconds", 12.0 if self.kind == "lose" else 1.0))
        if not 0.0 <= self.seconds <= 600.0:
            raise ValueError(f"seconds {self.seconds} is outside 0..600")
        self.mutating = bool(spec.get("mutating", False))
        self.injected = 0

    def matches(self, call: str) -> bool:
        service, _, operation = call.partition(":")
        if self.mutating and operation.startswith(READ_PREFIXES):
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        want_service, _, want_operation = self.operation.partition(":")
        if self.operation == "*":
            return True
        return want_service in ("*", service) and want_operation in ("*", operation)

    def describe(self) -> dict:
        return {"operation": self.operation, "kind": self.kind, "share": self.share, "times": self.times,
                "seconds": self.seconds, "mutating": self.mutating, "injected": self.injected}


class Faults:
    """The rules in force, the pause, and what each call met."""

    def __init__(self, seed: int = 31):
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.rules: list[Rule] = []
        self.running = threading.Event()
        self.running.set()
        # Calls by name: [calls, injected]; mutating calls in order, with what they met.
        self.calls: dict[str, list[int]] = {}
        self.log: list[tuple[float, str, str]] = []

    def set(self, specs: list, seed: int | None = None) -> dict:
        rules = [Rule(spec) for spec in specs]
        with self.lock:
            self.rules = rules
            if seed is not None:
                self.random = random.Random(seed)
        return self.state()

    def pause(self, on: bool) -> dict:
        if on:
            self.running.clear()
        else:
            self.running.set()
        return self.state()

    def state(self) -> dict:
        with self.lock:
            return {
                "paused": not self.running.is_set(),
                "rules": [rule.describe() for rule in self.rules],
                "calls": {name: {"calls": c, "injected": i} for name, (c, i) in sorted(self.calls.items())},
                "mutating": [{"at": at, "arrived": arrived, "call": call, "met": met}
                             for at, arrived, call, met in self.log],
            }

    def reset_counts(self) -> dict:
        with self.lock:
            self.calls.clear()
            self.log.clear()
        return self.state()

    def pick(self, call: str, arrived: float) -> Rule | None:
        """The rule this call meets (counted), if any. `arrived`: when the request came, which
        is earlier than now when it waited out a pause."""
        with self.lock:
            counts = self.calls.setdefault(call, [0, 0])
            counts[0] += 1
            chosen = None
            for rule in self.rules:
                if rule.matches(call) and (rule.share >= 1.0 or self.random.random() < rule.share):
                    rule.injected += 1
                    counts[1] += 1
                    chosen = rule
                    break
            if not call.partition(":")[2].startswith(READ_PREFIXES):
                self.log.append((time.time(), arrived, call, chosen.kind if chosen else "ok"))
                del self.log[:-2000]
            return chosen


def call_name(environ: dict, body: bytes) -> tuple[str, str]:
    """`service:Operation` of a request, and the access key that signed it."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
    access_key = scope[0] if scope else ""
    service = scope[3] if len(scope) > 3 else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.rpartition(".")[2]
    else:
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if not params.get("Action"):
            params = parse_qs(body.decode("utf-8", "replace"))
        operation = (params.get("Action") or ["Unknown"])[0]
    return f"{service}:{operation}", access_key


def _error_answer(call: str, kind: str) -> tuple[str, list, bytes]:
    service = call.partition(":")[0]
    if service == "acm":
        code = "ThrottlingException" if kind == "throttle" else "InternalFailureException"
        body = ('{"__type":"%s","message":"%s"}' % (code, "Rate exceeded" if kind == "throttle" else "injected"))
        status = "400 Bad Request" if kind == "throttle" else "500 Internal Server Error"
        return status, [("Content-Type", "application/x-amz-json-1.1")], body.encode()
    if service == "ec2":
        code, message = ("RequestLimitExceeded", "Request limit exceeded.") if kind == "throttle" \
            else ("InternalError", "An internal error has occurred")
        status = "503 Service Unavailable" if kind == "throttle" else "500 Internal Server Error"
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>")
        return status, [("Content-Type", "text/xml")], body.encode()
    code, kind_of, message = ("Throttling", "Sender", "Rate exceeded") if kind == "throttle" \
        else ("InternalFailure", "Receiver", "injected")
    status = "400 Bad Request" if kind == "throttle" else "500 Internal Server Error"
    body = (f"<ErrorResponse><Error><Type>{kind_of}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>fault</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml")], body.encode()


class FaultingApp:
    """WSGI: moto's application behind the fault rules."""

    def __init__(self, app, faults: Faults):
        self.app = app
        self.faults = faults

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call, access_key = call_name(environ, body)
        if access_key == EXEMPT_ACCESS_KEY:
            return self.app(environ, start_response)
        arrived = time.time()
        self.faults.running.wait()
        rule = self.faults.pick(call, arrived)
        if rule is None:
            return self.app(environ, start_response)
        if rule.kind in ("throttle", "error"):
            status, headers, answer = _error_answer(call, rule.kind)
            start_response(status, headers + [("Content-Length", str(len(answer)))])
            return [answer]
        if rule.kind == "latency":
            time.sleep(rule.seconds)
            return self.app(environ, start_response)
        # The work is done either way: run moto to the end of its answer.
        captured = {}
        answer = b"".join(self.app(environ, lambda status, headers, exc_info=None: captured.update(
            status=status, headers=headers)))
        if rule.kind == "pause":
            self.faults.running.clear()
            start_response(captured["status"], captured["headers"])
            return [answer]
        # lose: hold the connection past the client's timeout, then close it unanswered.
        time.sleep(rule.seconds)
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return [b""]
