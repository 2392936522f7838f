"""The Function App's app settings in Bicep are exactly the settings the code reads, with the code's defaults."""

from __future__ import annotations

import json

from tests.infra.bicep import (
    MAIN_BICEP,
    PLATFORM_SETTINGS,
    as_setting_text,
    bicep_app_settings,
    code_settings,
    env_reads,
    main_param_default,
    parse,
    setting_param,
    source_files,
)

# App settings whose value the deployment computes (no parameter with a default to compare with the code's).
COMPUTED = {
    "DSR_TRUST_EASYAUTH_HEADERS": "true exactly when App Service Authentication is on (apiEntraClientId)",
    "DSR_REQUIRE_ENTRA_TOKEN": "true exactly when the API has an Entra app registration (apiEntraClientId)",
}


def test_bicep_app_settings_are_the_code_settings_plus_the_platform_ones() -> None:
    # Given the settings shared/core/settings.py names and the app settings function.bicep deploys
    in_code = code_settings()
    in_bicep = set(bicep_app_settings())

    # Then they are the same set (the Application Insights settings, which the platform reads too, aside)
    assert in_bicep - PLATFORM_SETTINGS == in_code - PLATFORM_SETTINGS, (
        f"only in Bicep: {sorted(in_bicep - PLATFORM_SETTINGS - in_code)}; "
        f"only in the code: {sorted(in_code - in_bicep)}"
    )
    assert in_bicep >= PLATFORM_SETTINGS


def test_every_setting_the_code_reads_is_named_in_settings_module() -> None:
    # Given every environment read in shared/ and function_app.py
    reads = env_reads(source_files())

    # Then each one is a setting of shared/core/settings.py (so the set above is complete), except the standard
    # variables the HTTP libraries themselves honour (a CA bundle; unset in Azure, where the public CAs apply)
    library = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    assert reads, "found no environment read: the source scan is broken"
    assert set(reads) - library <= code_settings(), sorted(set(reads) - library - code_settings())


def test_settings_with_a_default_get_the_same_default_from_main_bicep() -> None:
    # Given the defaults the code applies (optional(NAME, default)) and the app settings built from parameters
    defaults = {name: default for name, default in env_reads(source_files()).items() if default}
    settings = bicep_app_settings()
    module_params = parse(MAIN_BICEP)["modules"]["functionApp"]["config"]["params"]
    compared = 0

    for name, code_default in sorted(defaults.items()):
        if name in COMPUTED:
            continue
        param = setting_param(settings[name])
        assert param is not None, f"{name}: not built from a parameter; add it to COMPUTED with the reason"
        passed = module_params[param]
        assert isinstance(passed, str), f"{name}: main.bicep passes an expression to {param}"
        bicep_default = main_param_default(passed)

        # Then the deployed default is the code's default
        assert as_setting_text(bicep_default) == code_default, (
            f"{name}: main.bicep param {passed} defaults to {bicep_default!r}, the code to {code_default!r}"
        )
        compared += 1

    assert compared >= 10


def test_storage_connection_is_identity_based() -> None:
    settings = bicep_app_settings()

    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["DSR_IDENTITY_CLIENT_ID"] == "identityClientId"
    assert not any(name.endswith(("ConnectionString", "AccountKey")) for name in settings)
    assert "AzureWebJobsStorage" not in settings  # no connection string


def test_pseudonym_key_is_a_key_vault_reference() -> None:
    assert (
        bicep_app_settings()["DSR_PSEUDONYM_KEY"] == "@Microsoft.KeyVault(SecretUri=${pseudonymKeySecretUri})"
    )


def test_audit_key_is_a_key_vault_reference_and_the_signing_key_a_key_vault_key() -> None:
    settings = bicep_app_settings()
    params = parse(MAIN_BICEP)["modules"]["functionApp"]["config"]["params"]

    assert settings["DSR_AUDIT_KEY"] == "@Microsoft.KeyVault(SecretUri=${auditKeySecretUri})"
    assert "auditKeySecretUri" in json.dumps(params["auditKeySecretUri"])
    assert settings["DSR_SIGNING_KEY_ID"] == "signingKeyId"
    assert "signingKeyId" in json.dumps(params["signingKeyId"])
    assert "keyVault" in json.dumps(params["signingKeyId"])


def test_application_insights_uses_entra_authentication() -> None:
    settings = bicep_app_settings()

    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
