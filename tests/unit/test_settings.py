import pytest

from shared.core import settings as names
from shared.core.settings import MissingSettingError, Settings, UnresolvedReferenceError

BASE = {
    names.STORAGE_BLOB_URI: "https://acct.blob.core.windows.net",
    names.STORAGE_QUEUE_URI: "https://acct.queue.core.windows.net",
    names.STORAGE_TABLE_URI: "https://acct.table.core.windows.net",
    names.PSEUDONYM_KEY: "k" * 40,
}


def test_defaults_are_the_public_cloud_and_safe_choices():
    s = Settings.from_env(BASE)
    assert s.arm_base_url == "https://management.azure.com"
    assert s.experiments_base_url == "https://{location}.experiments.azureml.net"
    assert "management.azure.com" in s.allowed_hosts
    assert (s.auto_approve_erasure, s.allow_workspace_deletion, s.trust_easyauth_headers) == (
        False,
        False,
        False,
    )
    assert s.auto_approve_whole_workspace_export is False
    on = Settings.from_env({**BASE, names.AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT: "true"})
    assert on.auto_approve_whole_workspace_export is True
    assert (s.rate_reads_per_second, s.rate_read_burst, s.rate_deletes_per_second) == (25.0, 250.0, 10.0)


def test_a_missing_required_setting_is_named():
    with pytest.raises(MissingSettingError, match=names.STORAGE_TABLE_URI):
        Settings.from_env({k: v for k, v in BASE.items() if k != names.STORAGE_TABLE_URI})


def test_an_unresolved_key_vault_reference_is_never_used_as_the_key():
    env = {
        **BASE,
        names.PSEUDONYM_KEY: "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/p/)",
    }
    with pytest.raises(UnresolvedReferenceError, match=names.PSEUDONYM_KEY):
        Settings.from_env(env)


def test_the_audit_key_is_its_own_setting_or_derived_from_the_pseudonym_key():
    derived = Settings.from_env(BASE).audit_mac_key
    # Unset: a key of its own derived from the pseudonym key (never the pseudonym key itself)
    assert len(derived) == 32
    assert derived != BASE[names.PSEUDONYM_KEY].encode()
    assert Settings.from_env({**BASE, names.PSEUDONYM_KEY: "j" * 40}).audit_mac_key != derived
    # Set: that key
    assert Settings.from_env({**BASE, names.AUDIT_KEY: "a" * 40}).audit_mac_key == b"a" * 40
    # An unresolved Key Vault reference is refused, as for every secret
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/a/)"
    with pytest.raises(UnresolvedReferenceError, match=names.AUDIT_KEY):
        Settings.from_env({**BASE, names.AUDIT_KEY: reference})


def test_packages_are_signed_only_with_a_configured_key_vault_key():
    assert Settings.from_env(BASE).signing_key_id == ""
    assert "*.vault.azure.net" in Settings.from_env(BASE).allowed_hosts
    key = "https://kv-dsr.vault.azure.net/keys/dsr-package-signing"
    signed = Settings.from_env({**BASE, names.SIGNING_KEY_ID: key + "/"})
    assert (signed.signing_key_id, signed.key_vault_audience) == (key, "https://vault.azure.net/.default")
