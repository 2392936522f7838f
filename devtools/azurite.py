"""Start and stop Azurite (Blob, Queue, Table) for the local stack.

Keyless by default, as in production: https with a generated certificate and `--oauth basic`, so the
product's clients authenticate with bearer tokens from the managed-identity endpoint. Free ports, in-memory
state (nothing left behind), no telemetry.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools import processes

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key: only used by the optional shared-key mode, never by tests or demo.
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at (https?)://[^:]+:(\d+)"
)


@dataclass
class Azurite:
    """One Azurite process. `keyless=False` gives the shared-key mode for quick experiments."""

    cert: Path | None
    key: Path | None
    keyless: bool = True
    memory_limit_mb: int = 2048
    location: Path | None = None  # persist here instead of in memory (survives a restart)
    ports: dict[str, int] = field(default_factory=dict)
    scheme: str = "https"
    proc: subprocess.Popen[bytes] | None = None
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm ci` (make install does)")
        args = [str(AZURITE_BIN)]
        for service in ("blob", "queue", "table"):
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(self.ports.get(service, 0))]
        if self.location is None:
            args += ["--inMemoryPersistence", "--extentMemoryLimit", str(self.memory_limit_mb)]
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        args += ["--skipApiVersionCheck", "--disableTelemetry"]
        if self.keyless:
            if self.cert is None or self.key is None:
                raise ValueError("keyless Azurite needs a certificate and key")
            args += ["--oauth", "basic", "--cert", str(self.cert), "--key", str(self.key)]
        self.proc = processes.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("Azurite did not start in time:\n" + "\n".join(self.output[-20:]))
        return self

    def _read_output(self, ready: threading.Event) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        listening: set[str] = set()
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            if len(self.output) > 500:
                del self.output[:250]
            match = _LISTENING.search(line)
            if match:
                self.scheme = match.group(2)
                self.ports[match.group(1).lower()] = int(match.group(3))
                listening.add(match.group(1).lower())
                if len(listening) == 3:
                    ready.set()

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def restart(self, timeout: float = 60.0) -> Azurite:
        """Stop and start again on the same ports, so clients keep their URLs. State survives only with a
        `location`; in memory it is lost."""
        self.stop()
        time.sleep(0.2)
        return self.start(timeout)

    def url(self, service: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[service]}/{ACCOUNT}"

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
