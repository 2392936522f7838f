"""The scrubber against a corpus of credential shapes (tests/security/secret_corpus.py): none survives, by
name or by value, and ordinary values pass unchanged; the paths it redacted are reported."""

from __future__ import annotations

import json

import pytest

from shared.aml.scrub import REDACTED, scrub
from tests.security.secret_corpus import NESTED, ORDINARY, SHAPES


def test_the_corpus_holds_at_least_fifty_shapes():
    assert len(SHAPES) + len(NESTED) >= 50
    assert len({shape.label for shape in SHAPES}) == len(SHAPES)


@pytest.mark.parametrize("shape", [s for s in SHAPES if s.by_value], ids=lambda s: s.label)
def test_a_secret_is_caught_by_its_value_under_any_field_name(shape):
    # Given the secret in a free-text field and deep in a list
    record = {"notes": shape.value, "properties": {"tags": ["x", shape.value]}}
    # When scrubbed
    clean, paths = scrub(record)
    # Then no trace of it is left, and both places are named
    assert shape.secret not in json.dumps(clean)
    assert paths == ["notes", "properties.tags[1]"]


@pytest.mark.parametrize("shape", [s for s in SHAPES if s.field], ids=lambda s: s.label)
def test_a_secret_is_caught_under_the_name_it_usually_has(shape):
    clean, paths = scrub({"properties": {shape.field: shape.value}})
    assert shape.secret not in json.dumps(clean)
    assert paths == [f"properties.{shape.field}"]


@pytest.mark.parametrize(("label", "record", "secret"), NESTED, ids=[n[0] for n in NESTED])
def test_everything_under_a_secret_name_goes_whole(label, record, secret):
    clean, paths = scrub({"datastore": record})
    assert secret not in json.dumps(clean)
    (name,) = record
    assert clean["datastore"][name] == REDACTED
    assert paths == [f"datastore.{name}"]


def test_ordinary_values_pass_unchanged():
    record = {"properties": dict(ORDINARY), "metrics": [1, 2.5], "empty": {"password": None, "secret": ""}}
    clean, paths = scrub(record)
    assert (clean, paths) == (record, [])


def test_only_the_secret_part_of_a_string_is_replaced():
    clean, paths = scrub(
        {"command": "python train.py --epochs 3 --hf-token hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"}
    )
    assert clean == {"command": f"python train.py --epochs 3 --hf-token {REDACTED}"}
    assert paths == ["command"]
    url = "postgresql://user:PgFAKEpwd123@db.example.com:5432/app"
    assert scrub([url]) == ([f"postgresql://{REDACTED}@db.example.com:5432/app"], ["[0]"])


def test_the_input_is_not_changed():
    record = {"sql": {"password": "p"}, "note": "AccountKey=abcdefghijkl;"}
    scrub(record)
    assert record == {"sql": {"password": "p"}, "note": "AccountKey=abcdefghijkl;"}


def test_every_secret_is_caught_when_all_stand_in_one_string():
    # signs of different shapes overlap (" -" before "-----BEGIN"): each one must still be seen
    text = " | ".join(shape.value for shape in SHAPES if shape.by_value)
    clean, paths = scrub({"description": text})
    assert [s.label for s in SHAPES if s.by_value and s.secret in clean["description"]] == []
    assert paths == ["description"]
