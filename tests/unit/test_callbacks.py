"""Callbacks without I/O: signatures, the callbackUrl check, the retry schedule, the event's content."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from shared.core import settings as names
from shared.core.matching import Subject
from shared.core.model import DsrRequest
from shared.core.settings import MissingSettingError, Settings, UnresolvedReferenceError
from shared.lifecycle import callback_envelope, callbacks

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
BODY = b'{"specversion":"1.0","id":"e-1"}'
NOW = 1_750_000_000


def settings(*hosts: str) -> Settings:
    return Settings("https://b", "https://q", "https://t", callback_allowed_hosts=hosts)


# -- sign / verify ------------------------------------------------------------------------------------------------
def test_sign_writes_the_timestamp_and_the_hmac_of_timestamp_dot_body() -> None:
    header = callback_envelope.sign(KEY, NOW, BODY)

    assert re.fullmatch(r"t=1750000000,v1=[0-9a-f]{64}", header)
    # the same value a receiver computes by hand
    import hashlib
    import hmac

    expected = hmac.new(KEY, b"1750000000." + BODY, hashlib.sha256).hexdigest()
    assert header.endswith(expected)


def test_verify_accepts_the_right_key_within_the_window() -> None:
    header = callback_envelope.sign(KEY, NOW, BODY)

    assert callback_envelope.verify(KEY, header, BODY, now=NOW) is True
    assert callback_envelope.verify(KEY, header, BODY, now=NOW + 300) is True  # the edge of the window
    assert callback_envelope.verify(KEY, header, BODY, now=NOW - 300) is True


def test_verify_rejects_a_wrong_key() -> None:
    assert callback_envelope.verify(OTHER_KEY, callback_envelope.sign(KEY, NOW, BODY), BODY, now=NOW) is False


def test_verify_rejects_a_tampered_body() -> None:
    header = callback_envelope.sign(KEY, NOW, BODY)

    assert callback_envelope.verify(KEY, header, BODY.replace(b"e-1", b"e-2"), now=NOW) is False
    assert callback_envelope.verify(KEY, header, BODY + b" ", now=NOW) is False


def test_verify_rejects_a_tampered_timestamp() -> None:
    signature = callback_envelope.sign(KEY, NOW, BODY).split(",")[1]

    assert callback_envelope.verify(KEY, f"t={NOW + 1},{signature}", BODY, now=NOW) is False


def test_verify_rejects_an_old_timestamp() -> None:
    header = callback_envelope.sign(KEY, NOW - 301, BODY)

    assert callback_envelope.verify(KEY, header, BODY, now=NOW) is False
    assert callback_envelope.verify(KEY, header, BODY, now=NOW, tolerance_s=600) is True


def test_verify_rejects_a_future_timestamp() -> None:
    assert callback_envelope.verify(KEY, callback_envelope.sign(KEY, NOW + 301, BODY), BODY, now=NOW) is False


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=1750000000",  # no signature
        "v1=" + "0" * 64,  # no timestamp
        "t=abc,v1=" + "0" * 64,
        "t=-1750000000,v1=" + "0" * 64,
        "t=\u0661\u0667\u0665,v1=" + "0" * 64,  # non-ASCII digits
        "t=1750000000,t=1750000000,v1=" + "0" * 64,  # two timestamps
        "t=1750000000,v1=XYZ",
        "t=1750000000,v1=" + "0" * 63,
        "t=1750000000;v1=" + "0" * 64,
        "t=1750000000,v1=" + "0" * 64 + "," * 2000,  # too long
    ],
)
def test_verify_rejects_a_malformed_header(header: str) -> None:
    assert callback_envelope.verify(KEY, header, BODY, now=NOW) is False


def test_verify_rejects_a_header_that_is_not_a_string() -> None:
    assert callback_envelope.verify(KEY, None, BODY, now=NOW) is False  # type: ignore[arg-type]


def test_verify_accepts_one_matching_signature_among_several_and_ignores_other_schemes() -> None:
    good = callback_envelope.sign(KEY, NOW, BODY).split(",")[1]
    header = f"t={NOW},v0=legacy,v1={'0' * 64},{good}"

    assert callback_envelope.verify(KEY, header, BODY, now=NOW) is True
    assert callback_envelope.verify(KEY, f"t={NOW},v1={'0' * 64}", BODY, now=NOW) is False


def test_a_receiver_rotating_keys_accepts_either_key() -> None:
    old_header = callback_envelope.sign(OTHER_KEY, NOW, BODY)
    new_header = callback_envelope.sign(KEY, NOW, BODY)
    accepted = (KEY, OTHER_KEY)

    assert any(callback_envelope.verify(k, old_header, BODY, now=NOW) for k in accepted)
    assert any(callback_envelope.verify(k, new_header, BODY, now=NOW) for k in accepted)
    assert not any(
        callback_envelope.verify(k, callback_envelope.sign(b"x" * 32, NOW, BODY), BODY, now=NOW)
        for k in accepted
    )


# -- check_url ----------------------------------------------------------------------------------------------------
def test_check_url_accepts_an_https_url_on_the_allow_list() -> None:
    allowed = settings("hooks.example.com", "*.tickets.example.org")

    assert (
        callbacks.check_url(allowed, "https://hooks.example.com/dsr?x=1")
        == "https://hooks.example.com/dsr?x=1"
    )
    assert (
        callbacks.check_url(allowed, "https://eu.tickets.example.org/cb")
        == "https://eu.tickets.example.org/cb"
    )
    assert (
        callbacks.check_url(allowed, "https://hooks.example.com:443/dsr")
        == "https://hooks.example.com:443/dsr"
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/dsr", "https"),
        ("ftp://hooks.example.com/dsr", "https"),
        ("//hooks.example.com/dsr", "https"),
        ("https://user:pw@hooks.example.com/dsr", "user info"),
        ("https://user@hooks.example.com/dsr", "user info"),
        ("https://hooks.example.com/dsr#frag", "fragment"),
        ("https://evil.example.net/dsr", "not allow-listed"),
        ("https://hooks.example.com.evil.net/dsr", "not allow-listed"),
        (
            "https://tickets.example.org/cb",
            "not allow-listed",
        ),  # the wildcard needs a label before the suffix
        ("https://10.0.0.7/dsr", "IP literal"),
        ("https://[::1]/dsr", "IP literal"),
        ("https://hooks.example.com:8443/dsr", "port"),
        ("https://hooks.example.com:99999/dsr", "not a valid URL"),
        ("https://hooks.example.com/d sr", "spaces or control"),
        ("https://hooks.example.com/\x00", "spaces or control"),
        ("https://hooks.example.com/" + "a" * 2100, "longer than"),
        ("", "non-empty"),
    ],
)
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(callbacks.CallbackUrlError, match=re.escape(why)):
        callbacks.check_url(settings("hooks.example.com", "*.tickets.example.org"), url)


def test_check_url_accepts_an_ip_and_port_only_when_listed_exactly() -> None:
    allowed = settings("127.0.0.1:8443")

    assert callbacks.check_url(allowed, "https://127.0.0.1:8443/hook") == "https://127.0.0.1:8443/hook"
    with pytest.raises(callbacks.CallbackUrlError, match="not allow-listed"):
        callbacks.check_url(allowed, "https://127.0.0.1:8444/hook")


def test_check_url_refuses_everything_when_no_callback_host_is_configured() -> None:
    with pytest.raises(callbacks.CallbackUrlError, match="DSR_CALLBACK_ALLOWED_HOSTS") as raised:
        callbacks.check_url(settings(), "https://hooks.example.com/dsr")

    assert isinstance(raised.value, ValueError)  # intake turns it into a 422


def test_check_url_does_not_use_the_azure_ml_allow_list() -> None:
    aml_only = Settings("https://b", "https://q", "https://t", allowed_hosts=("management.azure.com",))

    with pytest.raises(callbacks.CallbackUrlError):
        callbacks.check_url(aml_only, "https://management.azure.com/hook")


# -- settings -----------------------------------------------------------------------------------------------------
BASE_ENV = {
    names.STORAGE_BLOB_URI: "https://b",
    names.STORAGE_QUEUE_URI: "https://q",
    names.STORAGE_TABLE_URI: "https://t",
    names.PSEUDONYM_KEY: "pseudonym-key",
}


def test_callbacks_are_off_and_need_no_key_by_default() -> None:
    parsed = Settings.from_env(BASE_ENV)

    assert parsed.callback_allowed_hosts == ()
    assert parsed.callback_signing_key == b""


def test_allowed_callback_hosts_require_the_signing_key() -> None:
    env = {**BASE_ENV, names.CALLBACK_ALLOWED_HOSTS: "hooks.example.com, *.example.org"}

    with pytest.raises(MissingSettingError, match="DSR_CALLBACK_SIGNING_KEY"):
        Settings.from_env(env)
    parsed = Settings.from_env({**env, names.CALLBACK_SIGNING_KEY: "s" * 32})
    assert parsed.callback_allowed_hosts == ("hooks.example.com", "*.example.org")
    assert parsed.callback_signing_key == b"s" * 32
    assert "s" * 32 not in repr(parsed)


def test_an_unresolved_key_vault_reference_is_never_used_as_the_signing_key() -> None:
    env = {
        **BASE_ENV,
        names.CALLBACK_ALLOWED_HOSTS: "hooks.example.com",
        names.CALLBACK_SIGNING_KEY: "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k)",
    }

    with pytest.raises(UnresolvedReferenceError, match="DSR_CALLBACK_SIGNING_KEY"):
        Settings.from_env(env)


# -- the retry schedule -------------------------------------------------------------------------------------------
def test_retry_delays_grow_four_fold_from_30_seconds_and_stop_at_one_hour() -> None:
    middle = [callbacks.retry_delay(n, rng=lambda: 0.5) for n in range(1, 8)]

    assert middle == [30, 120, 480, 1920, 3600, 3600, 3600]


def test_retry_delays_jitter_within_20_percent_and_never_exceed_the_cap() -> None:
    assert callbacks.retry_delay(1, rng=lambda: 0.0) == pytest.approx(24)
    assert callbacks.retry_delay(1, rng=lambda: 1.0) == pytest.approx(36)
    assert callbacks.retry_delay(2, rng=lambda: 0.0) == pytest.approx(96)
    assert callbacks.retry_delay(7, rng=lambda: 1.0) == 3600
    assert {round(callbacks.retry_delay(1)) for _ in range(200)} <= set(range(24, 37))


def test_a_retry_after_longer_than_the_backoff_is_honoured_within_the_cap() -> None:
    assert callbacks.retry_delay(1, retry_after=600, rng=lambda: 0.5) == 600
    assert callbacks.retry_delay(1, retry_after=5, rng=lambda: 0.5) == 30
    assert callbacks.retry_delay(1, retry_after=86400, rng=lambda: 0.5) == 3600


@pytest.mark.parametrize(
    ("attempt", "status", "outcome"),
    [
        (1, 200, "delivered"),
        (3, 204, "delivered"),
        (1, 500, "retrying"),
        (7, 500, "retrying"),
        (8, 500, "abandoned"),
        (7, None, "retrying"),  # no answer (connection error, timeout, TLS)
        (8, None, "abandoned"),
        (2, 404, "retrying"),
        (3, 404, "abandoned"),  # the receiver refuses this event: given up after 3 attempts
        (3, 401, "abandoned"),
        (3, 302, "abandoned"),  # a redirect is never followed, and counts as refused
        (3, 408, "retrying"),
        (3, 429, "retrying"),
        (1, 410, "abandoned"),  # gone: at once
    ],
)
def test_next_step(attempt: int, status: int | None, outcome: str) -> None:
    result, delay, reason = callbacks.next_step(attempt, status)

    assert result == outcome
    assert (delay is not None) == (outcome == "retrying")
    assert (reason is not None) == (outcome == "abandoned")


# -- the event ----------------------------------------------------------------------------------------------------
def request(**extra: object) -> DsrRequest:
    received = dt.datetime(2025, 1, 31, 9, 30, tzinfo=dt.UTC)
    made = DsrRequest(
        "0190f5a4-0000-7000-8000-000000000001",
        "erasure",
        Subject("0a1b2c3d-0000-4000-8000-00000000aaaa", "alice@contoso.com", "alice.smith@contoso.com"),
        {"workspaces": []},
        received,
        status="completed",
        reference="TICKET-42",
    )
    made.updated_at = received + dt.timedelta(days=2)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_the_event_data_is_a_small_status_summary_without_subject_identifiers() -> None:
    made = request()
    data = callback_envelope.summary(made)
    text = json.dumps(data)

    assert data == {
        "id": made.id,
        "type": "erasure",
        "status": "completed",
        "reference": "TICKET-42",
        "dueAt": "2025-02-28T09:30:00Z",
        "links": {"self": f"/api/v1/requests/{made.id}"},
    }
    for identifier in ("0a1b2c3d-0000-4000-8000-00000000aaaa", "alice", "contoso"):
        assert identifier not in text


def test_build_event_is_a_cloudevents_1_0_structured_event() -> None:
    message = {
        "requestId": "r-1",
        "eventId": "e-1",
        "event": "completed_with_errors",
        "time": "2025-02-02T09:30:00Z",
        "url": "https://hooks.example.com/dsr",
        "data": {"id": "r-1"},
        "attempt": 1,
    }

    assert callback_envelope.build_event(message) == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/dsr/requests/r-1",
        "type": "com.aml-dsr.request.completed_with_errors",
        "time": "2025-02-02T09:30:00Z",
        "datacontenttype": "application/json",
        "data": {"id": "r-1"},
    }


def test_event_ids_are_deterministic_per_request_event_and_status_time() -> None:
    first = callback_envelope.event_id("r-1", "completed", "2025-02-02T09:30:00Z")

    assert first == callback_envelope.event_id("r-1", "completed", "2025-02-02T09:30:00Z")
    assert first != callback_envelope.event_id("r-1", "completed", "2025-02-03T09:30:00Z")
    assert first != callback_envelope.event_id("r-1", "failed", "2025-02-02T09:30:00Z")
    assert first != callback_envelope.event_id("r-2", "completed", "2025-02-02T09:30:00Z")


def test_notify_without_a_callback_url_does_nothing() -> None:
    # No runtime at all: nothing may be touched.
    assert callbacks.notify(None, request(), "completed") is False  # type: ignore[arg-type]


def test_notify_refuses_an_unknown_event_name() -> None:
    with pytest.raises(ValueError, match="not a callback event"):
        callbacks.notify(None, request(callback_url="https://hooks.example.com/x"), "running")  # type: ignore[arg-type]
