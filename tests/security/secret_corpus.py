# ruff: noqa: E501 (data: one credential shape a line)
"""Credential shapes an Azure ML record may carry (run properties, tags, descriptions, command lines, datastore
and connection records), each fake but in its issuer's format, and ordinary values that must survive.

`SHAPES`: (label, field, value, secret). `field` is the name it typically sits under (None: a free-text
field); `secret` is the part that must never reach an exported file. `by_value` shapes are caught wherever
they stand, so the tests also plant them under an innocuous name; the others are secret only by their name
(a bare password) and are planted under it. Shapes follow the issuers' documented formats and public
secret-scanner rule sets (gitleaks, GitHub secret scanning patterns).
"""

from __future__ import annotations

from typing import NamedTuple

_ACCOUNT_KEY = ("Zm9vYmFyRkFLRQ+/" * 6)[:86] + "=="  # 64 bytes in base64, the shape of a storage key
_JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJvaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAifQ"
    ".c2lnbmF0dXJlLW5vdC1yZWFsLWZvci10ZXN0cw"
)
_PEM_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakefakefakefakefakefakefake\n"
    "-----END RSA PRIVATE KEY-----"
)


class Shape(NamedTuple):
    label: str
    field: str | None
    value: str
    secret: str
    by_value: bool = True


