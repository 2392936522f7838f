"""Keep credentials out of exports: every record is scrubbed before it is written.

Datastore reads already ask `includeSecret=false`; this is the second line: any field whose name says it holds
a secret (account keys, SAS tokens, client secrets, passwords, connection strings, certificates, private keys)
and that has a value is replaced by a marker, at any depth. Values that look like a SAS query or a storage
connection string are redacted wherever they appear.
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[redacted by aml-dsr]"
_SECRET_NAME = re.compile(
    r"(account_?key|sas_?token|client_?secret|password|passwd|connection_?string|certificate|private_?key"
    r"|secret|credential_?value|access_?key|api_?key|^token$|^key$|^keys$|primary_?key|secondary_?key)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(AccountKey=|SharedAccessSignature=|[?&]sig=[^&\s]+|-----BEGIN [A-Z ]*PRIVATE KEY-----)", re.IGNORECASE
)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    # Records of one family share their field names: the regex runs once per name, not once per field.
    return _SECRET_NAME.search(key) is not None


def _secret_value(text: str) -> bool:
    # Every pattern needs an "=" or "-----": most values are ruled out without the regex.
    return ("=" in text or "-----" in text) and _SECRET_VALUE.search(text) is not None


def scrub(value: Any) -> tuple[Any, int]:
    """Return (a scrubbed copy, how many values were redacted)."""
    count = 0

    def walk(node: Any) -> Any:
        nonlocal count
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, item in node.items():
                if _secret_name(str(key)) and item not in (None, "", [], {}) and not isinstance(item, bool):
                    if isinstance(item, dict | list):
                        out[key] = walk(item)
                    else:
                        out[key] = REDACTED
                        count += 1
                else:
                    out[key] = walk(item)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str) and _secret_value(node):
            count += 1
            return REDACTED
        return node

    return walk(value), count
