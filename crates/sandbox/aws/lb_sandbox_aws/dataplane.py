"""A data plane for the emulated load balancers: every listener gets a local listener on a loopback
port that carries traffic as the load balancer would.

ALB (HTTP, HTTPS): rules by priority with path-pattern (wildcards or regular expressions),
host-header, http-request-method, http-header, query-string and source-ip conditions; forward
(weighted target groups), fixed-response and redirect actions. Forward goes round robin to
healthy targets; with none healthy but some unhealthy it fails open to those; with neither it
answers 503. A target that refuses or resets gives 502, one that does not answer within the idle
timeout 504. initial, unused and draining targets get no new requests; requests in flight to a
draining target finish.

NLB (TCP, TLS): each connection goes to a target picked the same way and is relayed both ways;
with no target the connection is closed at once.

HTTPS and TLS listeners terminate TLS as ELB does, with the key and certificate (and chain) from
ACM: the certificate the client's SNI names among the listener's certificates (the default one and
those added with AddListenerCertificates), else the default one. Each handshake reads the
listener's current list, so certificate changes take effect at once; a listener whose protocol or
port changes gets a new local server on the same loopback port. Targets get plain HTTP or TCP.

Security groups (network.py): a client the load balancer's groups do not admit is dropped at
the listener (the connection is accepted locally but never answered, and closed after
DROPPED_HOLD; counted `dropped`); a request to a target whose groups do not admit the load
balancer waits CONNECT_TIMEOUT and gets 504 (NLB: the connection is closed).

Counts per listener: HTTP responses by status code; TCP connections by outcome.
"""

import asyncio
import ipaddress
import os
import random
import re
import ssl
import tempfile
import time
from collections import Counter, deque

from moto.acm.exceptions import CertificateNotFound
from moto.acm.models import acm_backends

from . import httpwire

REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request", 404: "Not Found",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
              "te", "trailer", "upgrade"}
CONNECT_TIMEOUT = 10.0
DROPPED_HOLD = 30.0
PLACEHOLDER = re.compile(r"#\{(protocol|host|port|path|query)\}")


def wildcard(pattern: str, text: str, case_sensitive: bool) -> bool:
    """ALB condition values: `*` matches any run of characters, `?` exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, text, flags) is not None


def condition_values(condition: dict, config_key: str) -> list:
    return condition.get("Values") or (condition.get(config_key) or {}).get("Values") or []


def hostname(host: str) -> str:
    """The Host header without its port (an IPv6 literal keeps its brackets)."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def path_matches(condition: dict, path: str) -> bool:
    """Wildcard patterns, or PathPatternConfig's RegexValues: regular expressions searched for in
    the path (re.search, so unanchored unless the expression anchors itself with ^ and $; ELB's
    documentation does not say it anchors them). Both case-sensitive, the query string apart."""
    regexes = (condition.get("PathPatternConfig") or {}).get("RegexValues")
    if regexes:
        return any(re.search(regex, path) for regex in regexes)
    return any(wildcard(v, path, True) for v in condition_values(condition, "PathPatternConfig"))


def source_ip_matches(blocks: list, source: str) -> bool:
    """The connection's peer address in one of the CIDR blocks; as in ELB, X-Forwarded-For is not
    read. A block that is no CIDR matches nothing."""
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    for block in blocks:
        try:
            if address in ipaddress.ip_network(block, strict=False):
                return True
        except ValueError:
            continue
    return False


def rule_matches(conditions: list, method: str, host: str, path: str, query: str, head, source: str) -> bool:
    """Whether a request matches every condition; `source` is the client's address as the
    connection shows it."""
    for condition in conditions or []:
        field = condition.get("Field")
        if field == "path-pattern":
            if not path_matches(condition, path):
                return False
        elif field == "host-header":
            values = condition_values(condition, "HostHeaderConfig")
            if not any(wildcard(v, hostname(host), False) for v in values):
                return False
        elif field == "http-request-method":
            if method not in condition_values(condition, "HttpRequestMethodConfig"):
                return False
        elif field == "http-header":
            config = condition.get("HttpHeaderConfig") or {}
            value = head.get(config.get("HttpHeaderName", "")) or ""
            if not any(wildcard(v, value, False) for v in config.get("Values") or []):
                return False
        elif field == "query-string":
            pairs = [p.partition("=") for p in query.split("&") if p]
            wanted = (condition.get("QueryStringConfig") or {}).get("Values") or []
            if not any(
                any((w.get("Key") in (None, k)) and wildcard(w.get("Value", ""), v, False) for k, _, v in pairs)
                for w in wanted
            ):
                return False
        elif field == "source-ip":
            if not source_ip_matches((condition.get("SourceIpConfig") or {}).get("Values") or [], source):
                return False
        else:
            return False  # A condition we cannot evaluate never matches.
    return True


