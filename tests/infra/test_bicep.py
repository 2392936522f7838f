"""The Bicep templates parse, pass checkov's Bicep scan, and keep the shape the product depends on."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scripts.check_bicep import bicep_files, parse_errors
from shared.aml import catalog
from shared.core import settings as names
from tests.infra.bicep import FUNCTION_BICEP, INFRA, ROOT, parse

IAC_VENV = ROOT / ".local" / "iac-venv"
CHECKOV = IAC_VENV / "bin" / "checkov"


@pytest.fixture(scope="session")
def checkov() -> dict[str, Any]:
    """One offline checkov Bicep scan of infra/ for the session (about 5 s on two cores)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: run `make install` (it builds the IaC venv)")
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 (our own venv's checkov, fixed arguments)
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = json.loads(done.stdout)
    report["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print(f"checkov: {report['summary']} in {report['elapsed_seconds']} s")
    return report


def test_every_bicep_file_parses() -> None:
    files = bicep_files()

    assert len(files) >= 10
    assert parse_errors(files) == {}


def test_checkov_reports_no_failed_check(checkov: dict[str, Any]) -> None:
    summary = checkov["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in checkov["results"]["failed_checks"]
    ]

    assert summary["parsing_errors"] == 0  # checkov's own parser (an older pycep) read every file
    assert failed == []
    assert summary["passed"] >= 30
    assert summary["resource_count"] >= 50


def test_every_checkov_skip_gives_its_reason(checkov: dict[str, Any]) -> None:
    skipped = checkov["results"]["skipped_checks"]

    assert skipped, "expected the documented skips (see docs/deploy.md)"
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "").strip()) >= 20, check["check_id"]


def test_checkov_skips_are_inline_in_a_resource_block() -> None:
    # A skip outside a resource block is ignored by checkov; one inside it must name a check and a reason.
    for path in bicep_files():
        depth = 0
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                assert depth >= 1, f"{path.name}:{number}: skip outside a resource block"
                assert re.search(r"checkov:skip=CKV2?_[A-Z]+_\d+: \S", line), f"{path.name}:{number}"
            code = line.split("//", 1)[0]
            depth += code.count("{") - code.count("}")


def _resources(path: Path) -> dict[str, Any]:
    """Resources by symbolic name; a conditional resource's config is unwrapped from its condition."""
    resources = copy.deepcopy(parse(path)["resources"])
    for resource in resources.values():
        if "condition" in resource["config"]:
            resource["config"] = resource["config"]["config"]
    return resources


def test_role_assignments_are_named_by_guid_for_a_service_principal() -> None:
    assignments = [
        (path.name, name, resource["config"])
        for path in bicep_files()
        for name, resource in _resources(path).items()
        if resource["type"] == "Microsoft.Authorization/roleAssignments"
    ]

    assert len(assignments) >= 8
    for file, name, config in assignments:
        assert config["name"]["function"]["type"] == "guid", (file, name)
        assert len(config["name"]["function"]["parameters"]) == 3, (file, name)
        assert config["properties"]["principalType"] == "ServicePrincipal", (file, name)


def test_custom_role_names_every_endpoint_it_serves() -> None:
    text = (INFRA / "app" / "aml-role.bicep").read_text()
    variables = parse(INFRA / "app" / "aml-role.bicep")["variables"]
    actions = variables["readActions"]["value"] + variables["deleteActions"]["value"]

    # Every action is an Azure ML workspace operation, written out (no wildcard)
    assert all(
        a.startswith("Microsoft.MachineLearningServices/workspaces/") and "*" not in a for a in actions
    )
    # The workspace delete is not among them: it comes only with allowWorkspaceDeletion
    assert "Microsoft.MachineLearningServices/workspaces/delete" not in actions
    assert "allowWorkspaceDeletion ? ['Microsoft.MachineLearningServices/workspaces/delete'," in text
    # No secrets: no listKeys / listsecrets
    assert not any(re.search(r"list(keys|secrets)", a, re.IGNORECASE) for a in actions)
    # Every endpoint of the catalog is accounted for in a comment
    for endpoint in catalog.ENDPOINTS:
        assert re.search(rf"\b{endpoint}\b", text), (
            f"aml-role.bicep does not say which action serves {endpoint}"
        )


def test_storage_creates_every_queue_table_and_container_the_code_names() -> None:
    variables = parse(INFRA / "app" / "storage.bicep")["variables"]
    queues = set(variables["queueNames"]["value"])
    tables = set(variables["tableNames"]["value"])

    for queue in (names.PLAN_QUEUE, names.WORK_QUEUE, names.FINALIZE_QUEUE):
        assert {queue, f"{queue}-poison"} <= queues
    # The offboarding queue is a setting: main.bicep passes the same parameter to storage and app settings.
    assert {"offboardingQueueName", "${offboardingQueueName}-poison"} <= queues
    assert parse(INFRA / "main.bicep")["parameters"]["offboardingQueueName"]["default"] == (
        names.DEFAULT_OFFBOARDING_QUEUE
    )
    table_constants = {value for key, value in vars(names).items() if key.endswith("_TABLE")}
    assert table_constants == tables
    assert variables["exportContainerName"]["value"] == names.EXPORT_CONTAINER


def test_storage_is_keyless_and_private() -> None:
    account = _resources(INFRA / "app" / "storage.bicep")["account"]["config"]["properties"]

    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    assert account["publicNetworkAccess"] == "Disabled"


