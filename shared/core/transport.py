"""HTTP plumbing every outbound client shares: the token-credential protocol, TLS verification read once,
and the Retry-After header.

Used by the Azure ML and Graph clients (shared/aml), the storage clients (shared/storage) and the callback
sender (shared/lifecycle). Imports nothing from the product.
"""

from __future__ import annotations

import email.utils
import os
import time
import urllib.request
from typing import Any, Protocol


class TokenCredential(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


def fixed_tls_verify() -> str | bool | None:
    """What to verify TLS with when the environment configures no proxy (None when it does). requests otherwise
    scans the whole environment (proxies, no_proxy, .netrc, CA bundle) on every call: a tenth of a busy
    worker's CPU. With no proxy, the one thing to read from it is the CA bundle, once."""
    if urllib.request.getproxies():
        return None
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def parse_retry_after(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else default
