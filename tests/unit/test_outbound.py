"""The allow-list every outbound URL passes before the bearer token goes anywhere."""

import pytest

from shared.core.outbound import (
    AllowList,
    DisallowedUrlError,
    UnsafePathSegmentError,
    path_segment,
    validate_region,
)
from shared.core.settings import DEFAULT_ALLOWED_HOSTS

PUBLIC = AllowList(DEFAULT_ALLOWED_HOSTS.split(","))
LOCAL = AllowList(["127.0.0.1:8443"])


@pytest.mark.parametrize(
    "url",
    [
        "https://management.azure.com/subscriptions/s?api-version=2019-11-01",
        "https://westeurope.experiments.azureml.net/history/v1.0/x",
        "https://westeurope.modelmanagement.azureml.net:443/api/x",
        "https://northeurope.aether.ms/api/v1.0/x",
        "https://westeurope.api.azureml.ms/discovery",
    ],
)
def test_azure_hosts_are_allowed(url):
    assert PUBLIC.check(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://management.azure.com/x", "https"),
        ("https://evil.example.com/x", "not allow-listed"),
        ("https://management.azure.com.evil.example/x", "not allow-listed"),
        ("https://management.azure.com@evil.example/x", "user info"),
        ("https://user:pw@management.azure.com/x", "user info"),
        ("https://experiments.azureml.net/x", "not allow-listed"),  # the bare suffix is not a region host
        ("https://10.0.0.1/x", "IP literal"),
        ("https://[::1]/x", "IP literal"),
        ("https://management.azure.com:8443/x", "port"),
        ("//management.azure.com/x", "https"),
        ("https://west_europe.experiments.azureml.net/x", "invalid labels"),
    ],
)
def test_hostile_urls_are_refused(url, reason):
    with pytest.raises(DisallowedUrlError, match=reason):
        PUBLIC.check(url)


def test_local_emulator_entry_is_exact_host_and_port():
    assert LOCAL.allows("https://127.0.0.1:8443/management.azure.com/subscriptions")
    assert not LOCAL.allows("https://127.0.0.1:8444/x")
    assert not LOCAL.allows("http://127.0.0.1:8443/x")
    assert not LOCAL.allows("https://management.azure.com/x")


@pytest.mark.parametrize("region", ["westeurope", "eastus2", "northeurope"])
def test_regions(region):
    assert validate_region(region) == region


@pytest.mark.parametrize("region", ["", "evil.com/x", "west europe", "a", "westeurope.evil", "EASTUS"])
def test_bad_regions_never_become_host_names(region):
    with pytest.raises(DisallowedUrlError):
        validate_region(region)


@pytest.mark.parametrize(
    "url",
    [
        "https://management.azure.com/subscriptions/s/../../x?api-version=1",
        "https://management.azure.com/subscriptions/./s",
        "https://management.azure.com/subscriptions/%2E%2e/s",
        "https://management.azure.com/subscriptions/s/..",
    ],
)
def test_a_url_with_a_dot_segment_is_refused_on_an_allowed_host(url):
    # requests (urllib3) would collapse the segment and send the token to another path of the same host
    with pytest.raises(DisallowedUrlError, match="dot segment"):
        PUBLIC.check(url)
    assert PUBLIC.check("https://management.azure.com/subscriptions/s/a..b/.x") is not None


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("", "empty segment"),
        (".", "dot segment"),
        ("..", "dot segment"),
        ("\uff0e\uff0e", "dot segment"),  # fullwidth dots fold to '..' (NFKC)
        ("\u2025", "dot segment"),  # TWO DOT LEADER folds to '..'
        ("../x", "'/'"),
        ("a\\b", "character '\\\\'"),
        ("a?b", "'?'"),
        ("a#b", "'#'"),
        ("%2e%2e", "'%'"),
        ("a\nb", "control or invisible"),
        ("a\x00", "control or invisible"),
        ("a\u202eb", "control or invisible"),  # right-to-left override
        ("a\u200bb", "control or invisible"),  # zero-width space
        ("a\ufe16b", "'?'"),  # presentation-form question mark folds to '?'
    ],
)
def test_path_segment_refuses_what_cannot_stay_one_segment(value, fault):
    with pytest.raises(UnsafePathSegmentError) as caught:
        path_segment("E7 runId", value)
    assert str(caught.value).startswith("E7 runId ")
    assert fault in str(caught.value)


@pytest.mark.parametrize("value", ["m:1", "dcid.run_1", "a..b", ".hidden", "exp name", "9f1c-AB_x"])
def test_path_segment_keeps_ordinary_ids(value):
    assert path_segment("E7 runId", value) == value
