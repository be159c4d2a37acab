"""One test per exit code of DESIGN section 5 (batch's 10 lives with the batch tests)."""

from __future__ import annotations

import pytest

from kaleyra_cli.errors import ExitCode
from tests.conftest import MESSAGE_ID, TO, URL


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Retries wait for real otherwise; record the waits instead."""
    waits: list[float] = []
    monkeypatch.setattr("kaleyra_cli.client.time.sleep", waits.append)
    return waits


def test_0_accepted(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == ExitCode.OK == 0
    assert result.stdout.strip() == MESSAGE_ID


def test_1_internal_error_is_short_without_verbose(kwa, creds, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("unexpected state")

    monkeypatch.setattr("kaleyra_cli.client.KaleyraClient.send_reply", boom)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == ExitCode.INTERNAL == 1
    assert "internal error" in result.stderr and "Traceback" not in result.stderr
    verbose = kwa("reply", "--to", TO, "--verbose", "hi")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_2_usage_error_sends_nothing(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", "12345", "hi")
    assert result.exit_code == ExitCode.USAGE == 2
    assert httpx_mock.get_requests() == []


def test_2_click_usage_error_prints_usage(kwa, creds):
    result = kwa("reply", "--no-such-flag", "hi")
    assert result.exit_code == 2
    assert "Usage" in result.stderr or "No such option" in result.stderr


@pytest.mark.parametrize("name", ["wrong_key", "wrong_number"])
def test_3_auth(kwa, creds, scenario, httpx_mock, name):
    scenario(name)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == ExitCode.AUTH == 3, result.output
    assert len(httpx_mock.get_requests()) == 1  # never retried


def test_3_wa401_hint_is_about_the_business_number(kwa, creds, scenario):
    scenario("wrong_number")
    result = kwa("reply", "--to", TO, "hi")
    assert "WA401" in result.stderr and "--from" in result.stderr


def test_3_auth_error_says_where_the_key_came_from(kwa, creds, scenario, monkeypatch):
    """A shell KALEYRA_API_KEY beats .env; on a 401 the error names its source, masked."""
    (__import__("pathlib").Path.cwd() / ".env").write_text("KALEYRA_API_KEY=DotenvKeyDotenvKey99\n")
    scenario("wrong_key")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 3
    assert "env KALEYRA_API_KEY" in result.stderr and "Aq\u20263" in result.stderr
    assert "DotenvKey" not in result.stderr


def test_4_rejected(kwa, creds, scenario):
    scenario("bad_payload")
    assert kwa("reply", "--to", TO, "hi").exit_code == ExitCode.REJECTED == 4


@pytest.mark.parametrize("status", [301, 302, 307, 404])
def test_4_redirect_or_not_found_is_not_followed(kwa, creds, httpx_mock, status):
    httpx_mock.add_response(url=URL, status_code=status, headers={"Location": "https://evil.example/steal"})
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 4
    assert "base URL" in result.stderr or "base-url" in result.stderr
    assert len(httpx_mock.get_requests()) == 1


def test_5_low_balance(kwa, creds, scenario):
    scenario("low_balance")
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == ExitCode.ACCOUNT == 5
    doc = result.json()
    assert doc["code"] == "E110" and doc["http_status"] == 400 and doc["ok"] is False
    assert doc["error"] == {"balance": "low"}


def test_6_rate_limited_after_retries(kwa, creds, scenario, httpx_mock, no_sleep):
    scenario("rate_limited", times=4)
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == ExitCode.RATE_LIMITED == 6
    assert len(httpx_mock.get_requests()) == 4 and result.json()["attempts"] == 4
    assert no_sleep == [1.0, 1.0, 1.0]


def test_429_twice_then_accepted(kwa, creds, scenario, httpx_mock, no_sleep):
    scenario("rate_limited", times=2)
    scenario("accepted")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert len(httpx_mock.get_requests()) == 3
    assert no_sleep == [1.0, 1.0]


def test_retry_after_over_a_minute_stops_and_reports(kwa, creds, httpx_mock, no_sleep):
    httpx_mock.add_response(url=URL, status_code=429, headers={"Retry-After": "120"}, json={"code": "WA429", "message": "Too many requests"})
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 6 and no_sleep == []


def test_7_server_error_is_not_retried_by_default(kwa, creds, scenario, httpx_mock):
    scenario("server_error")
    assert kwa("reply", "--to", TO, "hi").exit_code == ExitCode.SERVER == 7
    assert len(httpx_mock.get_requests()) == 1


def test_7_server_error_retried_with_retry_unsafe(kwa, creds, scenario, httpx_mock):
    scenario("server_error")
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--retry-unsafe", "hi").exit_code == 0
    assert len(httpx_mock.get_requests()) == 2


def test_503_with_retry_after_is_retried(kwa, creds, httpx_mock, scenario, no_sleep):
    httpx_mock.add_response(url=URL, status_code=503, headers={"Retry-After": "2"}, text="busy")
    scenario("accepted")
    assert kwa("reply", "--to", TO, "hi").exit_code == 0
    assert no_sleep == [2.0]


def test_7_gateway_html_502(kwa, creds, scenario):
    scenario("gateway_html_502")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 7
    assert "502" in result.stderr and "Bad Gateway" in result.stderr
    assert "<html>" not in result.stderr and "Traceback" not in result.stderr


def test_8_network_failure_is_retried(kwa, creds, httpx_mock, no_sleep):
    import httpx

    for _ in range(4):
        httpx_mock.add_exception(httpx.ConnectError("[Errno 111] Connection refused"), url=URL)
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == ExitCode.NETWORK == 8
    assert result.json()["attempts"] == 4 and len(no_sleep) == 3
    assert all(0 <= w <= 20 for w in no_sleep)


def test_9_outcome_unknown_is_not_retried(kwa, creds, httpx_mock):
    import httpx

    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=URL)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN == 9
    assert "Outcome unknown" in result.stderr or "outcome unknown" in result.stderr.lower()
    assert len(httpx_mock.get_requests()) == 1


def test_130_interrupted(kwa, creds, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("kaleyra_cli.client.KaleyraClient.send_reply", interrupt)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == ExitCode.INTERRUPTED == 130


def test_503_with_retry_after_after_retries_says_nothing_was_sent(kwa, creds, httpx_mock, no_sleep):
    for _ in range(4):
        httpx_mock.add_response(url=URL, status_code=503, headers={"Retry-After": "1"}, text="busy")
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == 7
    assert "did not process" in result.json()["hint"]
