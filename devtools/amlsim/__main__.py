"""Run the simulator standalone: `python -m devtools.amlsim --tenant demo [--port 0] --cert C --key K`.

Prints ONE JSON line on stdout (base_url, service_urls, identity environment, tenant_id, principal_id,
client_id), then serves until SIGTERM or SIGINT. Control it over HTTP under /_sim/ (see server.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devtools.amlsim.fixture import DEMO_TENANT_ID, build_tenant
from devtools.amlsim.identity import TokenIssuer
from devtools.amlsim.server import Simulator

DEFAULT_PRINCIPAL_ID = "5b0c2a8e-1111-4a4b-9c9d-0000000000a1"
DEFAULT_CLIENT_ID = "9d4e1f20-2222-4c3b-8e8f-0000000000c1"
ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.amlsim", description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", choices=("demo", "large"), default="demo")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--cert", type=Path, help="PEM certificate (default: .local/tls/cert.pem, created if missing)"
    )
    parser.add_argument("--key", type=Path, help="PEM private key (default: .local/tls/key.pem)")
    parser.add_argument("--tenant-id", default=DEMO_TENANT_ID)
    parser.add_argument("--principal-id", default=DEFAULT_PRINCIPAL_ID)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--seed", type=int, default=1, help="large tenant: random seed")
    parser.add_argument("--workspaces", type=int, default=None, help="large tenant: number of workspaces")
    parser.add_argument(
        "--experiments", type=int, default=None, help="large tenant: experiments per workspace"
    )
    parser.add_argument("--runs", type=int, default=None, help="large tenant: runs per experiment")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cert, key = args.cert, args.key
    if cert is None or key is None:
        from devtools.certs import ensure_certificate

        cert, key = ensure_certificate(ROOT / ".local" / "tls")
    params: dict[str, Any] = {}
    if args.tenant == "large":
        params["seed"] = args.seed
        for name, value in (
            ("workspaces", args.workspaces),
            ("experiments_per_workspace", args.experiments),
            ("runs_per_experiment", args.runs),
        ):
            if value is not None:
                params[name] = value
    tenant = build_tenant(args.tenant, **params)
    issuer = TokenIssuer(tenant_id=args.tenant_id, principal_id=args.principal_id, client_id=args.client_id)
    sim = Simulator(
        tenant,
        issuer,
        cert=cert,
        key=key,
        port=args.port,
        page_size=args.page_size,
        latency_ms=args.latency_ms,
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sys.stdout.write(json.dumps(sim.describe()) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
