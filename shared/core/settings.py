"""Every app setting the product reads, in one place.

Names are constants; `Settings.from_env()` parses them once, with defaults for the optional ones, and fails
loudly naming a missing required one. The Bicep deployment sets exactly these (a contract test checks it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

# Storage, identity-based (the same connection the Functions host uses for its queue triggers).
STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
STORAGE_BLOB_URI: Final = "AzureWebJobsStorage__blobServiceUri"
STORAGE_QUEUE_URI: Final = "AzureWebJobsStorage__queueServiceUri"
STORAGE_TABLE_URI: Final = "AzureWebJobsStorage__tableServiceUri"
STORAGE_CREDENTIAL: Final = "AzureWebJobsStorage__credential"
STORAGE_CLIENT_ID: Final = "AzureWebJobsStorage__clientId"

# The managed identity the product calls Azure ML with (user-assigned client id; empty = system-assigned).
IDENTITY_CLIENT_ID: Final = "DSR_IDENTITY_CLIENT_ID"

# Platform: Application Insights (shared/core/telemetry.py reads them; unset = no telemetry). The authentication
# string `ClientId=<identity>;Authorization=AAD` makes the exporter use the managed identity. Not fields of
# Settings: telemetry starts before, and without, the product's required settings.
APPLICATIONINSIGHTS_CONNECTION_STRING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
APPLICATIONINSIGHTS_AUTHENTICATION_STRING: Final = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"

# Azure ML service hosts. `{location}` is the workspace's region.
ARM_BASE_URL: Final = "DSR_ARM_BASE_URL"
EXPERIMENTS_BASE_URL: Final = "DSR_EXPERIMENTS_BASE_URL"
MODELMANAGEMENT_BASE_URL: Final = "DSR_MODELMANAGEMENT_BASE_URL"
PIPELINES_BASE_URL: Final = "DSR_PIPELINES_BASE_URL"
ARM_AUDIENCE: Final = "DSR_ARM_AUDIENCE"
USE_DISCOVERY: Final = "DSR_USE_DISCOVERY"
ALLOWED_HOSTS: Final = "DSR_ALLOWED_HOSTS"
# Microsoft Graph, to resolve a subject's identifiers (shared/aml/identity.py); empty = no resolution. Its host must
# be on DSR_ALLOWED_HOSTS; the managed identity needs the application permission User.Read.All.
GRAPH_BASE_URL: Final = "DSR_GRAPH_BASE_URL"

# Behaviour.
MATCH_FIELDS: Final = "DSR_MATCH_FIELDS"
PSEUDONYM_KEY: Final = "DSR_PSEUDONYM_KEY"
TASK_TIME_BUDGET_SECONDS: Final = "DSR_TASK_TIME_BUDGET_SECONDS"
MAX_INPROCESS_RETRY_AFTER_SECONDS: Final = "DSR_MAX_INPROCESS_RETRY_AFTER_SECONDS"
HTTP_TIMEOUT_SECONDS: Final = "DSR_HTTP_TIMEOUT_SECONDS"
STATUS_RETRY_AFTER_SECONDS: Final = "DSR_STATUS_RETRY_AFTER_SECONDS"
AUTO_APPROVE_ERASURE: Final = "DSR_AUTO_APPROVE_ERASURE"
# A whole-workspace export (no subject: everyone's records) waits for a second person's approval, as an erasure
# does, unless this is true.
AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT: Final = "DSR_AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT"
ALLOW_WORKSPACE_DELETION: Final = "DSR_ALLOW_WORKSPACE_DELETION"
# A workspace DELETE (D1) is a soft delete unless it carries forceToPurge=true at an api-version that has the
# parameter (2024-04-01 and later; see catalog.FORCE_TO_PURGE_SINCE). GDPR erasure means permanent deletion, so
# the product purges by default; false chooses the soft delete (recorded as recoverable until <date>).
WORKSPACE_PURGE: Final = "DSR_WORKSPACE_PURGE"
ARM_WORKSPACE_DELETE_API_VERSION: Final = "DSR_ARM_WORKSPACE_DELETE_API_VERSION"
# The api-version of the v2 (ARM) families under a workspace (jobs, registered assets, endpoints, schedules,
# connections, v2 datastores) and of the compute family (E3/E4), whose compute instances then name their
# assigned user.
ARM_V2_API_VERSION: Final = "DSR_ARM_V2_API_VERSION"
TRUST_EASYAUTH_HEADERS: Final = "DSR_TRUST_EASYAUTH_HEADERS"
DELETE_VERIFY_ATTEMPTS: Final = "DSR_DELETE_VERIFY_ATTEMPTS"
# Client-side throttling per (subscription, host): ARM's token bucket by default.
RATE_READS_PER_SECOND: Final = "DSR_RATE_READS_PER_SECOND"
RATE_READ_BURST: Final = "DSR_RATE_READ_BURST"
RATE_DELETES_PER_SECOND: Final = "DSR_RATE_DELETES_PER_SECOND"
RATE_DELETE_BURST: Final = "DSR_RATE_DELETE_BURST"
# The instances share those buckets through Table storage (shared/aml/budget.py); if it cannot be reached, each
# process spends its own buckets divided by this many instances.
RATE_SHARED: Final = "DSR_RATE_SHARED"
RATE_FALLBACK_INSTANCES: Final = "DSR_RATE_FALLBACK_INSTANCES"

# Offboarding: HR events on a queue start erasures without a ticket.
OFFBOARDING_QUEUE: Final = "DSR_OFFBOARDING_QUEUE"
OFFBOARDING_SCOPE: Final = "DSR_OFFBOARDING_SCOPE"
OFFBOARDING_AUTO_APPROVE: Final = "DSR_OFFBOARDING_AUTO_APPROVE"
OFFBOARDING_EXPORT_FIRST: Final = "DSR_OFFBOARDING_EXPORT_FIRST"
OFFBOARDING_ARCHIVE_DAYS: Final = "DSR_OFFBOARDING_ARCHIVE_DAYS"
OFFBOARDING_GRACE_HOURS: Final = "DSR_OFFBOARDING_GRACE_HOURS"
OFFBOARDING_DEDUPE_HOURS: Final = "DSR_OFFBOARDING_DEDUPE_HOURS"
TENANT_ID: Final = "DSR_TENANT_ID"

# HTTP API security (shared/edge/auth.py, shared/edge/http_api.py): Entra ID bearer tokens validated in the app.
REQUIRE_ENTRA_TOKEN: Final = "DSR_REQUIRE_ENTRA_TOKEN"  # noqa: S105 (a setting name)
ENTRA_AUDIENCES: Final = "DSR_ENTRA_AUDIENCES"
ENTRA_ISSUERS: Final = "DSR_ENTRA_ISSUERS"
ENTRA_JWKS_URL: Final = "DSR_ENTRA_JWKS_URL"
ENTRA_ALLOWED_HOSTS: Final = "DSR_ENTRA_ALLOWED_HOSTS"
PACKAGE_SAS_MINUTES: Final = "DSR_PACKAGE_SAS_MINUTES"
PACKAGE_RETENTION_DAYS: Final = "DSR_PACKAGE_RETENTION_DAYS"
# Signed CloudEvents callbacks to a request's callbackUrl (shared/lifecycle/callbacks.py): the hosts a callbackUrl may
# name (same grammar as DSR_ALLOWED_HOSTS; empty = no callback accepted) and the HMAC key that signs them (a Key
# Vault reference in Azure; required only when callbacks are enabled).
CALLBACK_ALLOWED_HOSTS: Final = "DSR_CALLBACK_ALLOWED_HOSTS"
CALLBACK_SIGNING_KEY: Final = "DSR_CALLBACK_SIGNING_KEY"
# Evidence integrity (shared/evidence/audit.py, shared/evidence/signing.py). The HMAC key of the audit chain (a Key
# Vault reference in Azure; unset = a key derived from DSR_PSEUDONYM_KEY, which only the app holds either). The
# Key Vault key that signs manifest.json and erasure-record.json (its versionless identifier,
# https://<vault>.vault.azure.net/keys/<name>; its host must be on DSR_ALLOWED_HOSTS; empty = packages unsigned),
# and the token audience of Key Vault.
AUDIT_KEY: Final = "DSR_AUDIT_KEY"
SIGNING_KEY_ID: Final = "DSR_SIGNING_KEY_ID"
KEY_VAULT_AUDIENCE: Final = "DSR_KEY_VAULT_AUDIENCE"

DEFAULT_ARM_BASE_URL: Final = "https://management.azure.com"
DEFAULT_EXPERIMENTS_BASE_URL: Final = "https://{location}.experiments.azureml.net"
DEFAULT_MODELMANAGEMENT_BASE_URL: Final = "https://{location}.modelmanagement.azureml.net"
DEFAULT_PIPELINES_BASE_URL: Final = "https://{location}.aether.ms"
DEFAULT_ARM_AUDIENCE: Final = "https://management.azure.com/.default"
DEFAULT_GRAPH_BASE_URL: Final = "https://graph.microsoft.com"
DEFAULT_KEY_VAULT_AUDIENCE: Final = "https://vault.azure.net/.default"
GRAPH_AUDIENCE: Final = "https://graph.microsoft.com/.default"
# The newest stable Microsoft.MachineLearningServices api-version read (azure-rest-api-specs,
# specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/stable/2025-12-01/
# workspaceRP.json: Workspaces_Delete takes WorkspaceForceToPurgeParameter).
DEFAULT_ARM_WORKSPACE_DELETE_API_VERSION: Final = "2025-12-01"
# The newest stable api-version of Microsoft.MachineLearningServices (azure-rest-api-specs,
# .../Microsoft.MachineLearningServices/stable/2026-07-01/openapi.json; docs/azure-fidelity.md, v2 families).
DEFAULT_ARM_V2_API_VERSION: Final = "2026-07-01"
DEFAULT_ALLOWED_HOSTS: Final = ",".join(
    (
        "management.azure.com",
        "*.experiments.azureml.net",
        "*.modelmanagement.azureml.net",
        "*.aether.ms",
        "*.api.azureml.ms",
        "graph.microsoft.com",
        "*.vault.azure.net",
    )
)
# `{tenant}` is DSR_TENANT_ID. v2.0 and v1.0 access tokens of the tenant are accepted.
DEFAULT_ENTRA_ISSUERS: Final = (
    "https://login.microsoftonline.com/{tenant}/v2.0,https://sts.windows.net/{tenant}/"
)
DEFAULT_ENTRA_JWKS_URL: Final = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
DEFAULT_ENTRA_ALLOWED_HOSTS: Final = "login.microsoftonline.com"
# Identity fields of the published contract (devtools/amlsim/contract.py cites each): data-plane createdBy
# (runs, models, services), ARM systemData (newer api-versions), a compute instance's creator and assigned
# user, an aether module's CreatedBy. Display names (`userName`) are never compared (shared/core/matching.py).
DEFAULT_MATCH_FIELDS: Final = (
    "createdBy.userObjectId,createdBy.upn,systemData.createdBy,"
    "properties.properties.createdBy.userId,"
    "properties.properties.personalComputeInstanceSettings.assignedUser.objectId,"
    "CreatedBy.UserObjectId"
)

# Fixed names of the product's own storage objects (not settings: the triggers name them in code).
PLAN_QUEUE: Final = "dsr-plan"
WORK_QUEUE: Final = "dsr-work"
FINALIZE_QUEUE: Final = "dsr-finalize"
REQUESTS_TABLE: Final = "DsrRequests"
IDEMPOTENCY_TABLE: Final = "DsrIdempotency"
EVENTS_TABLE: Final = "DsrEvents"
SUBJECTS_TABLE: Final = "DsrSubjects"
DEFAULT_OFFBOARDING_QUEUE: Final = "offboarding-events"
EXPORT_CONTAINER: Final = "dsr-exports"
AUDIT_TABLE: Final = "DsrAudit"
# One append blob per request holding the head of its audit chain after every entry (a version-level
# immutability policy in Azure: infra/app/storage.bicep).
AUDIT_ANCHOR_CONTAINER: Final = "dsr-audit-anchors"
BUDGET_TABLE: Final = "DsrBudget"
CALLBACK_QUEUE: Final = "dsr-callbacks"
CALLBACKS_TABLE: Final = "DsrCallbacks"


class UnresolvedReferenceError(RuntimeError):
    """An app setting still holds a Key Vault reference: the platform could not resolve it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"app setting {name} holds an unresolved Key Vault reference: check the vault, the secret and the "
            "identity's Key Vault Secrets User role"
        )
        self.name = name


