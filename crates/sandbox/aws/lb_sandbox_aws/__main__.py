"""Starts the sandbox's AWS: `python -m lb_sandbox_aws --config CONFIG --ready-file READY`.

CONFIG (JSON): region, cluster_name, pod_cidr, subnets [{zone, cidr}], nodes [{name, zone, address}],
enforce_security_groups (default true, see network.py).
Every port is picked by the kernel (port 0), so none can be taken in between; when all is up the
addresses and seeded IDs are written to READY (JSON, atomically). Runs until SIGTERM or SIGINT.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import threading

from moto.ec2.models import ec2_backends
from moto.elbv2.models import elbv2_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import elbv2_patch, idempotency, network, seed
from .faults import Faults, FaultingApp
from .control import ControlApi
from .dataplane import DataPlane
from .guard import Guard
from .targets import TargetRegistry

ACCOUNT_ID = "123456789012"


class FaultingMotoServer(ThreadedMotoServer):
    """moto's threaded server with the fault rules (faults.py) in front of its application."""

    def __init__(self, faults: Faults):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._faults = faults

    def _server_entry(self) -> None:
        app = FaultingApp(DomainDispatcherApplication(create_backend_app), self._faults)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="lb_sandbox_aws")
    parser.add_argument("--config", required=True)
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)

    # moto's server logs every request; the sandbox only wants to hear about problems.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="lb-sandbox-aws-loop", daemon=True).start()

    guard = Guard(config["pod_cidr"])
    elbv2 = elbv2_backends[ACCOUNT_ID][config["region"]]
    ec2 = ec2_backends[ACCOUNT_ID][config["region"]]
    network.patch_interface_filters()
    net = network.Network(ec2, elbv2, ACCOUNT_ID, enforce=config.get("enforce_security_groups", True))
    registry = TargetRegistry(loop, guard, elbv2, ec2, net)
    throttle = elbv2_patch.Throttle()
    elbv2_patch.install(registry, throttle)
    idempotency.install()

    faults = Faults()
    server = FaultingMotoServer(faults)
    server.start()
    _, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    seeded = seed.seed(endpoint, config)

    dataplane = DataPlane(registry, elbv2, guard, net)
    asyncio.run_coroutine_threadsafe(dataplane.run(), loop)
    control_port = asyncio.run_coroutine_threadsafe(ControlApi(registry, dataplane, net, endpoint, config, seeded["vpc_id"], throttle, faults).start(), loop).result()

    ready = {"endpoint": endpoint, "control": f"http://127.0.0.1:{control_port}", **seeded}
    partial = args.ready_file + ".partial"
    with open(partial, "w") as f:
        json.dump(ready, f)
    os.rename(partial, args.ready_file)
    print(f"moto {endpoint}, control http://127.0.0.1:{control_port}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
