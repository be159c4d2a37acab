"""``kwa validate``: offline checks with JSON paths, exit 0 or 2, nothing sent."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TO


def test_valid_plain(kwa, httpx_mock):
    result = kwa("validate", "--to", TO, "-c", "wamid.ABC", "hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "valid\n"
    assert httpx_mock.get_requests() == []


def test_needs_no_credentials_and_lists_every_problem_as_json(kwa):
    result = kwa("validate", "--to", "0098", "--ref", "x" * 300, "--json", " ")
    assert result.exit_code == 2
    doc = result.json()
    assert doc["ok"] is False and doc["exit_code"] == 2
    codes = {(p["path"], p["code"]) for p in doc["problems"]}
    assert ("messaging_object.to", "NUMBER_INTERNATIONAL_PREFIX") in codes
    assert ("messaging_object.text.body", "BODY_BLANK") in codes
    assert ("extra_info.ref", "REF_TOO_LONG") in codes


def test_table_mode_lists_problems(kwa):
    result = kwa("validate", "--to", "12", "-o", "table", "x")
    assert result.exit_code == 2
    assert "NUMBER_NO_PLUS" in result.stderr


def test_warnings_pass_unless_strict(kwa):
    ok = kwa("validate", "--to", TO, "-c", "legacy-id", "hi")
    strict = kwa("validate", "--strict", "--to", TO, "-c", "legacy-id", "hi")
    assert ok.exit_code == 0 and "warning" in ok.stderr
    assert strict.exit_code == 2 and "CONTEXT_NOT_WAMID" in strict.stderr


def test_payload_from_spec_example(kwa, tmp_path):
    payload = {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "context": {"message_id": "wamid.XXXXX"},
            "to": "+14155552671",
            "type": "text",
            "text": {"preview_url": False, "body": "Thanks for your order! Tell us what address you\u2019d like this order delivered to."},
        },
        "extra_info": {"ref": "customer1", "ref1": "marketing", "ref2": "dictionary", "wa_source": "api"},
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(payload))
    result = kwa("validate", "--payload", str(path))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({}, "messaging_object"),
        ({"messaging_object": {"messaging_product": "whatsapp", "to": TO, "type": "image", "text": {"body": "x"}}}, "messaging_object.type"),
        ({"messaging_object": {"messaging_product": "whatsapp", "to": TO, "text": {"body": 5}}}, "messaging_object.text.body"),
        ({"messaging_object": {"messaging_product": "whatsapp", "to": TO, "text": {"body": "x", "preview_url": "yes"}}}, "messaging_object.text.preview_url"),
        ({"messaging_object": {"messaging_product": "whatsapp", "to": TO, "text": {"body": "x"}}, "extra_info": []}, "extra_info"),
    ],
)
def test_payload_problems_have_json_paths(kwa, tmp_path, payload, path):
    file = tmp_path / "p.json"
    file.write_text(json.dumps(payload))
    result = kwa("validate", "--payload", str(file), "--json")
    assert result.exit_code == 2, result.output
    assert path in {p["path"] for p in result.json()["problems"]}


def test_payload_that_is_not_json(kwa, tmp_path):
    file = tmp_path / "p.json"
    file.write_text('{"messaging_object": ')
    result = kwa("validate", "--payload", str(file))
    assert result.exit_code == 2 and "line 1" in result.stderr
