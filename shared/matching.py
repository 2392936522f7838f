"""Which records belong to the data subject.

A record is tied to the subject when one of the configured identity fields (dotted paths such as
`createdBy.userObjectId` or `systemData.createdBy`) equals one of the subject's identifiers, compared without
regard to letter case. Display names are never compared: a `userName` field matches only when it holds the
subject's UPN, e-mail or object id, so two people with the same name are never confused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Subject:
    object_id: str | None = None
    user_principal_name: str | None = None
    email: str | None = None
    other_emails: tuple[str, ...] = ()  # Entra ID `otherMails`, from Microsoft Graph (shared/identity.py)

    def identifiers(self) -> frozenset[str]:
        values = (self.object_id, self.user_principal_name, self.email, *self.other_emails)
        return frozenset(v.strip().lower() for v in values if v and v.strip())

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


class Matcher:
    """Decides, record by record, whether to keep it, and says why."""

    def __init__(self, subject: Subject | None, fields: Iterable[str]) -> None:
        self.subject = subject
        self.fields = tuple(fields)
        self._ids = subject.identifiers() if subject else frozenset()
        if subject is not None and not self._ids:
            raise ValueError("a subject needs at least one identifier")

    def reason(self, record: Mapping[str, Any]) -> str | None:
        """The field that ties `record` to the subject, or None when it is someone else's."""
        if self.subject is None:
            return WHOLE_WORKSPACE
        for path in self.fields:
            value = field_value(record, path)
            if isinstance(value, str) and value.strip().lower() in self._ids:
                return path
        return None

    def names_anyone(self, record: Mapping[str, Any]) -> bool:
        """Whether the record carries any identity field at all (someone's, not necessarily the subject's)."""
        return any(
            isinstance(field_value(record, path), str) and field_value(record, path) for path in self.fields
        )
