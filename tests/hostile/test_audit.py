"""Secret audit: the API key is masked in every mode and every path, including tracebacks under
``--verbose``, raw response dumps, ``config show``; a key with whitespace or control characters
inside is refused before any request, whatever file it came from (issue 6, DESIGN section 5).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, SID, TO, URL, WA_NUMBER

MODES = [["-o", "plain"], ["-o", "table"], ["--json"]]
MASK = "Aq\u20263"


def assert_no_key(result, key: str = API_KEY) -> None:
    text = result.stdout + result.stderr
    assert key not in text, result.output
    assert json.dumps(key)[1:-1] not in text, result.output
    assert key[:10] not in text, result.output  # not even a piece of it


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_traceback_under_verbose_masks_the_key(kwa, creds, monkeypatch, mode):
    """An internal error whose message and locals hold the key: the --verbose traceback masks it."""

    def boom(self, request):
        api_key = self._api_key  # noqa: F841 - a local holding the key, as a real bug would have
        raise RuntimeError(f"unexpected state for key {self._api_key}")

    monkeypatch.setattr("kaleyra_cli.client.KaleyraClient.send_reply", boom)
    result = kwa("reply", "--to", TO, "--verbose", *mode, "hi")
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.stderr and "RuntimeError" in result.stderr
    assert_no_key(result)
    assert MASK in result.stdout + result.stderr


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_key_straddling_the_verbose_dump_cut_is_masked(kwa, creds, httpx_mock, mode):
    """--verbose shows the first 2,000 characters of an answer: a key across the cut must not show in part."""
    body = ("x" * 1990 + API_KEY).encode()
    httpx_mock.add_response(url=URL, status_code=502, content=body, headers={"Content-Type": "text/html"})
    result = kwa("reply", "--to", TO, "--verbose", *mode, "hi")
    assert result.exit_code == 7, result.output
    assert_no_key(result)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_key_echoed_url_encoded_in_a_redirect_is_masked(kwa, monkeypatch, httpx_mock, mode, creds):
    key = "Ab+cd/ef=gh0123456789"
    monkeypatch.setenv("KALEYRA_API_KEY", key)
    from urllib.parse import quote

    httpx_mock.add_response(url=URL, status_code=302, headers={"Location": f"https://evil.example/?k={quote(key, safe='')}"})
    result = kwa("reply", "--to", TO, "--verbose", *mode, "hi")
    assert result.exit_code == 4, result.output
    assert quote(key, safe="") not in result.stdout + result.stderr
    assert_no_key(result, key)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_key_used_as_another_setting_is_masked_in_that_error(kwa, monkeypatch, mode, tmp_path):
    """A key pasted into the wrong variable (here the pod) after it was read: the error masks it."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"KALEYRA_API_KEY={API_KEY}\nKALEYRA_POD={API_KEY}\n")
    env_file.chmod(0o600)
    result = kwa("reply", "--env-file", str(env_file), "--to", TO, *mode, "hi")
    assert result.exit_code == 2, result.output
    assert_no_key(result)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_config_show_never_prints_any_key(kwa, monkeypatch, tmp_path, mode):
    keys = {"env": 'Env"Key\\0123456789', "dotenv": "DotEnvKey0123456789+/=", "config": "CfgKey0123456789<&>"}
    monkeypatch.setenv("KALEYRA_API_KEY", keys["env"])
    (tmp_path / ".env").write_text(f"KALEYRA_API_KEY='{keys['dotenv']}'\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\napi_key = "{keys["config"]}"\nsid = "{SID}"\nwa_number = "{WA_NUMBER}"\n')
    config.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    show = ["config", "show", "--config", str(config)]
    result = kwa(*show, *mode)
    assert result.exit_code == 0, result.output
    for key in keys.values():
        assert_no_key(result, key)


@pytest.mark.parametrize("bad", ["Aq7Zx1Sec4 tKey9Test", "Aq7Zx1Sec4\ttKey9Test", "Aq7Zx1Sec4\x1b[2JKey9", "Aq7Zx1Sec4\u00a0Key9Test", "Aq7Zx1Sec4\u200bKey9Test", "Aq7Zx1Sec4\u00e9Key9Test"])
@pytest.mark.parametrize("where", ["env", "dotenv", "config", "key_file", "stdin"])
def test_key_with_inner_whitespace_or_control_is_refused_before_any_request(kwa, monkeypatch, httpx_mock, tmp_path, bad, where):
    monkeypatch.setenv("KALEYRA_SID", SID)
    monkeypatch.setenv("KALEYRA_WA_NUMBER", WA_NUMBER)
    args = ["reply", "--to", TO]
    stdin = None
    if where == "env":
        monkeypatch.setenv("KALEYRA_API_KEY", bad)
    elif where == "dotenv":
        path = tmp_path / ".env"
        path.write_text(f"KALEYRA_API_KEY='{bad}'\n", encoding="utf-8")
        args += ["--env-file", str(path)]
    elif where == "config":
        import tomli_w

        path = tmp_path / "config.toml"
        path.write_text(tomli_w.dumps({"profiles": {"default": {"api_key": bad}}}))
        args += ["--config", str(path)]
    elif where == "key_file":
        path = tmp_path / "key"
        path.write_text(f"  {bad}\n")
        path.chmod(0o600)
        args += ["--api-key-file", str(path)]
    else:
        args += ["--api-key-file", "-"]
        stdin = bad + "\n"
    result = kwa(*args, "--json", "hi", input=stdin)
    assert result.exit_code == 2, result.output
    doc = result.json()
    assert doc["code"] == "API_KEY_INVALID" and "position 11" in doc["message"]
    assert httpx_mock.get_requests() == []
    assert "Key9" not in result.stdout + result.stderr  # the key itself is never quoted


def test_surrounding_whitespace_is_trimmed_from_every_source(kwa, creds, monkeypatch, httpx_mock, scenario, tmp_path):
    path = tmp_path / "key"
    path.write_text(f"\ufeff \t{API_KEY}\r\n\n")
    path.chmod(0o600)
    scenario("accepted")
    monkeypatch.delenv("KALEYRA_API_KEY")
    result = kwa("reply", "--to", TO, "--api-key-file", str(path), "hi")
    assert result.exit_code == 0, result.output
    assert httpx_mock.get_requests()[0].headers["api-key"] == API_KEY