class MissingSettingError(RuntimeError):
    """A required app setting is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(f"required app setting {name} is not set")
        self.name = name


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    blob_service_uri: str
    queue_service_uri: str
    table_service_uri: str
    identity_client_id: str | None = None
    arm_base_url: str = DEFAULT_ARM_BASE_URL
    experiments_base_url: str = DEFAULT_EXPERIMENTS_BASE_URL
    modelmanagement_base_url: str = DEFAULT_MODELMANAGEMENT_BASE_URL
    pipelines_base_url: str = DEFAULT_PIPELINES_BASE_URL
    arm_audience: str = DEFAULT_ARM_AUDIENCE
    use_discovery: bool = True
    allowed_hosts: tuple[str, ...] = _csv(DEFAULT_ALLOWED_HOSTS)
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL  # "" = Graph not configured
    match_fields: tuple[str, ...] = _csv(DEFAULT_MATCH_FIELDS)
    pseudonym_key: bytes = field(default=b"", repr=False)
    task_time_budget_seconds: float = 240.0
    max_inprocess_retry_after_seconds: float = 5.0
    http_timeout_seconds: float = 30.0
    status_retry_after_seconds: int = 10
    auto_approve_erasure: bool = False
    auto_approve_whole_workspace_export: bool = False
    allow_workspace_deletion: bool = False
    workspace_purge: bool = True
    arm_workspace_delete_api_version: str = DEFAULT_ARM_WORKSPACE_DELETE_API_VERSION
    arm_v2_api_version: str = DEFAULT_ARM_V2_API_VERSION
    trust_easyauth_headers: bool = False
    delete_verify_attempts: int = 4
    rate_reads_per_second: float = 25.0
    rate_read_burst: float = 250.0
    rate_deletes_per_second: float = 10.0
    rate_delete_burst: float = 200.0
    rate_shared: bool = True
    rate_fallback_instances: int = 4
    offboarding_queue: str = "offboarding-events"
    offboarding_scope: tuple[str, ...] = ()
    offboarding_auto_approve: bool = False
    offboarding_export_first: bool = False
    offboarding_archive_days: int = 30
    offboarding_grace_hours: float = 0.0
    offboarding_dedupe_hours: float = 72.0
    tenant_id: str | None = None
    require_entra_token: bool = False
    entra_audiences: tuple[str, ...] = ()
    entra_issuers: tuple[str, ...] = _csv(DEFAULT_ENTRA_ISSUERS)
    entra_jwks_url: str = DEFAULT_ENTRA_JWKS_URL
    entra_allowed_hosts: tuple[str, ...] = _csv(DEFAULT_ENTRA_ALLOWED_HOSTS)
    package_sas_minutes: int = 15
    package_retention_days: int = 30
    callback_allowed_hosts: tuple[str, ...] = ()
    callback_signing_key: bytes = field(default=b"", repr=False)
    audit_key: bytes = field(default=b"", repr=False)  # b"" = derived from pseudonym_key (see audit_mac_key)
    signing_key_id: str = ""
    key_vault_audience: str = DEFAULT_KEY_VAULT_AUDIENCE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise MissingSettingError(name)
            if value.startswith("@Microsoft.KeyVault("):
                raise UnresolvedReferenceError(name)  # never use the reference's text as a key
            return value

        def optional(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        callback_hosts = _csv(env.get(CALLBACK_ALLOWED_HOSTS, ""))
        return cls(
            blob_service_uri=required(STORAGE_BLOB_URI),
            queue_service_uri=required(STORAGE_QUEUE_URI),
            table_service_uri=required(STORAGE_TABLE_URI),
            identity_client_id=env.get(IDENTITY_CLIENT_ID, "").strip() or None,
            arm_base_url=optional(ARM_BASE_URL, DEFAULT_ARM_BASE_URL).rstrip("/"),
            experiments_base_url=optional(EXPERIMENTS_BASE_URL, DEFAULT_EXPERIMENTS_BASE_URL).rstrip("/"),
            modelmanagement_base_url=optional(
                MODELMANAGEMENT_BASE_URL, DEFAULT_MODELMANAGEMENT_BASE_URL
            ).rstrip("/"),
            pipelines_base_url=optional(PIPELINES_BASE_URL, DEFAULT_PIPELINES_BASE_URL).rstrip("/"),
            arm_audience=optional(ARM_AUDIENCE, DEFAULT_ARM_AUDIENCE),
            use_discovery=_bool(optional(USE_DISCOVERY, "true")),
            allowed_hosts=_csv(optional(ALLOWED_HOSTS, DEFAULT_ALLOWED_HOSTS)),
            # Unset: the public Graph; set to an empty value: no resolution through Graph.
            graph_base_url=env.get(GRAPH_BASE_URL, DEFAULT_GRAPH_BASE_URL).strip().rstrip("/"),
            match_fields=_csv(optional(MATCH_FIELDS, DEFAULT_MATCH_FIELDS)),
            pseudonym_key=required(PSEUDONYM_KEY).encode(),
            task_time_budget_seconds=float(optional(TASK_TIME_BUDGET_SECONDS, "240")),
            max_inprocess_retry_after_seconds=float(optional(MAX_INPROCESS_RETRY_AFTER_SECONDS, "5")),
            http_timeout_seconds=float(optional(HTTP_TIMEOUT_SECONDS, "30")),
            status_retry_after_seconds=int(optional(STATUS_RETRY_AFTER_SECONDS, "10")),
            auto_approve_erasure=_bool(optional(AUTO_APPROVE_ERASURE, "false")),
            auto_approve_whole_workspace_export=_bool(optional(AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT, "false")),
            allow_workspace_deletion=_bool(optional(ALLOW_WORKSPACE_DELETION, "false")),
            workspace_purge=_bool(optional(WORKSPACE_PURGE, "true")),
            arm_workspace_delete_api_version=optional(
                ARM_WORKSPACE_DELETE_API_VERSION, DEFAULT_ARM_WORKSPACE_DELETE_API_VERSION
            ),
            arm_v2_api_version=optional(ARM_V2_API_VERSION, DEFAULT_ARM_V2_API_VERSION),
            trust_easyauth_headers=_bool(optional(TRUST_EASYAUTH_HEADERS, "false")),
            delete_verify_attempts=max(1, int(optional(DELETE_VERIFY_ATTEMPTS, "4"))),
            rate_reads_per_second=float(optional(RATE_READS_PER_SECOND, "25")),
            rate_read_burst=float(optional(RATE_READ_BURST, "250")),
            rate_deletes_per_second=float(optional(RATE_DELETES_PER_SECOND, "10")),
            rate_delete_burst=float(optional(RATE_DELETE_BURST, "200")),
            rate_shared=_bool(optional(RATE_SHARED, "true")),
            rate_fallback_instances=max(1, int(optional(RATE_FALLBACK_INSTANCES, "4"))),
            offboarding_queue=optional(OFFBOARDING_QUEUE, DEFAULT_OFFBOARDING_QUEUE),
            offboarding_scope=_csv(env.get(OFFBOARDING_SCOPE, "")),
            offboarding_auto_approve=_bool(optional(OFFBOARDING_AUTO_APPROVE, "false")),
            offboarding_export_first=_bool(optional(OFFBOARDING_EXPORT_FIRST, "false")),
            offboarding_archive_days=int(optional(OFFBOARDING_ARCHIVE_DAYS, "30")),
            offboarding_grace_hours=float(optional(OFFBOARDING_GRACE_HOURS, "0")),
            offboarding_dedupe_hours=float(optional(OFFBOARDING_DEDUPE_HOURS, "72")),
            tenant_id=env.get(TENANT_ID, "").strip().lower() or None,
            require_entra_token=_bool(optional(REQUIRE_ENTRA_TOKEN, "false")),
            entra_audiences=_csv(env.get(ENTRA_AUDIENCES, "")),
            entra_issuers=_csv(optional(ENTRA_ISSUERS, DEFAULT_ENTRA_ISSUERS)),
            entra_jwks_url=optional(ENTRA_JWKS_URL, DEFAULT_ENTRA_JWKS_URL),
            entra_allowed_hosts=_csv(optional(ENTRA_ALLOWED_HOSTS, DEFAULT_ENTRA_ALLOWED_HOSTS)),
            package_sas_minutes=min(60, max(1, int(optional(PACKAGE_SAS_MINUTES, "15")))),
            package_retention_days=max(1, int(optional(PACKAGE_RETENTION_DAYS, "30"))),
            callback_allowed_hosts=callback_hosts,
            callback_signing_key=required(CALLBACK_SIGNING_KEY).encode() if callback_hosts else b"",
            audit_key=required(AUDIT_KEY).encode() if env.get(AUDIT_KEY, "").strip() else b"",
            signing_key_id=env.get(SIGNING_KEY_ID, "").strip().rstrip("/"),
            key_vault_audience=optional(KEY_VAULT_AUDIENCE, DEFAULT_KEY_VAULT_AUDIENCE),
        )

    @property
    def audit_mac_key(self) -> bytes:
        """The HMAC key of the audit chain: DSR_AUDIT_KEY, or one derived from the pseudonym key (another
        purpose, so another key: HMAC-SHA256(pseudonym key, "dsr-audit-chain"))."""
        if self.audit_key:
            return self.audit_key
        return hmac.new(self.pseudonym_key, b"dsr-audit-chain", hashlib.sha256).digest()

    def service_base(self, service: str) -> str:
        """The configured base URL template of an Azure ML service key (see catalog.SERVICES)."""
        return {
            "arm": self.arm_base_url,
            "experiments": self.experiments_base_url,
            "modelmanagement": self.modelmanagement_base_url,
            "pipelines": self.pipelines_base_url,
        }[service]
