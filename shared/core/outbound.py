"""Where the product may send its bearer token: the allow-list check every outbound URL passes first.

An allow-list entry is an exact host (`management.azure.com`), an exact host and port (`127.0.0.1:8443`, for
the local emulator), or a wildcard for one or more labels (`*.experiments.azureml.net`). URLs must be https,
carry no user info, no dot segment in their path (the HTTP library would collapse it and move the URL), and
(outside an exact entry) no IP literal and no port but 443.

`path_segment` is the rule every value passes before it fills one path segment of a URL the product builds
(shared/aml/catalog.py, Endpoint.render): ids and names the Azure ML side returned are held to it as strictly as
the requester's.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

_REGION = re.compile(r"^[a-z][a-z0-9]{1,39}$")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DisallowedUrlError(ValueError):
    """An outbound URL that is not on the allow-list; nothing was sent to it."""


class UnsafePathSegmentError(DisallowedUrlError):
    """A value that cannot fill one URL path segment as it is; no URL was built from it, nothing was sent."""


_DOT_SEGMENTS = frozenset({".", ".."})
_SEGMENT_BREAKERS = frozenset("/\\?#%")
# Control (Cc), format (Cf: bidi and invisible characters), line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _segment_fault(value: str) -> str | None:
    """Why `value` cannot be one path segment, or None."""
    if value == "":
        return "empty segment"
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value):
        return "control or invisible character"
    for form in (value, unicodedata.normalize("NFKC", value)):  # a fullwidth dot folds to '.' on some hosts
        if form in _DOT_SEGMENTS:
            return "dot segment"
        breakers = sorted(_SEGMENT_BREAKERS.intersection(form))
        if breakers:
            return "character " + " ".join(repr(ch) for ch in breakers)
    return None


def path_segment(field: str, value: str) -> str:
    """`value` when it can fill one URL path segment; raise UnsafePathSegmentError naming `field` otherwise.

    Refused: empty, '.' and '..' (dot segments: the HTTP library collapses them, so the URL, and the token with
    it, would go to another path), '/', '\\', '?', '#', '%' (each would end or re-encode the segment on some
    host), control and invisible characters; each also after NFKC folding."""
    fault = _segment_fault(value) if isinstance(value, str) else "not a string"
    if fault is not None:
        shown = repr(value)[:80]
        raise UnsafePathSegmentError(f"{field} {shown} cannot be a URL path segment ({fault})")
    return value


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
        if any(unquote(segment) in _DOT_SEGMENTS for segment in parts.path.split("/")):
            raise DisallowedUrlError("URL path has a dot segment ('.' or '..') that would move it")
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
