"""Exports never carry credentials."""

from shared.aml.scrub import REDACTED, scrub


def test_secret_fields_are_redacted_at_any_depth():
    record = {
        "name": "blobstore",
        "azureStorageSection": {
            "accountName": "acct",
            "accountKey": "c2VjcmV0a2V5",
            "sasToken": "?sv=2020&sig=abc",
            "credentialType": "AccountKey",
        },
        "servicePrincipal": {"clientId": "id", "clientSecret": "s3cr3t", "certificate": "MIIB..."},
        "sql": {"password": "p", "connectionString": "Server=x;Password=p"},
        "includeSecret": False,
        "list": [{"apiKey": "k"}],
    }
    clean, count = scrub(record)
    assert clean["azureStorageSection"] == {
        "accountName": "acct",
        "accountKey": REDACTED,
        "sasToken": REDACTED,
        "credentialType": "AccountKey",
    }
    assert clean["servicePrincipal"] == {"clientId": "id", "clientSecret": REDACTED, "certificate": REDACTED}
    assert clean["sql"] == {"password": REDACTED, "connectionString": REDACTED}
    assert clean["list"] == [{"apiKey": REDACTED}]
    assert clean["includeSecret"] is False
    assert count == 7
    assert record["sql"]["password"] == "p"  # the input is not changed


def test_secret_looking_values_are_redacted_wherever_they_are():
    clean, count = scrub(
        {"description": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=xyz", "n": None}
    )
    assert clean == {"description": REDACTED, "n": None}
    assert count == 1


def test_null_secrets_and_ordinary_records_pass_unchanged():
    record = {"accountKey": None, "runId": "r1", "metrics": [1, 2], "tags": {"team": "nlp"}}
    assert scrub(record) == (record, 0)