def test_export_packages_expire_after_the_retention_parameter() -> None:
    policy = _resources(INFRA / "app" / "storage.bicep")["lifecycle"]["config"]["properties"]["policy"]
    rule = {r["name"]: r for r in policy["rules"]}["delete-export-packages"]

    assert rule["definition"]["filters"]["prefixMatch"] == ["${exportContainerName}/"]
    assert rule["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": "exportRetentionDays"
    }


def test_audit_anchors_are_append_only_under_a_version_level_immutability_policy() -> None:
    resources = _resources(INFRA / "app" / "storage.bicep")
    variables = parse(INFRA / "app" / "storage.bicep")["variables"]
    container = resources["auditAnchorContainer"]["config"]
    policy = resources["auditAnchorPolicy"]["config"]

    # The container the code appends anchors to, with version-level WORM (which needs blob versioning)
    assert variables["auditAnchorContainerName"]["value"] == names.AUDIT_ANCHOR_CONTAINER
    assert container["name"] == "auditAnchorContainerName"
    assert container["properties"]["immutableStorageWithVersioning"] == {"enabled": True}
    assert container["properties"]["publicAccess"] == "None"
    assert resources["blobService"]["config"]["properties"]["isVersioningEnabled"] is True
    # Its default policy: every version immutable for the retention parameter; appends to the append blob allowed
    assert policy["name"] == "default"
    assert policy["properties"] == {
        "immutabilityPeriodSinceCreationInDays": "auditAnchorRetentionDays",
        "allowProtectedAppendWrites": True,
    }
    assert parse(INFRA / "main.bicep")["parameters"]["auditAnchorRetentionDays"]["default"] >= 365
    # Versioning keeps no replaced block blob (a purged export package) past a day; append blobs untouched
    rules = resources["lifecycle"]["config"]["properties"]["policy"]["rules"]
    versions = {r["name"]: r for r in rules}["delete-previous-versions"]["definition"]
    assert versions["filters"] == {"blobTypes": ["blockBlob"]}
    assert versions["actions"] == {"version": {"delete": {"daysAfterCreationGreaterThan": 1}}}


def test_the_package_signing_key_stays_in_key_vault_and_the_app_may_only_sign_with_it() -> None:
    key = _resources(INFRA / "app" / "keyvault.bicep")["signingKey"]["config"]["properties"]

    # An EC P-256 key (ES256) created in the vault, not exportable, for sign and verify only
    assert (key["kty"], key["curveName"]) == ("EC", "P-256")
    assert key["keyOps"] == ["sign", "verify"]
    assert key["attributes"] == {"enabled": True, "exportable": False}
    # The identity holds Key Vault Crypto User on that key alone, and no other role on keys or the vault
    rbac = _resources(INFRA / "app" / "rbac.bicep")
    crypto = rbac["signingKeyCryptoUser"]["config"]
    assert _nested(crypto["scope"]) == ("vault", "signingKey")
    assert '"operand_2": "keyVaultCryptoUser"' in json.dumps(crypto["properties"]["roleDefinitionId"])
    roles = parse(INFRA / "app" / "rbac.bicep")["variables"]["roles"]["value"]
    assert roles["keyVaultCryptoUser"] == "12338af0-0e69-4776-bea7-57ae8d297424"
    scopes = [r["config"]["scope"] for r in rbac.values() if r["type"].endswith("roleAssignments")]
    assert "vault" not in scopes
    assert sum(json.dumps(r["config"]).count("keyVaultCryptoUser") > 0 for r in rbac.values()) == 1
    # The audit key secret is read by the identity (its Key Vault reference), as the pseudonym key is
    assert _nested(rbac["auditSecretUser"]["config"]["scope"]) == ("vault", "auditKeySecret")


def _nested(expression: Any) -> tuple[str, str]:
    """`parent::child` as pycep parses it."""
    operands = expression["operator"]["operands"]
    return operands["operand_1"], operands["operand_2"]


def test_function_app_runs_flex_consumption_python_as_the_code_expects() -> None:
    resources = _resources(FUNCTION_BICEP)
    plan = resources["plan"]["config"]
    site = resources["app"]["config"]
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["python_version"]

    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": python}
    assert f"Python {python}" in (ROOT / "README.md").read_text()
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"]["type"] == "UserAssignedIdentity"


def test_key_vault_is_rbac_mode_with_purge_protection() -> None:
    vault = _resources(INFRA / "app" / "keyvault.bicep")["vault"]["config"]["properties"]

    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True


def test_monitoring_has_local_auth_off() -> None:
    resources = _resources(INFRA / "app" / "monitoring.bicep")

    assert resources["applicationInsights"]["config"]["properties"]["DisableLocalAuth"] is True
    assert resources["logAnalytics"]["config"]["properties"]["features"]["disableLocalAuth"] is True


def test_parameters_file_holds_only_environment_placeholders() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main_parameters = parse(INFRA / "main.bicep")["parameters"]

    for name, entry in parameters.items():
        assert name in main_parameters, name
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), (name, entry["value"])


def test_azd_service_is_the_function_app() -> None:
    text = (ROOT / "azure.yaml").read_text()

    assert re.search(r"^services:\n  api:\n(    .*\n)*    host: function$", text, re.MULTILINE)
    assert "'azd-service-name': serviceName" in FUNCTION_BICEP.read_text()
    assert parse(INFRA / "main.bicep")["modules"]["functionApp"]["config"]["params"]["serviceName"] == "api"


def test_deployment_package_leaves_out_infra_scripts_and_tests() -> None:
    ignored = (ROOT / ".funcignore").read_text().split()

    assert {"infra/", "scripts/", "tests/", "azure.yaml"} <= set(ignored)
