"""Where the product may send its bearer token: the allow-list check every outbound URL passes first.

An allow-list entry is an exact host (`management.azure.com`), an exact host and port (`127.0.0.1:8443`, for
the local emulator), or a wildcard for one or more labels (`*.experiments.azureml.net`). URLs must be https,
carry no user info, and (outside an exact entry) no IP literal and no port but 443.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_REGION = re.compile(r"^[a-z][a-z0-9]{1,39}$")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DisallowedUrlError(ValueError):
    """An outbound URL that is not on the allow-list; nothing was sent to it."""


def validate_region(region: str) -> str:
    """A workspace location before it becomes part of a host name (`westeurope`, `eastus2`)."""
    if not _REGION.fullmatch(region or ""):
        raise DisallowedUrlError(f"not an Azure region name: {region!r}")
    return region


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class AllowList:
    def __init__(self, entries: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.suffixes: list[str] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])  # ".experiments.azureml.net"
            else:
                self.exact.add(entry)

    def check(self, url: str) -> str:
        """Return `url` when the token may go there; raise DisallowedUrlError otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DisallowedUrlError("malformed URL") from exc
        if parts.scheme != "https":
            raise DisallowedUrlError(f"only https URLs are followed, not {parts.scheme or 'relative'!r}")
        if "@" in parts.netloc or parts.username or parts.password:
            raise DisallowedUrlError("URL carries user info")
        host = (parts.hostname or "").lower()
        if not host:
            raise DisallowedUrlError("URL has no host")
        hostport = f"{host}:{port}" if port is not None else host
        if hostport in self.exact or (port in (None, 443) and host in self.exact):
            return url
        if _is_ip(host):
            raise DisallowedUrlError(f"IP literal host {host} is not allow-listed")
        if port not in (None, 443):
            raise DisallowedUrlError(f"port {port} is not allow-listed")
        labels = host.split(".")
        if not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise DisallowedUrlError("host name has invalid labels")
        if any(host.endswith(suffix) and len(host) > len(suffix) for suffix in self.suffixes):
            return url
        raise DisallowedUrlError(f"host {host} is not allow-listed")

    def allows(self, url: str) -> bool:
        try:
            self.check(url)
        except DisallowedUrlError:
            return False
        return True
