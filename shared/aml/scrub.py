"""Keep credentials out of exports: every record is scrubbed before it is written.

Datastore reads already ask `includeSecret=false`; this is the second line, in two ways, at any depth:

- By name: a field whose name says it holds a secret (keys, tokens, passwords, secrets, credentials, SAS,
  signatures, connection strings, certificates, cookies) loses its whole value, a nested object or list
  included (`{"secret": {"value": ...}}`, `"keys": [{"value": ...}]`). Booleans stay (`"hasPassword": false`
  tells nothing), as do empty values.
- By value: in any string, wherever it stands, the secret part of a connection string (`AccountKey=`,
  `SharedAccessKey=`, `Password=`, `pwd=`), an assignment or command-line option naming a secret
  (`HF_TOKEN=...`, `--api-key ...`), the user info of a URL (`postgresql://user:pwd@host`), a SAS signature
  (`sig=`, `sig%3D`), a Functions key or OAuth code in a query (`?code=`), an `Authorization` value
  (`Bearer ...`, `Basic ...`), a JWT, a PEM block, an Azure storage key (88 base64 characters), an Entra
  client secret, a secret webhook URL, and tokens with a well-known prefix (GitHub, Hugging Face, OpenAI,
  Anthropic, AWS, Slack, Stripe, Google, GitLab, npm, PyPI, SendGrid, Databricks, ...). Only the secret part
  is replaced: a command line keeps its other arguments.

`scrub` returns the clean copy and the paths it redacted (`properties.HF_TOKEN`, `tags[2]`), which the task
writes into the exported record's envelope (`redacted`), so a reader sees where something was taken out.
tests/security/secret_corpus.py holds the shapes this must catch (and ordinary values it must keep).
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[redacted by aml-dsr]"

_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|(^|[_.-])(pwd|pass)$|secret|private_?key|account_?key|access_?key|api_?key|apikey"
    r"|auth_?key|master_?key|signing_?key|encryption_?key|shared_?access|^sas($|_?token|_?url|_?uri)|sas_?token"
    r"|^sig$|signature$|connection_?string|conn_?str|credential|token$|^auth(orization)?$|cookie|certificate"
    r"|^cert$|cert_?(data|pem|value)|^keys?$|[_.-]key$|primary_?key|secondary_?key|client_?assertion|bearer",
    re.IGNORECASE,
)

# Each rule: the substrings one of which a string must hold for the rule to apply (a fast test that spares
# most values every regex), and a regex whose group `s`, where it has one, is the part replaced (the name of
# an assignment, the scheme and host of a URL are kept). Sources of the shapes: the token formats their issuers
# document, and public secret-scanner rule sets (gitleaks, GitHub secret scanning).
_PREFIXES = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "hf_", "sk-", "AKIA", "ASIA", "xox", "sk_live_",
    "sk_test_", "rk_live_", "rk_test_", "AIza", "glpat-", "npm_", "pypi-", "SG.", "dapi", "shpat_", "dop_v1_",
    "key-", "SK", "ya29.",
)  # fmt: skip
_RULES: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    # name=value / name: value (connection strings, env-style assignments, JSON text): judged by the name
    (
        ("=", ":"),
        re.compile(
            # a lookahead, so that an assignment inside another one's value is seen too (`https://h/x?code=...`)
            r"(?=(?P<name>\b[A-Za-z][A-Za-z0-9_.-]{0,63})[\"']?\s*[=:]\s*[\"']?(?P<s>[^\s;&\"',}]+))"
        ),
    ),
    # command-line options naming a secret: --password x, --api-key=x
    (
        ("--", " -"),
        re.compile(
            r"(?i)(?<![\w-])--?(?:password|passwd|pwd|token|hf-token|api-key|apikey|access-key|account-key|secret"
            r"|client-secret|sas|sas-token)(?:=|\s+)[\"']?(?P<s>[^\s\"']+)"
        ),
    ),
    # user info in a URL: scheme://user:password@host
    (("@",), re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://(?P<s>[^/\s:@]*:[^/\s@]+)@")),
    # SAS signatures, URL-encoded (plain `sig=` is an assignment above)
    (("%3d", "%3D"), re.compile(r"(?i)sig%3d(?P<s>[^&\s\"']+?)(?=%26|&|\s|\"|$)")),
    # webhook URLs whose path is the secret
    (
        ("hooks.slack.com", "discord", "webhook.office.com"),
        re.compile(
            r"(?i)https://(?:hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks"
            r"|[a-z0-9.-]*webhook\.office\.com/webhookb2)/(?P<s>\S+)"
        ),
    ),
    # Authorization values
    (
        ("Bearer ", "Basic "),
        re.compile(r"\b(?:Bearer|Basic)\s+(?P<s>(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,})"),
    ),
    # JWT (header.payload.signature, both JSON parts base64url of "{")
    (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    # PEM blocks (private keys, certificates), whole or cut off
    (("-----BEGIN",), re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)")),
    # an Azure storage / Cosmos account key: 64 bytes in base64
    (("==",), re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")),
    # an Entra ID client secret (the current format carries "Q~")
    (("Q~",), re.compile(r"(?<![\w~.-])[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])")),
    # tokens with a well-known prefix
    (
        _PREFIXES,
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|hf_[A-Za-z0-9]{30,}"
            r"|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|sk-ant-[a-z0-9]+-[A-Za-z0-9_-]{40,}|sk-[A-Za-z0-9]{40,}"
            r"|(?:AKIA|ASIA)[A-Z0-9]{16}|xox[abposr]-[A-Za-z0-9-]{10,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36}"
            r"|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|dapi[0-9a-f]{32}"
            r"|shpat_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|key-[0-9a-zA-Z]{32}|SK[0-9a-fA-F]{32}"
            r"|ya29\.[0-9A-Za-z_-]{20,})\b"
        ),
    ),
]
# Every rule's signs in one pattern.
_TRIGGERS = re.compile(
    # in a lookahead, so that signs overlapping each other are all found (" -" and "-----BEGIN" in " -----BEGIN")
    "(?=("
    + "|".join(
        re.escape(sign) for sign in sorted({s for signs, _ in _RULES for s in signs}, key=len, reverse=True)
    )
    + "))"
)
_RULES_BY_SIGN: dict[str, list[int]] = {}
for _index, (_signs, _) in enumerate(_RULES):
    for _sign in _signs:
        _RULES_BY_SIGN.setdefault(_sign, []).append(_index)
# Names an assignment's value is secret under, beyond the field names (_SECRET_NAME): `sig` of a SAS,
# `code` of a Functions key or an OAuth authorization code in a query.
_SECRET_ASSIGNMENT = re.compile(r"^(sig|code|sas|pwd)$", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    # Records of one family share their field names: the regex runs once per name, not once per field.
    return _SECRET_NAME.search(key) is not None


def _secret_assignment(name: str) -> bool:
    return _secret_name(name) or _SECRET_ASSIGNMENT.match(name) is not None


def _redact_spans(text: str) -> str | None:
    """`text` with every secret in it replaced, or None when it holds none."""
    if len(text) < 12:
        return None  # every shape is longer
    found = _TRIGGERS.findall(text)  # one scan says which rules can apply
    if not found:
        return None
    spans: list[tuple[int, int]] = []
    for index in sorted({index for sign in found for index in _RULES_BY_SIGN[sign]}):
        for match in _RULES[index][1].finditer(text):
            groups = match.groupdict()
            if "name" in groups and not _secret_assignment(groups["name"].rsplit(".", 1)[-1]):
                continue
            spans.append(match.span("s") if groups.get("s") is not None else match.span())
    if not spans:
        return None
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlapping matches: the earlier one already covers it
            last = max(last, end)
            continue
        out += [text[last:start], REDACTED]
        last = end
    return "".join(out) + text[last:]


def _path(trail: list[Any]) -> str:
    out = ""
    for step in trail:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "$"


def scrub(value: Any) -> tuple[Any, list[str]]:
    """Return (a scrubbed copy, the paths of what was redacted). The input is not changed."""
    paths: list[str] = []
    trail: list[Any] = []  # keys and indexes down to the node being walked; a path is built only when needed

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            clean = _redact_spans(node)
            if clean is None:
                return node
            paths.append(_path(trail))
            return clean
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, item in node.items():
                trail.append(key)
                if _secret_name(str(key)) and item not in (None, "", [], {}) and not isinstance(item, bool):
                    out[key] = REDACTED
                    paths.append(_path(trail))
                else:
                    out[key] = walk(item)
                trail.pop()
            return out
        if isinstance(node, list):
            items = []
            for index, item in enumerate(node):
                trail.append(index)
                items.append(walk(item))
                trail.pop()
            return items
        return node

    return walk(value), paths
