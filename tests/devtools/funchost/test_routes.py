"""Route templates as ASP.NET / the Functions host reads them (no I/O)."""

from __future__ import annotations

import pytest

from devtools.funchost.routes import RouteError, RouteTemplate

GUID = "6f1c2b8e-1111-4a4b-9c9d-0000000000a1"


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate(template).match(path.strip("/").split("/") if path.strip("/") else [])


def test_literal_segments_match_case_insensitively() -> None:
    assert match("api/v1/requests", "API/V1/Requests") == {}
    assert match("api/v1/requests", "api/v1/request") is None
    assert match("api/v1/requests", "api/v1/requests/extra") is None


def test_parameters_optional_and_default() -> None:
    assert match("api/items/{id}/{name?}", "api/items/7/bob") == {"id": "7", "name": "bob"}
    assert match("api/items/{id}/{name?}", "api/items/7") == {"id": "7"}
    assert match("api/items/{id}/{name?}", "api/items") is None
    assert match("api/items/{id}/{kind=all}", "api/items/7") == {"id": "7", "kind": "all"}


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("x/{v:int}", "-12", "1.5"),
        ("x/{v:int}", "2147483647", "2147483648"),
        ("x/{v:guid}", GUID, GUID[:-1]),
        ("x/{v:guid}", GUID.replace("-", ""), "not-a-guid"),
        ("x/{v:alpha}", "Abc", "ab1"),
        ("x/{v:bool}", "TRUE", "yes"),
        ("x/{v:int:min(10)}", "10", "9"),
        ("x/{v:range(1,3)}", "3", "4"),
        ("x/{v:length(2,3)}", "abc", "abcd"),
        ("x/{v:regex(^r-\\d+$)}", "R-12", "r-x"),
    ],
)
def test_constraints(template: str, good: str, bad: str) -> None:
    assert match(template, f"x/{good}") == {"v": good}
    assert match(template, f"x/{bad}") is None


def test_catch_all_takes_the_rest_even_empty() -> None:
    assert match("files/{*path}", "files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert match("files/{**path}", "files") == {}


def test_complex_segments() -> None:
    assert match("requests/{id:guid}:approve", f"requests/{GUID}:approve") == {"id": GUID}
    assert match("requests/{id:guid}:approve", f"requests/{GUID}:reject") is None
    assert match("requests/{id:guid}:approve", "requests/nope:approve") is None
    # right-most literal splits, as ASP.NET matches complex segments from the right
    assert match("r/{a}-{b}", "r/x-y-z") == {"a": "x-y", "b": "z"}
    assert match("f/{name}.{ext?}", "f/report.tar.gz") == {"name": "report.tar", "ext": "gz"}
    assert match("f/{name}.{ext?}", "f/report") == {"name": "report"}


def test_precedence_orders_literal_before_constrained_before_plain_before_catch_all() -> None:
    templates = ["a/{*rest}", "a/{x}", "a/{x:int}", "a/lit", "a/{x}.json"]
    ordered = sorted(templates, key=lambda t: RouteTemplate(t).precedence())
    assert ordered == ["a/lit", "a/{x}.json", "a/{x:int}", "a/{x}", "a/{*rest}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a/{x}/{x}", "appears twice"),
        ("a/{x:nosuch}", "unknown constraint"),
        ("a/{*rest}/b", "catch-all"),
        ("a/{x?}/b", "optional"),
        ("a/{x}{y}", "separated by a literal"),
        ("a/{x", "unclosed"),
        ("a//b", "empty segment"),
        ("a/{x:min}", "needs arguments"),
    ],
)
def test_bad_templates_fail_loudly(template: str, message: str) -> None:
    with pytest.raises(RouteError, match=message):
        RouteTemplate(template)
