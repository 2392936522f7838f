"""Short-lived read links to an export package: user delegation SAS, signed with the managed identity.

No account key exists (the storage account has shared-key access off): the app asks Blob storage for a user
delegation key with its token credential, and signs with it a SAS that can only read one blob, only over
https, for at most an hour (DSR_PACKAGE_SAS_MINUTES, default 15). The delegation key is cached per process
and renewed well before it expires. A SAS link is a credential: it is answered once in a `Location` header
(`Cache-Control: no-store`) and never logged.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas

from shared.core import settings as names

MAX_MINUTES = 60
CLOCK_SKEW = dt.timedelta(minutes=5)
KEY_LIFETIME = dt.timedelta(hours=6)


class PackageLinks:
    def __init__(self, blob_service: BlobServiceClient, minutes: int) -> None:
        self.blob_service = blob_service
        self.minutes = max(1, min(MAX_MINUTES, minutes))
        self._key: UserDelegationKey | None = None
        self._key_expiry: dt.datetime | None = None
        self._lock = threading.Lock()

    def _delegation_key(self, now: dt.datetime, until: dt.datetime) -> UserDelegationKey:
        with self._lock:
            if self._key is None or self._key_expiry is None or self._key_expiry - CLOCK_SKEW < until:
                expiry = now + KEY_LIFETIME
                self._key = self.blob_service.get_user_delegation_key(now - CLOCK_SKEW, expiry)
                self._key_expiry = expiry
            return self._key

    def read_url(self, blob_path: str, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
        """(URL with a read-only SAS for `dsr-exports/<blob_path>`, its expiry)."""
        now = now or dt.datetime.now(dt.UTC)
        expiry = now + dt.timedelta(minutes=self.minutes)
        key = self._delegation_key(now, expiry)
        account = self.blob_service.account_name
        assert account is not None
        sas = generate_blob_sas(
            account_name=account,
            container_name=names.EXPORT_CONTAINER,
            blob_name=blob_path,
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            start=now - CLOCK_SKEW,
            expiry=expiry,
            protocol="https",
        )
        blob = self.blob_service.get_blob_client(names.EXPORT_CONTAINER, blob_path)
        return f"{blob.url}?{sas}", expiry


_links: dict[int, PackageLinks] = {}
_links_lock = threading.Lock()


def links(rt: Any) -> PackageLinks:
    """One PackageLinks (and cached delegation key) per runtime."""
    key = id(rt.storage)
    with _links_lock:
        if key not in _links:
            _links[key] = PackageLinks(rt.storage.blob_service, rt.settings.package_sas_minutes)
        return _links[key]
