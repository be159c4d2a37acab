"""Shared fixtures: an isolated environment for every test, a CLI runner, named API scenarios.

Every test runs with no KALEYRA_*/KWA_* variables from the developer's shell, a config file
and state folder under tmp_path, the working directory in tmp_path (so no stray .env is read),
NO_COLOR=1 and a fixed COLUMNS. Tests never reach any address but loopback: pytest-httpx
intercepts httpx unless a test uses a real loopback server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

# Hypothesis profiles ("long") must exist before pytest's hypothesis plugin loads one by name.
from tests.hostile import _profiles as _hypothesis_profiles  # noqa: F401

SID = "HXAP16TEST0097IN"
API_KEY = "Aq7Zx1Sec4etKey9Test0000000000003"
WA_NUMBER = "+919000012345"
TO = "+919876543210"
BASE_URL = "https://api.in.kaleyra.io"
URL = f"{BASE_URL}/v2/{SID}/whatsapp/{WA_NUMBER}/messages"
MESSAGE_ID = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA="


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    for name in list(os.environ):
        if name.startswith(("KALEYRA_", "KWA_", "GITHUB_")) or name in ("CI", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
    # Own folders, not tmp_path: tests may assert on what tmp_path holds.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KWA_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("KWA_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid credentials in the environment."""
    monkeypatch.setenv("KALEYRA_SID", SID)
    monkeypatch.setenv("KALEYRA_API_KEY", API_KEY)
    monkeypatch.setenv("KALEYRA_WA_NUMBER", WA_NUMBER)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def kwa() -> Callable[..., Result]:
    """Run the CLI in-process: ``kwa("reply", "--to", ..., input="...")`` → :class:`Result`."""
    from kaleyra_cli.cli import app

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=True)
        exc = result.exception if not isinstance(result.exception, SystemExit) else None
        return Result(result.exit_code, result.stdout, result.stderr, exc)

    return run


def api_body(code: str, message: str, data: Any = None, error: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {} if data is None else data, "error": error or {}}


# Named API scenarios (STYLE "Do" 8): (status, JSON body or bytes, headers).
SCENARIOS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "accepted": (202, {"code": "WA202", "message": "Request Accepted", "data": {"message_id": MESSAGE_ID}, "error": {}}, {}),
    "wrong_key": (401, api_body("RBC001", "Incorrect SID or API key.", [], {"error": "Incorrect SID or API key."}), {}),
    "wrong_number": (
        401,
        api_body("WA401", "Phone number is not present or does not belong to the account.", {}, {"phone_number": "x"}),
        {},
    ),
    "bad_payload": (400, api_body("WA400", "Refer to correct payload format", {}, {"payload": "Incorrect payload format"}), {}),
    "low_balance": (400, api_body("E110", "Please check your balance, You have a low balance!", {}, {"balance": "low"}), {}),
    "rate_limited": (429, api_body("WA429", "Too many requests"), {"Retry-After": "1"}),
    "server_error": (500, api_body("WA500", "Please try again later", {}, {"error": "Internal server error"}), {}),
    "gateway_html_502": (
        502,
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
        {"Content-Type": "text/html"},
    ),
}


@pytest.fixture
def scenario(httpx_mock: Any) -> Callable[..., None]:
    """Queue a named answer for the next request to the test URL: ``scenario("accepted")``."""

    def add(name: str, *, url: str = URL, times: int = 1) -> None:
        status, body, headers = SCENARIOS[name]
        for _ in range(times):
            if isinstance(body, bytes):
                httpx_mock.add_response(url=url, method="POST", status_code=status, content=body, headers=headers)
            else:
                httpx_mock.add_response(url=url, method="POST", status_code=status, json=body, headers=headers)

    return add
