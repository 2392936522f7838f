"""`python -m devtools.funchost`: run a Functions app locally until SIGTERM / SIGINT.

When ready it prints ONE JSON line on stdout: `{"http_url": ..., "functions": [{"name", "trigger", ...}]}`;
logs go to stderr. Several processes can serve the same queues (scale-out): the queue lease keeps each
message with one of them at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devtools.funchost.config import ConfigError
from devtools.funchost.functions import LoadError, configure_logging
from devtools.funchost.host import FunctionHost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.funchost", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (on sys.path; the cwd)")
    parser.add_argument("--host-json", type=Path, help="host.json (default: next to the app module)")
    parser.add_argument(
        "--settings", type=Path, help="local.settings.json (default: <root>/local.settings.json)"
    )
    parser.add_argument("--port", type=int, default=7071, help="HTTP port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--no-timers", action="store_true", help="do not run timer triggers (extra instances)"
    )
    parser.add_argument("--no-queues", action="store_true", help="do not poll queues")
    parser.add_argument("--stop-timeout", type=float, default=30.0, help="seconds to let invocations finish")
    parser.add_argument("--log-level", default=os.environ.get("FUNCHOST_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--queue-lease-seconds",
        type=int,
        default=int(os.environ.get("FUNCHOST_QUEUE_LEASE_SECONDS", "600")),
        help="how long a received message stays invisible (renewed while its invocation runs); a killed host's "
        "messages come back after this (the real host uses 10 minutes)",
    )
    args = parser.parse_args(argv)

    configure_logging(args.log_level)
    root = args.root.resolve()
    settings = args.settings
    if settings is None and (root / "local.settings.json").exists():
        settings = root / "local.settings.json"
    os.chdir(root)  # the Python worker runs with the app folder as its working directory

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        host = FunctionHost(
            args.app,
            root=root,
            host_json=args.host_json,
            settings_file=settings,
            http_port=args.port,
            timers=not args.no_timers,
            queues=not args.no_queues,
            stop_timeout=args.stop_timeout,
            queue_lease_seconds=args.queue_lease_seconds,
        )
        host.start()
    except (LoadError, ConfigError, OSError) as exc:
        logging.getLogger("funchost").error("cannot start: %s", exc)
        return 2
    except Exception:
        logging.getLogger("funchost").exception("cannot start")
        return 2
    print(json.dumps(host.describe()), flush=True)
    sys.stdout = sys.stderr  # stdout holds exactly the ready line; print() in functions goes to the log
    try:
        while not stop.wait(1.0):
            pass
    finally:
        drained = host.stop()
    if not drained:  # a function is stuck in a thread: do not wait for it at interpreter exit
        logging.shutdown()
        os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