SHAPES: list[Shape] = [
    # Azure
    Shape(
        "storage connection string",
        "connection",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={_ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        _ACCOUNT_KEY,
    ),
    Shape("storage account key alone", "storageCredential", _ACCOUNT_KEY, _ACCOUNT_KEY),
    Shape("account-key option", None, f"az storage blob upload --account-key {_ACCOUNT_KEY}", _ACCOUNT_KEY),
    Shape(
        "service bus SharedAccessKey",
        "endpoint",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=Sb1xFAKEfakeFAKEfake0123456789abcdEFGHij+/=",
        "Sb1xFAKEfakeFAKEfake0123456789abcdEFGHij+/=",
    ),
    Shape(
        "event hubs SharedAccessSignature",
        "target",
        "Endpoint=sb://eh.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=EhSigFAKE0123456789abcdef%3D&se=1700000000&skn=send",
        "EhSigFAKE0123456789abcdef",
    ),
    Shape(
        "SAS URL",
        "sasUrl",
        "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2B%2F%3D",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    Shape(
        "SAS query starting with sig",
        "query",
        "sig=StartSigFAKE0123456789abcdefGHIJ%3D&se=2026-01-01&sp=r",
        "StartSigFAKE0123456789abcdefGHIJ",
    ),
    Shape(
        "SAS URL-encoded in a URL",
        "redirect",
        "https://app.example.com/cb?next=https%3A%2F%2Facct.blob.core.windows.net%2Fc%3Fsv%3D2022%26sig%3DEncSigFAKE0123456789abcd%26se%3D2026",
        "EncSigFAKE0123456789abcd",
    ),
    Shape(
        "entra client secret",
        "clientSecret",
        "Abc8Q~fakeFAKEfake0123456789_fakeFAKE.-x",
        "Abc8Q~fakeFAKEfake0123456789_fakeFAKE.-x",
    ),
    Shape(
        "entra client secret in text",
        None,
        "created app, secret Xy38Q~AbCdEfGhIjKlMnOpQrStUvWxYz0123456 keep safe",
        "Xy38Q~AbCdEfGhIjKlMnOpQrStUvWxYz0123456",
    ),
    Shape(
        "cosmos connection string",
        None,
        f"AccountEndpoint=https://db.documents.azure.com:443/;AccountKey={_ACCOUNT_KEY};",
        _ACCOUNT_KEY,
    ),
    Shape(
        "ADO.NET SQL connection string",
        None,
        "Server=tcp:srv.database.windows.net,1433;Database=db;User ID=admin;Password=SqlPassw0rdFAKE!;Encrypt=true",
        "SqlPassw0rdFAKE!",
    ),
    Shape(
        "ODBC connection string pwd",
        None,
        "Driver={ODBC Driver 18};Server=srv;Uid=admin;Pwd=OdbcFAKEpass99;",
        "OdbcFAKEpass99",
    ),
    Shape(
        "redis connection string",
        None,
        "cache.redis.cache.windows.net:6380,password=RedisFAKEkey0123456789=,ssl=True",
        "RedisFAKEkey0123456789",
    ),
    Shape(
        "function key in URL",
        None,
        "https://fn.azurewebsites.net/api/run?code=FnKeyFAKE0123456789abcdefghij==",
        "FnKeyFAKE0123456789abcdefghij",
    ),
    # URLs with user info
    Shape(
        "postgres URL",
        "DATABASE_URL",
        "postgresql://user:PgFAKEpwd123@db.example.com:5432/app",
        "PgFAKEpwd123",
    ),
    Shape("mysql URL", None, "mysql://root:MyFAKEsql456@10.0.0.4/db", "MyFAKEsql456"),
    Shape("mongodb URL", None, "mongodb+srv://app:MongoFAKE789@cluster0.example.net/test", "MongoFAKE789"),
    Shape("redis URL", None, "redis://:RedisURLFAKE321@cache:6379/0", "RedisURLFAKE321"),
    Shape(
        "https basic auth URL", None, "https://builder:HttpFAKEpass@pkgs.example.com/simple", "HttpFAKEpass"
    ),
    Shape(
        "git URL with token",
        None,
        "https://x-access-token:GitURLFAKEtoken@github.com/org/repo.git",
        "GitURLFAKEtoken",
    ),
    # env-style assignments and command lines
    Shape(
        "HF_TOKEN assignment",
        None,
        "HF_TOKEN=hf_FAKEfakeFAKEfakeFAKEfakeFAKEfake12 python train.py",
        "hf_FAKEfakeFAKEfakeFAKEfakeFAKEfake12",
    ),
    Shape(
        "access_token field", "access_token", "ya29.FAKE-access-token-value", "ya29.FAKE-access-token-value"
    ),
    Shape(
        "access_token in JSON text",
        None,
        '{"access_token": "AtFAKEvalue0123456789", "expires_in": 3599}',
        "AtFAKEvalue0123456789",
    ),
    Shape(
        "refresh_token query",
        None,
        "grant_type=refresh_token&refresh_token=RtFAKE0123456789abc&client_id=x",
        "RtFAKE0123456789abc",
    ),
    Shape(
        "password option", None, "python load.py --user admin --password CliFAKEpass1 --db x", "CliFAKEpass1"
    ),
    Shape(
        "api key option",
        None,
        "deploy --api-key ApiOptFAKE0123456789 --region westeurope",
        "ApiOptFAKE0123456789",
    ),
    Shape("token option equals", None, "tool sync --token=TokOptFAKE0123456789", "TokOptFAKE0123456789"),
    Shape(
        "OPENAI_API_KEY assignment",
        None,
        "export OPENAI_API_KEY=EnvKeyFAKE0123456789",
        "EnvKeyFAKE0123456789",
    ),
    Shape(
        "AWS secret assignment",
        None,
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    Shape("db password assignment", None, "DB_PASSWORD: DbEnvFAKE0123", "DbEnvFAKE0123"),
    Shape(
        "client_secret form",
        None,
        "client_id=abc&client_secret=CsFormFAKE0123456789&scope=x",
        "CsFormFAKE0123456789",
    ),
    # Authorization values, JWT, PEM
    Shape(
        "bearer header",
        None,
        "Authorization: Bearer eyFAKE0123456789abcdefghijklmnop",
        "eyFAKE0123456789abcdefghijklmnop",
    ),
    Shape(
        "basic header",
        None,
        "Authorization: Basic dXNlcjpGQUtFcGFzc3dvcmQxMjM=",
        "dXNlcjpGQUtFcGFzc3dvcmQxMjM=",
    ),
    Shape("JWT", None, f"token used: {_JWT}", _JWT),
    Shape("PEM private key", None, _PEM_KEY, "MIIEowIBAAKCAQEAfakefakefakefakefakefakefake"),
    Shape(
        "PEM private key cut off",
        None,
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqFAKEcutoff",
        "MIIEvQIBADANBgkqFAKEcutoff",
    ),
    # well-known prefixes
    Shape(
        "GitHub classic PAT",
        None,
        "ghp_FAKEfakeFAKEfakeFAKEfakeFAKEfake1234",
        "ghp_FAKEfakeFAKEfakeFAKEfakeFAKEfake1234",
    ),
    Shape(
        "GitHub fine-grained PAT",
        None,
        "github_pat_11FAKEFAKE0_fakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfake",
        "github_pat_11FAKEFAKE0_fakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfake",
    ),
    Shape(
        "GitHub app token",
        None,
        "ghs_FAKEfakeFAKEfakeFAKEfakeFAKEfake5678",
        "ghs_FAKEfakeFAKEfakeFAKEfakeFAKEfake5678",
    ),
    Shape(
        "Hugging Face token",
        None,
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    ),
    Shape(
        "OpenAI project key",
        None,
        "sk-proj-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKE0123",
        "sk-proj-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKE0123",
    ),
    Shape(
        "OpenAI legacy key",
        None,
        "sk-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKE0123",
        "sk-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKE0123",
    ),
    Shape(
        "Anthropic key",
        None,
        "sk-ant-api03-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfake",
        "sk-ant-api03-FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfake",
    ),
    Shape("AWS access key id", None, "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    Shape(
        "Slack bot token",
        None,
        "xoxb-123456789012-1234567890123-FAKEfakeFAKEfake",
        "xoxb-123456789012-1234567890123-FAKEfakeFAKEfake",
    ),
    Shape(
        "Slack webhook",
        None,
        "https://hooks.slack.com/services/T000FAKE/B000FAKE/FAKEfakeFAKEfake",
        "T000FAKE/B000FAKE/FAKEfakeFAKEfake",
    ),
    Shape(
        "Teams webhook",
        None,
        "https://contoso.webhook.office.com/webhookb2/FAKE-guid@tenant/IncomingWebhook/abc/def",
        "FAKE-guid@tenant/IncomingWebhook/abc/def",
    ),
    Shape(
        "Discord webhook", None, "https://discord.com/api/webhooks/123456/FAKEfakeFAKE", "123456/FAKEfakeFAKE"
    ),
    Shape("Stripe secret key", None, "sk_live_FAKEfakeFAKEfake0123", "sk_live_FAKEfakeFAKEfake0123"),
    Shape(
        "Google API key",
        None,
        "AIzaSyFAKEfakeFAKEfakeFAKEfakeFAKEfake0",
        "AIzaSyFAKEfakeFAKEfakeFAKEfakeFAKEfake0",
    ),
    Shape("GitLab PAT", None, "glpat-FAKEfakeFAKEfake0123", "glpat-FAKEfakeFAKEfake0123"),
    Shape(
        "npm token",
        None,
        "npm_FAKEfakeFAKEfakeFAKEfakeFAKEfake0123",
        "npm_FAKEfakeFAKEfakeFAKEfakeFAKEfake0123",
    ),
    Shape(
        "PyPI token",
        None,
        "pypi-AgEIcHlwaS5vcmcFAKEfakeFAKEfakeFAKEfake",
        "pypi-AgEIcHlwaS5vcmcFAKEfakeFAKEfakeFAKEfake",
    ),
    Shape(
        "SendGrid key",
        None,
        "SG.FAKEfakeFAKEfakeFAKEfa.FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAK",
        "SG.FAKEfakeFAKEfakeFAKEfa.FAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAK",
    ),
    Shape(
        "Databricks token",
        None,
        "dapi0123456789abcdef0123456789abcdef",
        "dapi0123456789abcdef0123456789abcdef",
    ),
    Shape("Twilio API key", None, "SK0123456789abcdef0123456789abcdef", "SK0123456789abcdef0123456789abcdef"),
    # secret only by its name
    Shape("bare password", "password", "hunter2FAKE", "hunter2FAKE", by_value=False),
    Shape("pwd field", "pwd", "PwdFieldFAKE", "PwdFieldFAKE", by_value=False),
    Shape("secret object", "secret", '{"value": "SecretObjFAKE"}', "SecretObjFAKE", by_value=False),
    Shape("api key field", "apiKey", "ApiKeyFieldFAKE", "ApiKeyFieldFAKE", by_value=False),
    Shape("x-functions-key", "x-functions-key", "FnHeaderFAKEkey", "FnHeaderFAKEkey", by_value=False),
    Shape("cookie", "cookie", "session=CookieFAKEvalue", "CookieFAKEvalue", by_value=False),
    Shape("passphrase", "keyPassphrase", "PassphraseFAKE", "PassphraseFAKE", by_value=False),
]

# Nested shapes: the secret sits in a value inside a secret-named object or list.
NESTED: list[tuple[str, dict[str, object], str]] = [
    ("value inside a secret object", {"secret": {"value": "NestedSecretFAKE"}}, "NestedSecretFAKE"),
    ("password list", {"password": ["ListPwdFAKE1", "ListPwdFAKE2"]}, "ListPwdFAKE"),
    ("keys list", {"keys": [{"value": "KeysListFAKE"}]}, "KeysListFAKE"),
    (
        "credentials object",
        {"credentials": {"credentialsType": "ServicePrincipal", "secrets": {"clientSecret": "CredObjFAKE"}}},
        "CredObjFAKE",
    ),
    ("storageCredential object", {"storageCredential": {"key": "StorageCredFAKE"}}, "StorageCredFAKE"),
]

# Ordinary values the scrubber must keep as they are.
ORDINARY: dict[str, object] = {
    "runName": "bert-finetune_lr-3e-5_batch-32",
    "experimentName": "sklearn-classifier-comparison",
    "description": "Basic regression-model-benchmark on the housing data",
    "metric": 0.9731,
    "tokens_processed": 12_345_678,
    "max_new_tokens": "512",
    "tokenizer": "bert-base-uncased",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "md5": "XUFAKxNJKMTKsgRTCvl2Lg==",
    "dataContainerId": "dcid.alice_run_00012_1700000000_abcdef12",
    "startTimeUtc": "2024-01-01T00:00:00.000Z",
    "scoringUri": "https://endpoint.westeurope.inference.ml.azure.com/score",
    "gitRepo": "https://github.com/org/repo.git",
    "command": "python train.py --epochs 3 --learning-rate 0.001 --data ${{inputs.data}}",
    "keyVault": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
    "hasPassword": False,
}
