"""The JSON output contract (DESIGN section 5, README "Output"): key sets and types, pinned.

Scripts parse these documents; a key that disappears or changes type breaks them. If a test
here fails because a shape changed on purpose, change DESIGN.md and the README with it, and
bump ``schema_version`` when a field changes meaning or disappears (adding a key does not).
"""

from __future__ import annotations

import json
from types import NoneType
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, MESSAGE_ID, TO, URL

SCHEMA_VERSION = 1

# Every document has these keys, with these types.
ENVELOPE: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "ok": (bool,),
    "exit_code": (int,),
    "http_status": (int, NoneType),
    "code": (str, NoneType),
    "message": (str, NoneType),
    "message_id": (str, NoneType),
    "hint": (str, NoneType),
    "error": (dict, NoneType),
    "attempts": (int,),
    "warnings": (list,),
}
PROBLEM = {"path": (str,), "code": (str,), "severity": (str,), "message": (str,), "hint": (str, NoneType)}
DRY_RUN_REQUEST = {"method": (str,), "url": (str,), "headers": (dict,), "body": (str,)}


def _one_document(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON line:\n{stdout}"
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def _check_types(doc: dict[str, Any], spec: dict[str, tuple[type, ...]]) -> None:
    for key, types in spec.items():
        value = doc[key]
        # bool is an int in Python; in the contract they are different JSON types
        ok = type(value) in types or (dict in types and isinstance(value, dict))
        assert ok, f"{key}: {value!r} is not {' or '.join(t.__name__ for t in types)}"


def _envelope(doc: dict[str, Any], *, extra: set[str]) -> None:
    assert set(doc) == set(ENVELOPE) | extra, sorted(set(doc) ^ (set(ENVELOPE) | extra))
    _check_types(doc, ENVELOPE)
    assert doc["schema_version"] == SCHEMA_VERSION
    for problem in doc["warnings"]:
        assert set(problem) == set(PROBLEM)
        _check_types(problem, PROBLEM)
        assert problem["severity"] == "warning"
    assert API_KEY not in json.dumps(doc)


def test_accepted(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "-c", "wamid.X", "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra={"repeat"})
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["repeat"] is False
    assert (doc["http_status"], doc["code"], doc["message_id"], doc["attempts"]) == (202, "WA202", MESSAGE_ID, 1)
    assert type(doc["message"]) is str and doc["hint"] is None and doc["error"] is None


def test_accepted_with_warnings(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "-c", "not-a-wamid", "--wa-source", "shopfy", "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra={"repeat"})
    assert {w["code"] for w in doc["warnings"]} >= {"CONTEXT_NOT_WAMID", "WA_SOURCE_UNKNOWN"}


def test_repeat_under_an_idempotency_key(kwa, creds, scenario):
    scenario("accepted")
    first = _one_document(kwa("reply", "--to", TO, "--idempotency-key", "k1", "--json", "hi").stdout)
    second = kwa("reply", "--to", TO, "--idempotency-key", "k1", "--json", "hi")
    assert second.exit_code == 0, second.output
    doc = _one_document(second.stdout)
    _envelope(doc, extra={"repeat"})
    assert first["repeat"] is False and doc["repeat"] is True
    assert doc["ok"] is True and doc["message_id"] == MESSAGE_ID and doc["attempts"] == 0


@pytest.mark.parametrize(
    "name,exit_code,http_status,code",
    [("wrong_key", 3, 401, "RBC001"), ("bad_payload", 4, 400, "WA400"), ("low_balance", 5, 400, "E110"), ("gateway_html_502", 7, 502, None)],
)
def test_api_failure(kwa, creds, scenario, name, exit_code, http_status, code):
    scenario(name)  # none of these is retried by default
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == exit_code, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra=set())
    assert doc["ok"] is False and doc["exit_code"] == exit_code and doc["http_status"] == http_status
    assert type(doc["code"]) is str and (code is None or doc["code"] == code)
    assert doc["message_id"] is None and type(doc["message"]) is str and type(doc["hint"]) is str
    assert doc["attempts"] == 1
    if code is not None:
        assert isinstance(doc["error"], dict)  # Kaleyra's own error object, kept as sent


def test_network_failure(kwa, creds, httpx_mock):
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=URL)
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == 9, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra=set())
    assert doc["ok"] is False and doc["http_status"] is None and doc["code"] == "READ_TIMEOUT"
    assert doc["message_id"] is None and doc["error"] is None and doc["attempts"] == 1


def test_validation_failure(kwa, creds):
    result = kwa("reply", "--to", "919876543210", "-c", "wamid X", "--wa-source", "shopfy", "--json", " ")
    assert result.exit_code == 2, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra={"problems"})
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["code"] == "VALIDATION"
    assert doc["http_status"] is None and doc["message_id"] is None and doc["attempts"] == 0
    assert len(doc["problems"]) >= 3
    for problem in doc["problems"]:
        assert set(problem) == set(PROBLEM)
        _check_types(problem, PROBLEM)
        assert problem["severity"] == "error"
    assert {p["code"] for p in doc["problems"]} >= {"NUMBER_NO_PLUS", "CONTEXT_WHITESPACE", "BODY_BLANK"}
    assert {(w["path"], w["code"]) for w in doc["warnings"]} >= {("extra_info.wa_source", "WA_SOURCE_UNKNOWN")}


def test_missing_credentials_is_a_validation_failure(kwa):
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == 2, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra={"problems"})
    assert {p["code"] for p in doc["problems"]} == {"SETTING_MISSING"}


def test_dry_run(kwa, creds):
    result = kwa("reply", "--dry-run", "--to", TO, "-c", "wamid.X", "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = _one_document(result.stdout)
    _envelope(doc, extra={"dry_run", "request"})
    assert doc["ok"] is True and doc["dry_run"] is True and doc["attempts"] == 0 and doc["message_id"] is None
    request = doc["request"]
    assert set(request) == set(DRY_RUN_REQUEST)
    _check_types(request, DRY_RUN_REQUEST)
    assert request["method"] == "POST" and request["url"] == URL
    assert request["headers"]["api-key"] != API_KEY and "…" in request["headers"]["api-key"]
    assert json.loads(request["body"])["messaging_object"]["to"] == TO


def test_validate(kwa):
    result = kwa("validate", "--to", TO, "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = _one_document(result.stdout)
    # Note: validate's "request" is a summary of the checked message, not a dry run's HTTP request.
    _envelope(doc, extra={"problems", "request"})
    assert doc["ok"] is True and doc["message"] == "valid" and doc["problems"] == []
    assert doc["request"]["to"] == TO
    assert all(type(v) is str for v in doc["request"].values())


def test_usage_errors_from_the_parser_are_not_json(kwa):
    """DESIGN section 5: Click's own usage errors print usage text on stderr, exit 2, even with --json."""
    result = kwa("reply", "--json", "--retries", "many", "hi")
    assert result.exit_code == 2
    assert result.stdout == "" and "Usage:" in result.stderr
