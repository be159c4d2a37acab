"""E.164 normalisation and the request model (DESIGN sections 3 and 4)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaleyra_cli.message import build_reply, normalize_number, utf16_len


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+91 98765-43210", "+919876543210"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+91\u00a098765\u202f43210", "+919876543210"),  # no-break and narrow no-break spaces
        ("+91\u200b98765\u200c43210\ufeff", "+919876543210"),  # zero-width marks, BOM
        ("\u202a+91 98765 43210\u202c", "+919876543210"),  # direction embedding marks
        ("+91\u221298765\u221243210", "+919876543210"),  # U+2212 minus
        ("+91.98765.43210", "+919876543210"),
        ("+91\u00b798765\u00b743210", "+919876543210"),
        ("+\u0669\u0661\u0669\u0668\u0667\u0666\u0665\u0664\u0663\u0662\u0661\u0660", "+919876543210"),  # Arabic-Indic
        ("\uff0b\uff19\uff11\uff19\uff18\uff17\uff16\uff15\uff14\uff13\uff12\uff11\uff10", "+919876543210"),  # full width
    ],
)
def test_pasted_forms_normalise_to_e164(raw, expected):
    number, problems = normalize_number(raw)
    assert number == expected, problems
    assert [p for p in problems if p.severity == "error"] == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "NUMBER_EMPTY"),
        ("  ", "NUMBER_EMPTY"),
        ("919876543210", "NUMBER_NO_PLUS"),
        ("0091 98765 43210", "NUMBER_INTERNATIONAL_PREFIX"),
        ("098765 43210", "NUMBER_NATIONAL"),
        ("+91 98765 4321x", "NUMBER_BAD_CHARACTER"),
        ("+91 98765+43210", "NUMBER_BAD_CHARACTER"),
        ("+91 9876", "NUMBER_IMPOSSIBLE"),
        ("+91 98765 432109999", "NUMBER_IMPOSSIBLE"),
        ("+999 1234567", "NUMBER_UNKNOWN_COUNTRY"),
    ],
)
def test_bad_numbers_are_errors_never_guesses(raw, code):
    number, problems = normalize_number(raw)
    assert number is None
    assert problems[0].code == code and problems[0].severity == "error"


def test_bad_character_is_named_with_position():
    _, problems = normalize_number("+91 98765 4321x")
    assert "'x'" in problems[0].message and "position 15" in problems[0].message


def test_mexico_whatsapp_id_is_only_a_warning():
    number, problems = normalize_number("+52 1 55 1234 5678")
    assert number == "+5215512345678"
    assert [p.code for p in problems] == ["NUMBER_NOT_VALID"] and problems[0].severity == "warning"


@given(st.text())
def test_normalisation_never_adds_or_drops_digits(raw):
    number, problems = normalize_number(raw)
    if number is not None:
        digits = "".join(str(int(ch)) for ch in raw if ch.isdecimal())
        assert number == "+" + digits


@given(st.text(min_size=1, max_size=5000))
def test_a_built_request_always_has_a_body_within_the_limit(body):
    request, problems = build_reply(to="+919876543210", body=body)
    if request is not None:
        assert 0 < utf16_len(request.body) <= 4096 and request.body.strip()
        json.loads(request.to_json_bytes())


def test_utf16_counts_emoji_as_two():
    assert utf16_len("😀") == 2 and utf16_len("é") == 1 and utf16_len("a😀") == 3
