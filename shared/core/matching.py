"""Which records belong to the data subject.

A record is tied to the subject through its identity fields (dotted paths such as `createdBy.userObjectId`,
configured in DSR_MATCH_FIELDS), compared in one canonical form (`canonical`): ASCII letters folded to lower
case, nothing else folded, so that two different people can never compare equal (`str.lower()` would fold the
Kelvin sign U+212A to `k` and let "Kate@..." written with it select kate@...). The intake accepts only ASCII
identifiers (shared/lifecycle/submission.py), as Entra ID does for UPNs; a record's non-ASCII value can then
never equal the subject's. The rules:

1. Object ids decide. A field whose last key is an object-id key (`userObjectId`, `UserObjectId`, `userId`,
   `objectId`) that holds the subject's object id ties the record to the subject. A record whose object-id
   field names ANOTHER object id (and none names the subject) is that other person's, whatever its other
   fields say: it is never exported for the subject and never deleted in the subject's erasure. A subject
   given without an object id therefore matches no record that names an object id.
2. Otherwise a UPN or e-mail field (`createdBy.upn`, `systemData.createdBy`) that holds the subject's UPN or
   e-mail address ties the record to the subject.
3. Display names are never compared. `createdBy.userName` holds a full name or a service principal's app id
   (run-history v1.0 spec; azureml-core `CreatedByDto`); two people share a name (the demo tenant's asmith
   is "Alice Smith" too). A display-name field (`userName`, `UserName`, `displayName`) in DSR_MATCH_FIELDS is
   dropped, so a record that names its creator only by display name is matched to nobody.

Families whose published contract names no creator (experiments, images, assets, notification tasks, most
pipeline objects) are tied to the subject BY RULE (shared/tasks/rules.py, shared/tasks/pipelines.py), and the
rule is the kept record's reason; datastores and workspaces (ARM 2019-11-01) name nobody at all and are reported
as not matchable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

OBJECT_ID_KEYS = frozenset({"userObjectId", "UserObjectId", "userId", "objectId"})
DISPLAY_NAME_KEYS = frozenset({"userName", "UserName", "displayName"})


@dataclass(frozen=True)
class Subject:
    object_id: str | None = None
    user_principal_name: str | None = None
    email: str | None = None
    other_emails: tuple[str, ...] = ()  # Entra ID `otherMails`, from Microsoft Graph (shared/aml/identity.py)

    def identifiers(self) -> frozenset[str]:
        values = (self.object_id, self.user_principal_name, self.email, *self.other_emails)
        return frozenset(c for c in map(canonical, values) if c)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "objectId": self.object_id,
            "userPrincipalName": self.user_principal_name,
            "email": self.email,
        }
        if self.other_emails:
            data["otherMails"] = list(self.other_emails)
        return data


WHOLE_WORKSPACE = "whole-workspace export"


def field_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_SPACE = " \t\r\n"


def canonical(value: Any) -> str | None:
    """The form identifiers are compared in: ASCII whitespace trimmed, ASCII letters in lower case, every other
    character as it is (no Unicode case folding or normalisation, which can merge two people). None when empty."""
    if not isinstance(value, str):
        return None
    text = value.strip(_ASCII_SPACE)
    return text.translate(_ASCII_LOWER) if text else None


class Matcher:
    """Decides, record by record, whether to keep it, and says why."""

    def __init__(self, subject: Subject | None, fields: Iterable[str]) -> None:
        self.subject = subject
        wanted = tuple(f.strip() for f in fields if f.strip())
        self.ignored = tuple(f for f in wanted if f.rsplit(".", 1)[-1] in DISPLAY_NAME_KEYS)
        if self.ignored:
            log.warning("display-name fields are never compared; ignored: %s", ", ".join(self.ignored))
        self.fields = tuple(f for f in wanted if f not in self.ignored)
        self.object_id_fields = tuple(f for f in self.fields if f.rsplit(".", 1)[-1] in OBJECT_ID_KEYS)
        self.name_fields = tuple(f for f in self.fields if f not in self.object_id_fields)
        self._ids = subject.identifiers() if subject else frozenset()
        self._oid = canonical(subject.object_id) if subject else None
        if subject is not None and not self._ids:
            raise ValueError("a subject needs at least one identifier")

    def reason(self, record: Mapping[str, Any]) -> str | None:
        """The field that ties `record` to the subject, or None when it is someone else's (or nobody's)."""
        if self.subject is None:
            return WHOLE_WORKSPACE
        other = False
        for path in self.object_id_fields:
            value = canonical(field_value(record, path))
            if value is None:
                continue
            if value == self._oid:
                return path
            other = True
        if other:
            return None  # an object id names another person: theirs, whatever the other fields say
        for path in self.name_fields:
            value = canonical(field_value(record, path))
            if value is not None and value in self._ids:
                return path
        return None

    def names_other(self, record: Mapping[str, Any]) -> bool:
        """Whether an object-id field names someone who is not the subject (and none names the subject)."""
        if self.subject is None:
            return False
        values = {canonical(field_value(record, path)) for path in self.object_id_fields} - {None}
        return bool(values) and self._oid not in values

    def names_anyone(self, record: Mapping[str, Any]) -> bool:
        """Whether the record carries any identity field at all (someone's, not necessarily the subject's)."""
        return any(canonical(field_value(record, path)) is not None for path in self.fields)
