"""The request model at the edge: what a caller may POST to /api/v1/requests, validated strictly."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.core.model import WorkspaceRef

GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Azure resource names as ARM accepts them for resource groups and ML workspaces: no '/', '?', '#', '%', spaces;
# a resource group name never ends with '.', so '.' and '..' (dot segments that would move the URL) never match.
_RG = r"[-\w._()]{0,89}[-\w()]"
_WS = r"[A-Za-z0-9][A-Za-z0-9_-]{1,32}"
WORKSPACE_ID = re.compile(
    rf"^/subscriptions/(?P<sub>{GUID[1:-1]})/resourceGroups/(?P<rg>{_RG})"
    rf"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>{_WS})$",
    re.IGNORECASE,
)
RESOURCE_GROUP_ID = re.compile(
    rf"^/subscriptions/(?P<sub>{GUID[1:-1]})/resourceGroups/(?P<rg>{_RG})$", re.IGNORECASE
)
# The same grammar for the OpenAPI document (JSON Schema patterns: no named groups, no flags; the canonical
# letter case, where the app also accepts any other).
WORKSPACE_ID_PATTERN = (
    rf"^/subscriptions/{GUID[1:-1]}/resourceGroups/{_RG}"
    rf"/providers/Microsoft\.MachineLearningServices/workspaces/{_WS}$"
)
RESOURCE_GROUP_ID_PATTERN = rf"^/subscriptions/{GUID[1:-1]}/resourceGroups/{_RG}$"
WorkspaceId = Annotated[
    str,
    StringConstraints(max_length=400),
    WithJsonSchema({"type": "string", "maxLength": 400, "pattern": WORKSPACE_ID_PATTERN}),
]
ResourceGroupId = Annotated[
    str,
    StringConstraints(max_length=300),
    WithJsonSchema({"type": "string", "maxLength": 300, "pattern": RESOURCE_GROUP_ID_PATTERN}),
]


def workspace_of(arm_id: str) -> WorkspaceRef:
    """The workspace a validated workspace ARM id names."""
    match = WORKSPACE_ID.fullmatch(arm_id)
    assert match is not None
    return WorkspaceRef(match["sub"], match["rg"], match["ws"])


# A UPN or e-mail address as Entra ID accepts one: ASCII only (Entra allows A-Z a-z 0-9 ' . - _ ! # ^ ~ in a
# UPN's name; mail adds the rest of RFC 5322's atext but '/', '?', '%'), an ASCII (or punycode) domain. No
# Unicode: a lookalike (the Kelvin sign for K, a Cyrillic a, an invisible or bidi character) would name another
# person, and identifiers are compared ASCII-case-insensitively only (shared/core/matching.py).
UPN_PATTERN = r"^[A-Za-z0-9!#$&'*+=^_`{|}~.-]{1,128}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
Upn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=256, pattern=UPN_PATTERN),
]
Guid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=GUID)]
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # free text: no control characters (no forged log lines)


class Strict(BaseModel):
    # strict: no coercion ("true" is not a boolean, 1 is not a string); unknown fields are refused.
    model_config = ConfigDict(extra="forbid", str_max_length=1024, strict=True)


class SubjectIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("objectId", "userPrincipalName", "email")
            ]
        }
    )
    objectId: Guid | None = None
    userPrincipalName: Upn | None = None
    email: Upn | None = None

    @model_validator(mode="after")
    def one_identifier(self) -> SubjectIn:
        if not (self.objectId or self.userPrincipalName or self.email):
            raise ValueError(
                "the subject needs at least one identifier: objectId, userPrincipalName or email"
            )
        return self


class ScopeIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"minItems": 1}}}
                for name in ("workspaces", "resourceGroups", "subscriptions")
            ]
        }
    )
    workspaces: list[WorkspaceId] = Field(default_factory=list, max_length=500)
    resourceGroups: list[ResourceGroupId] = Field(default_factory=list, max_length=200)
    subscriptions: list[Guid] = Field(default_factory=list, max_length=100)

    @field_validator("workspaces")
    @classmethod
    def workspace_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not WORKSPACE_ID.fullmatch(value):
                raise ValueError(f"not an Azure ML workspace ARM id: {value[:120]!r}")
        return values

    @field_validator("resourceGroups")
    @classmethod
    def resource_group_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not RESOURCE_GROUP_ID.fullmatch(value):
                raise ValueError(f"not a resource group ARM id: {value[:120]!r}")
        return values

    @model_validator(mode="after")
    def not_empty(self) -> ScopeIn:
        if not (self.workspaces or self.resourceGroups or self.subscriptions):
            raise ValueError("the scope names no workspace, resource group or subscription")
        return self


class PipelineIdIn(Strict):
    workspace: WorkspaceId
    kind: Literal["experiment", "graph", "module", "template", "datasource"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]

    @field_validator("workspace")
    @classmethod
    def workspace_id(cls, value: str) -> str:
        if not WORKSPACE_ID.fullmatch(value):
            raise ValueError("not an Azure ML workspace ARM id")
        return value

    @field_validator("id")
    @classmethod
    def not_a_dot_segment(cls, value: str) -> str:
        if value.strip(".") == "":
            raise ValueError("an id of dots only would change the URL it is placed in")
        return value


class DeleteWorkspaceIn(Strict):
    confirm: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    exportFirst: bool = False


class SubmitIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "description": "Rules beyond the schema (a body breaking one answers 422): a subject, unless "
            "wholeWorkspace (an export naming its workspaces explicitly and no subject) or deleteWorkspace (an "
            "erasure naming exactly one workspace, no subject, confirm equal to its name).",
            "examples": [
                {
                    "type": "export",
                    "subject": {"objectId": "00000000-0000-4000-8000-0000000000a1"},
                    "scope": {"subscriptions": ["00000000-0000-4000-8000-0000000000b2"]},
                    "dryRun": True,
                    "reference": "TICKET-123",
                },
                {
                    "type": "erasure",
                    "subject": {"userPrincipalName": "someone@contoso.com"},
                    "scope": {
                        "resourceGroups": [
                            "/subscriptions/00000000-0000-4000-8000-0000000000b2/resourceGroups/rg-ml"
                        ]
                    },
                },
            ],
        }
    )
    type: Literal["export", "erasure"]
    subject: SubjectIn | None = None
    wholeWorkspace: bool = False
    deleteWorkspace: DeleteWorkspaceIn | None = None
    dryRun: bool = False
    scope: ScopeIn
    pipelineIds: list[PipelineIdIn] = Field(default_factory=list, max_length=1000)
    reference: Annotated[str, StringConstraints(max_length=200, pattern=r"^[\w .:#/-]*$")] | None = None
    # Where CloudEvents about the request's status are POSTed; its host must be on DSR_CALLBACK_ALLOWED_HOSTS.
    callbackUrl: (
        Annotated[str, StringConstraints(max_length=2048, pattern=r"^https://[^\s\x00-\x1f\x7f]+$")] | None
    ) = None

    @model_validator(mode="after")
    def consistent(self) -> SubmitIn:
        if self.deleteWorkspace is not None:
            if self.type != "erasure":
                raise ValueError("deleteWorkspace belongs to an erasure request")
            if self.subject is not None or self.wholeWorkspace or self.pipelineIds:
                raise ValueError("a workspace deletion names no subject, wholeWorkspace or pipelineIds")
            if len(self.scope.workspaces) != 1 or self.scope.resourceGroups or self.scope.subscriptions:
                raise ValueError(
                    "a workspace deletion names exactly one workspace by ARM id, and nothing else"
                )
            match = WORKSPACE_ID.fullmatch(self.scope.workspaces[0])
            if match is None or match["ws"] != self.deleteWorkspace.confirm:
                raise ValueError("deleteWorkspace.confirm must equal the name of the workspace to delete")
            return self
        if self.wholeWorkspace:
            if self.type != "export":
                raise ValueError("wholeWorkspace is for exports; to delete a workspace use deleteWorkspace")
            if self.subject is not None:
                raise ValueError("a whole-workspace export names no subject")
            if self.scope.resourceGroups or self.scope.subscriptions or not self.scope.workspaces:
                raise ValueError("a whole-workspace export names its workspaces explicitly by ARM id")
        elif self.subject is None:
            raise ValueError("a subject is required (or wholeWorkspace: true with explicit workspaces)")
        return self


class SearchIn(Strict):
    """The body of POST /v1/requests:search: exactly one identifier of the person (kept out of URLs)."""

    subjectObjectId: Guid | None = None
    subjectUserPrincipalName: Upn | None = None
    subjectEmail: Upn | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> SearchIn:
        given = [v for v in (self.subjectObjectId, self.subjectUserPrincipalName, self.subjectEmail) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of subjectObjectId, subjectUserPrincipalName, subjectEmail")
        return self

    @property
    def identifier(self) -> str:
        return str(self.subjectObjectId or self.subjectUserPrincipalName or self.subjectEmail)


class DecisionIn(Strict):
    """The body of :approve, :reject, :cancel (all optional)."""

    reason: Annotated[str, StringConstraints(max_length=500, pattern=NO_CONTROL)] | None = None


class ExtendIn(Strict):
    """The body of :extend: by how many months (1 or 2, once) and why (told to the requester, kept in the
    audit trail)."""

    months: Literal[1, 2]
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, pattern=NO_CONTROL)]
