"""The control API the Rust side of the sandbox queries (JSON over HTTP on loopback):

  GET /health                                  "ok"
  GET /listeners                               every local listener: LB DNS name, port, local address, counts
  GET /targets?target_group_arn=ARN            every target of the group with its health timeline
  GET /requests?listener_arn=ARN&since=EPOCH   recent requests: [time, outcome, target]
  GET /routing-lag?seconds=S                   sets the data plane's routing lag (see targets.py)
  GET /throttle?per_second=N                   throttles the target calls to N a second (0: off);
                                               answers the rate and how many calls were refused
  GET /peer-target-group?arn=ARN               makes target group ARN exist in the account it names,
                                               with a VPC like the cluster's and an ALB (see peer.py)
"""

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from . import httpwire, peer


class ControlApi:
    def __init__(self, registry, dataplane, endpoint: str, config: dict, throttle):
        self.registry = registry
        self.throttle = throttle
        self.dataplane = dataplane
        self.endpoint = endpoint
        self.config = config

    async def start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    def _answer(self, path: str, query: dict):
        one = lambda name, default=None: (query.get(name) or [default])[0]  # noqa: E731
        if path == "/health":
            return 200, "ok"
        if path == "/listeners":
            return 200, self.dataplane.listeners()
        if path == "/targets":
            return 200, self.registry.timeline(one("target_group_arn", ""))
        if path == "/requests":
            return 200, self.dataplane.recent(one("listener_arn", ""), float(one("since", "0")))
        if path == "/routing-lag":
            seconds = float(one("seconds", "0"))
            if not 0 <= seconds <= 600:
                return 400, {"error": f"routing lag {seconds} s is outside 0..600"}
            self.registry.routing_lag = seconds
            return 200, {"routing_lag": seconds}
        if path == "/throttle":
            per_second = float(one("per_second", "0"))
            if not 0 <= per_second <= 10000:
                return 400, {"error": f"rate {per_second} is outside 0..10000"}
            return 200, self.throttle.set(per_second)
        return 404, {"error": f"no such endpoint {path}"}

    def _peer(self, arn: str):
        try:
            return 200, peer.ensure_target_group(self.endpoint, self.config, arn)
        except ValueError as err:
            return 400, {"error": str(err)}
        except Exception as err:  # noqa: BLE001 - moto's errors are many; the caller reads the text
            return 500, {"error": f"{type(err).__name__}: {err}"}

    async def _handle(self, reader, writer):
        try:
            head = await httpwire.read_head(reader)
            if head is None:
                return
            target = urlsplit(head.first_line.split(" ")[1])
            query = parse_qs(target.query)
            if target.path == "/peer-target-group":
                # Calls moto over HTTP: off the loop, which serves the data plane and checks.
                status, value = await asyncio.get_running_loop().run_in_executor(
                    None, self._peer, (query.get("arn") or [""])[0]
                )
            else:
                status, value = self._answer(target.path, query)
            body = json.dumps(value).encode()
            writer.write(httpwire.response_bytes(status, {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "Not Found"),
                                                 [("Content-Type", "application/json")], body, close=True))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            writer.close()