def name_matches(pattern: str, server_name: str) -> bool:
    """A certificate name covers a server name: equal, or a wildcard `*.example.com` standing for
    exactly one leftmost label (RFC 6125); case-insensitive."""
    pattern, server_name = pattern.lower().rstrip("."), server_name.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = server_name.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == server_name


def choose_certificate(server_name: str | None, certificates: list[tuple[str, list[str]]]) -> str:
    """The certificate ELB serves from a listener's list of (ARN, names), the default first: one
    whose name equals the SNI server name, else one whose wildcard covers it, else (and without
    SNI) the default."""
    if server_name:
        for wildcards in (False, True):
            for arn, names in certificates:
                if any(n.startswith("*.") == wildcards and name_matches(n, server_name) for n in names):
                    return arn
    return certificates[0][0]


class ListenerStats:
    def __init__(self):
        self.counts = Counter()
        self.recent = deque(maxlen=100_000)

    def record(self, outcome, target: str | None) -> None:
        self.counts[str(outcome)] += 1
        self.recent.append((time.time(), str(outcome), target))


class DataPlane:
    def __init__(self, registry, elbv2_backend, guard, network):
        self.registry = registry
        self.network = network
        self.elbv2 = elbv2_backend
        self.guard = guard
        self.servers: dict[str, tuple[asyncio.AbstractServer, int, dict]] = {}
        self.stats: dict[str, ListenerStats] = {}
        self.tls_contexts: dict[tuple[str, bytes], ssl.SSLContext] = {}

    async def run(self) -> None:
        """Keeps one local listener per emulated listener, checking every 200 ms."""
        while True:
            try:
                await self._reconcile()
            except Exception as err:  # moto's dicts may change under us; try again shortly.
                print(f"data plane: {err!r}", flush=True)
            await asyncio.sleep(0.2)

    async def _reconcile(self) -> None:
        wanted = {}
        for balancer in list(self.elbv2.load_balancers.values()):
            for listener in list(balancer.listeners.values()):
                wanted[listener.arn] = (balancer, listener)
        local_ports = {}  # A listener whose protocol or port changed keeps its loopback port.
        for arn, (server, port, info) in list(self.servers.items()):
            listener = wanted.get(arn, (None, None))[1]
            if listener is None or (info["protocol"], info["port"]) != (listener.protocol, int(listener.port)):
                del self.servers[arn]
                server.close()
                local_ports[arn] = port
        for arn, (balancer, listener) in wanted.items():
            if arn in self.servers:
                continue
            stats = self.stats.setdefault(arn, ListenerStats())
            if listener.protocol in ("HTTP", "HTTPS"):
                handler = self._http_handler(balancer, listener, stats)
            else:
                handler = self._tcp_handler(balancer, listener, stats)
            tls = self._server_context(balancer, listener) if listener.protocol in ("HTTPS", "TLS") else None
            server = await asyncio.start_server(handler, "127.0.0.1", local_ports.get(arn, 0), ssl=tls)
            port = server.sockets[0].getsockname()[1]
            info = {
                "load_balancer_arn": balancer.arn,
                "load_balancer_name": balancer.name,
                "dns_name": balancer.dns_name,
                "type": balancer.type,
                "listener_arn": arn,
                "protocol": listener.protocol,
                "port": int(listener.port),
                "local_address": f"127.0.0.1:{port}",
            }
            self.servers[arn] = (server, port, info)
            print(f"data plane: {balancer.dns_name}:{listener.port} ({listener.protocol}) -> 127.0.0.1:{port}", flush=True)

    def _server_context(self, balancer, listener) -> ssl.SSLContext:
        """A context that holds no certificate itself: on each handshake it switches to the one
        the client's SNI picks among the listener's current certificates."""
        region, account = balancer.arn.split(":")[3:5]
        acm = acm_backends[account][region]

        def pick(ssl_object, server_name, _context):
            bundles = {}
            for arn in listener.certificates or [listener.certificate]:
                try:
                    bundles[arn] = acm.get_certificate(arn)
                except CertificateNotFound:
                    continue
            arn = choose_certificate(server_name, [(a, b.sans or [b.common_name]) for a, b in bundles.items()])
            ssl_object.context = self._tls_context(arn, bundles[arn])

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.sni_callback = pick
        return context

    def _tls_context(self, arn: str, bundle) -> ssl.SSLContext:
        """An ACM certificate as a server context (key and chain from ACM), built once per
        certificate body (a re-import under the same ARN gets a new one)."""
        key = (arn, bundle.cert)
        if key not in self.tls_contexts:
            self.tls_contexts[key] = self._load_tls_context(bundle)
        return self.tls_contexts[key]

    @staticmethod
    def _load_tls_context(bundle) -> ssl.SSLContext:
        as_text = lambda v: v.decode() if isinstance(v, bytes) else (v or "")
        with tempfile.TemporaryDirectory() as directory:
            chain = os.path.join(directory, "chain.pem")
            key = os.path.join(directory, "key.pem")
            with open(chain, "w") as f:
                f.write(as_text(bundle.cert).strip() + "\n" + as_text(bundle.chain).strip() + "\n")
            with open(key, "w") as f:
                f.write(as_text(bundle.key))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(chain, key)
        return context

    def listeners(self) -> list[dict]:
        return [
            dict(info, requests=dict(self.stats[arn].counts))
            for arn, (_, _, info) in self.servers.items()
        ]

    def recent(self, listener_arn: str, since: float) -> list:
        stats = self.stats.get(listener_arn)
        return [list(r) for r in stats.recent if r[0] >= since] if stats else []

    # ALB ----------------------------------------------------------------------------------------

    async def _dropped(self, balancer, listener, stats: ListenerStats, reader, writer) -> bool:
        """Holds a connection the load balancer's security groups drop: no answer, ever (the
        client times out), closed after DROPPED_HOLD. True when it was dropped."""
        if not self.network.listener_blocked(balancer, listener):
            return False
        stats.record("dropped", None)
        try:
            await asyncio.wait_for(reader.read(), DROPPED_HOLD)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        writer.close()
        return True

    def _http_handler(self, balancer, listener, stats: ListenerStats):
        async def handle(reader, writer):
            source = (writer.get_extra_info("peername") or ("",))[0]
            if await self._dropped(balancer, listener, stats, reader, writer):
                return
            try:
                while True:
                    head = await httpwire.read_head(reader)
                    if head is None:
                        break
                    body = await httpwire.read_body(reader, head, until_eof=False)
                    keep_alive = self._client_keeps_alive(head)
                    status, reason, headers, payload, target = await self._serve(balancer, listener, head, body, source)
                    stats.record(status, target)
                    writer.write(httpwire.response_bytes(status, reason, headers, payload, close=not keep_alive))
                    await writer.drain()
                    if not keep_alive:
                        break
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                pass
            finally:
                writer.close()
        return handle

    @staticmethod
    def _client_keeps_alive(head) -> bool:
        version = head.first_line.rsplit(" ", 1)[-1]
        connection = (head.get("connection") or "").lower()
        if version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"

    async def _serve(self, balancer, listener, head, body, source: str):
        method, target_uri, _ = (head.first_line.split(" ", 2) + ["", ""])[:3]
        path, _, query = target_uri.partition("?")
        host = head.get("host") or balancer.dns_name
        actions = listener.default_actions
        rules = sorted(
            (r for r in listener.rules.values() if not r.is_default),
            key=lambda r: int(r.priority),
        )
        for rule in rules:
            if rule_matches(rule.conditions, method, host, path, query, head, source):
                actions = rule.actions
                break
        ordered = sorted(actions, key=lambda a: int(a.data.get("Order", 0) or 0))
        action = ordered[-1] if ordered else None
        if action is None:
            return 503, REASONS[503], [], b"no action\n", None
        if action.type == "fixed-response":
            config = action.data.get("FixedResponseConfig") or {}
            status = int(config.get("StatusCode", 200))
            headers = [("Content-Type", config.get("ContentType", "text/plain"))]
            return status, REASONS.get(status, ""), headers, (config.get("MessageBody") or "").encode(), None
        if action.type == "redirect":
            return self._redirect(action.data.get("RedirectConfig") or {}, listener, host, path, query)
        if action.type == "forward":
            group_arn = self._choose_group(action.data)
            return await self._forward(balancer, listener, group_arn, method, target_uri, head, body)
        return 503, REASONS[503], [], f"unsupported action {action.type}\n".encode(), None

    @staticmethod
    def _choose_group(data: dict) -> str | None:
        groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
        if not groups:
            return data.get("TargetGroupArn")
        weights = [int(g.get("Weight", 1) or 0) for g in groups]
        if sum(weights) == 0:
            return groups[0].get("TargetGroupArn")
        return random.choices(groups, weights=weights)[0].get("TargetGroupArn")

    @staticmethod
    def _redirect(config: dict, listener, host: str, path: str, query: str):
        """ELB's redirect: each part from the config, its placeholders filled from the request in
        one pass (#{host} without the Host header's port, #{port} the listener's, #{path} without
        its leading "/"); parts not given keep the request's."""
        values = {
            "protocol": listener.protocol.lower(),
            "host": hostname(host),
            "port": str(listener.port),
            "path": path.lstrip("/"),
            "query": query,
        }

        def fill(template: str) -> str:
            return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)

        protocol = fill(config.get("Protocol", "#{protocol}")).lower()
        location = f"{protocol}://{fill(config.get('Host', '#{host}'))}:{fill(config.get('Port', '#{port}'))}"
        location += "/" + fill(config.get("Path", "/#{path}")).lstrip("/")
        new_query = fill(config.get("Query", "#{query}"))
        if new_query:
            location += "?" + new_query
        status = 301 if config.get("StatusCode", "HTTP_301") == "HTTP_301" else 302
        return status, REASONS[status], [("Location", location)], b"", None

    async def _forward(self, balancer, listener, group_arn, method, target_uri, head, body):
        group = self.elbv2.target_groups.get(group_arn) if group_arn else None
        target = self.registry.pick(group_arn) if group else None
        if target is None:
            return 503, REASONS[503], [("Content-Type", "text/plain")], b"no healthy target\n", None
        address = self.registry.address_of(group, target)
        label = f"{target.id}:{target.port}"
        if address is None or not self.guard.allows(address):
            return 502, REASONS[502], [], b"target not reachable from the sandbox\n", label
        if self.network.target_blocked(group, target.id, target.port, traffic=True):
            await asyncio.sleep(CONNECT_TIMEOUT)  # Dropped by a security group.
            return 504, REASONS[504], [], b"target connect timed out\n", label
        idle = float(getattr(balancer, "attrs", {}).get("idle_timeout.timeout_seconds") or 60)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, target.port), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            return 504, REASONS[504], [], b"target connect timed out\n", label
        except OSError:
            return 502, REASONS[502], [], b"target refused the connection\n", label
        try:
            forwarded = [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP]
            forwarded += [("X-Forwarded-Proto", listener.protocol.lower()),
                          ("X-Forwarded-Port", str(listener.port)),
                          ("Content-Length", str(len(body))),
                          ("Connection", "close")]
            request = f"{method} {target_uri} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in forwarded) + "\r\n"
            writer.write(request.encode("latin-1") + body)
            await writer.drain()
            response_head = await asyncio.wait_for(httpwire.read_head(reader), idle)
            if response_head is None:
                return 502, REASONS[502], [], b"target closed the connection\n", label
            payload = await asyncio.wait_for(httpwire.read_body(reader, response_head, until_eof=True), idle)
            status, reason = httpwire.status_of(response_head)
            headers = [(k, v) for k, v in response_head.headers if k.lower() not in HOP_BY_HOP]
            return status, reason, headers, payload, label
        except asyncio.TimeoutError:
            return 504, REASONS[504], [], b"target timed out\n", label
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            return 502, REASONS[502], [], b"target reset the connection\n", label
        finally:
            writer.close()

    # NLB ----------------------------------------------------------------------------------------

    def _tcp_handler(self, balancer, listener, stats: ListenerStats):
        async def handle(reader, writer):
            if await self._dropped(balancer, listener, stats, reader, writer):
                return
            try:
                group_arn = self._choose_group(listener.default_actions[0].data) if listener.default_actions else None
                group = self.elbv2.target_groups.get(group_arn) if group_arn else None
                target = self.registry.pick(group_arn) if group else None
                if target is None:
                    stats.record("no_target", None)
                    return
                address = self.registry.address_of(group, target)
                label = f"{target.id}:{target.port}"
                if address is None or not self.guard.allows(address):
                    stats.record("connect_failed", label)
                    return
                if self.network.target_blocked(group, target.id, target.port, traffic=True):
                    await asyncio.sleep(CONNECT_TIMEOUT)  # Dropped by a security group.
                    stats.record("connect_failed", label)
                    return
                try:
                    up_reader, up_writer = await asyncio.wait_for(
                        asyncio.open_connection(address, target.port), CONNECT_TIMEOUT
                    )
                except (OSError, asyncio.TimeoutError):
                    stats.record("connect_failed", label)
                    return
                stats.record("forwarded", label)
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                writer.close()
        return handle


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until EOF, then half-closes the other side; TLS has no half-close, so a TLS side
    is closed (else a client waiting for the end would wait forever)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, RuntimeError):
            pass
