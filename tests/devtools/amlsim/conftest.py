"""A fresh simulator of the demo tenant per test, and a small HTTP client calling it as the product does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.amlsim import Simulator, demo_tenant
from devtools.amlsim.fixture import SUBSCRIPTION_1, SUBSCRIPTION_2
from devtools.amlsim.identity import TokenIssuer

ARM_VERSION = {"api-version": "2019-11-01"}
DEFAULT = "<the client's token>"
R1 = (SUBSCRIPTION_1, "rg-research", "mlw-research-01")  # westeurope, the big one
R2 = (SUBSCRIPTION_1, "rg-research", "mlw-research-02")  # westeurope
PROD = (SUBSCRIPTION_1, "rg-production", "mlw-prod-01")  # northeurope
ANALYTICS = (SUBSCRIPTION_2, "rg-analytics", "mlw-analytics")  # westeurope


def ws_path(sub: str, rg: str, ws: str) -> str:
    provider = "providers/Microsoft.MachineLearningServices/workspaces"
    return f"/subscriptions/{sub}/resourceGroups/{rg}/{provider}/{ws}"


@dataclass
class Client:
    """requests with the simulator's certificate and a managed-identity token for ARM."""

    sim: Simulator
    cert: str
    token: str
    session: requests.Session

    def url(self, service: str, path: str, location: str = "westeurope") -> str:
        return self.sim.service_urls[service].replace("{location}", location) + path

    def request(self, method: str, url: str, token: str | None = DEFAULT, **kwargs: Any) -> requests.Response:
        """`token=None` sends no Authorization header; by default the client's own token goes."""
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is DEFAULT else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, url, headers=headers, verify=self.cert, timeout=10, **kwargs)

    def get(self, url: str, params: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, params=params, **kwargs)

    def delete(self, url: str, params: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, params=params, **kwargs)

    def walk(
        self, url: str, params: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Follow nextLink to the end: (all items, every page body)."""
        pages: list[dict[str, Any]] = []
        response = self.get(url, params)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append(page)
            link = page.get("nextLink")
            if not link:
                break
            assert link.startswith(self.sim.base_url + "/"), link
            assert len(pages) < 1000
            response = self.get(link)
        return [item for page in pages for item in page["value"]], pages


@pytest.fixture
def sim(issuer: TokenIssuer, tls: tuple[Path, Path]) -> Iterator[Simulator]:
    cert, key = tls
    with Simulator(demo_tenant(), issuer, cert=cert, key=key, page_size=5) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator, issuer: TokenIssuer, tls: tuple[Path, Path]) -> Iterator[Client]:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would beat session.verify
    token = issuer.mint("https://management.azure.com")["access_token"]
    yield Client(sim, str(tls[0]), token, session)
    session.close()
