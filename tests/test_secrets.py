"""The API key never appears in any output of any mode (issue 2, DESIGN section 5)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, TO, URL

MODES = [["-o", "plain"], ["-o", "table"], ["--json"], ["-o", "plain", "--verbose"], ["-o", "table", "--verbose"], ["--json", "--verbose"]]


def echo_key_error(httpx_mock, status=401):
    httpx_mock.add_response(
        url=URL,
        status_code=status,
        json={
            "code": "RBC001",
            "message": f"Incorrect SID or API key {API_KEY}.",
            "data": [],
            "error": {"error": f"key {API_KEY} rejected", API_KEY: API_KEY},
        },
        headers={"X-Echo": API_KEY},
    )


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_key_echoed_by_server_is_masked(kwa, creds, httpx_mock, mode):
    echo_key_error(httpx_mock)
    result = kwa("reply", "--to", TO, *mode, "hi")
    assert result.exit_code == 3, result.output
    assert API_KEY not in result.stdout
    assert API_KEY not in result.stderr
    assert "Aq\u20263" in result.stdout + result.stderr


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_key_absent_from_success_and_dry_run(kwa, creds, scenario, mode):
    scenario("accepted")
    sent = kwa("reply", "--to", TO, *mode, "hi")
    dry = kwa("reply", "--to", TO, "--dry-run", *mode, "hi")
    for result in (sent, dry):
        assert result.exit_code == 0, result.output
        assert API_KEY not in result.stdout + result.stderr


def test_verbose_shows_request_with_key_masked(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--verbose", "hi")
    assert f"> POST {URL}" in result.stderr
    assert "> api-key: Aq\u20263" in result.stderr
    assert "< HTTP 202" in result.stderr


def test_key_in_json_error_document_is_masked_even_when_escaped(kwa, monkeypatch, httpx_mock, creds):
    key = 'Ab"cd\\ef0123456789'
    monkeypatch.setenv("KALEYRA_API_KEY", key)
    httpx_mock.add_response(url=URL, status_code=400, json={"code": "WA400", "message": f"bad {key}", "data": {}, "error": {}})
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert key not in doc["message"] and key not in result.stdout


@pytest.mark.parametrize("bad", ["Abc def0123456789", "Abc\tdef0123456789", "Abc\x07def0123456789", "Abc\x1b[31mdef012345"])
def test_key_with_inner_whitespace_or_control_is_refused(kwa, creds, monkeypatch, httpx_mock, bad):
    monkeypatch.setenv("KALEYRA_API_KEY", bad)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 2, result.output
    assert "API key" in result.stderr
    assert bad not in result.stderr and "def0" not in result.stderr
    assert httpx_mock.get_requests() == []


def test_surrounding_whitespace_in_key_is_trimmed(kwa, creds, monkeypatch, scenario, httpx_mock):
    monkeypatch.setenv("KALEYRA_API_KEY", f"  {API_KEY}\n")
    scenario("accepted")
    assert kwa("reply", "--to", TO, "hi").exit_code == 0
    assert httpx_mock.get_requests()[0].headers["api-key"] == API_KEY


def test_api_key_file_and_stdin(kwa, creds, monkeypatch, scenario, httpx_mock, tmp_path):
    monkeypatch.delenv("KALEYRA_API_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    scenario("accepted")
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--api-key-file", str(key_file), "hi").exit_code == 0
    assert kwa("reply", "--to", TO, "--api-key-file", "-", "hi", input=API_KEY + "\n").exit_code == 0
    assert [r.headers["api-key"] for r in httpx_mock.get_requests()] == [API_KEY, API_KEY]


def test_key_file_readable_by_others_warns(kwa, creds, monkeypatch, scenario, tmp_path):
    monkeypatch.delenv("KALEYRA_API_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o644)
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--api-key-file", str(key_file), "hi")
    assert result.exit_code == 0
    assert "other users can read" in result.stderr and "chmod 600" in result.stderr
