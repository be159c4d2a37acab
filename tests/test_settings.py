"""Settings from .env and the environment, with sources (DESIGN section 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaleyra_cli.errors import UsageError
from kaleyra_cli.settings import SettingsInput, resolve_settings
from tests.conftest import SID, TO, WA_NUMBER


def write_env(text: str, newline: str = "\n") -> Path:
    path = Path.cwd() / ".env"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_dotenv_export_crlf_and_quoted_values(kwa, httpx_mock):
    write_env(
        "# kwa settings\n"
        f"export KALEYRA_SID={SID}\n"
        'KALEYRA_API_KEY="Ab#cd=ef0123456789"   # trailing comment\n'
        f"KALEYRA_WA_NUMBER='{WA_NUMBER}'\n",
        newline="\r\n",
    )
    httpx_mock.add_response(status_code=202, json={"code": "WA202", "data": {"message_id": "m1"}})
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    (request,) = httpx_mock.get_requests()
    assert request.headers["api-key"] == "Ab#cd=ef0123456789"
    assert f"/v2/{SID}/whatsapp/{WA_NUMBER}/messages" in str(request.url)


def test_shell_environment_beats_dotenv(monkeypatch):
    write_env(f"KALEYRA_SID=FROMDOTENV\nKALEYRA_WA_NUMBER={WA_NUMBER}\n")
    monkeypatch.setenv("KALEYRA_SID", "FROMSHELL")
    settings = resolve_settings(SettingsInput())
    assert settings.sid.value == "FROMSHELL"
    assert str(settings.sid.source) == "env KALEYRA_SID"
    assert settings.sid.overridden[0][0] == "FROMDOTENV"
    assert settings.wa_number.source.kind == "dotenv"


def test_flag_beats_environment(monkeypatch):
    monkeypatch.setenv("KALEYRA_SID", "FROMSHELL")
    settings = resolve_settings(SettingsInput(sid="FROMFLAG"))
    assert settings.sid.value == "FROMFLAG" and str(settings.sid.source) == "flag --sid"


def test_empty_variable_counts_as_unset(monkeypatch):
    write_env("KALEYRA_SID=FROMDOTENV\n")
    monkeypatch.setenv("KALEYRA_SID", "")
    assert resolve_settings(SettingsInput()).sid.value == "FROMDOTENV"


def test_no_env_file_ignores_dotenv():
    write_env("KALEYRA_SID=FROMDOTENV\n")
    assert resolve_settings(SettingsInput(no_env_file=True)).sid.value is None


def test_env_file_flag(tmp_path):
    path = tmp_path / "other.env"
    path.write_text("KALEYRA_SID=OTHER\n")
    assert resolve_settings(SettingsInput(env_file=path)).sid.value == "OTHER"


def test_missing_env_file_flag_is_an_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        resolve_settings(SettingsInput(env_file=tmp_path / "nope.env"))


def test_non_utf8_env_file_is_a_clear_error(kwa):
    (Path.cwd() / ".env").write_bytes(b"KALEYRA_SID=\xff\xfe\n")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 2 and ".env" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        ({}, {}, "https://api.in.kaleyra.io"),
        ({"KALEYRA_POD": "sg"}, {}, "https://api.ap.kaleyra.io"),
        ({"KALEYRA_POD": "na"}, {}, "https://api.na.kaleyra.ai"),
        ({"KALEYRA_BASE_URL": "http://127.0.0.1:8181/"}, {}, "http://127.0.0.1:8181"),
        ({"KALEYRA_BASE_URL": "http://127.0.0.1:8181", "KALEYRA_POD": "eu"}, {}, "http://127.0.0.1:8181"),
        ({"KALEYRA_BASE_URL": "http://127.0.0.1:8181"}, {"pod": "eu"}, "https://api.eu.kaleyra.io"),
        ({"KALEYRA_POD": "eu"}, {"base_url": "https://proxy.example/kaleyra"}, "https://proxy.example/kaleyra"),
    ],
)
def test_endpoint_from_highest_level_base_url_wins_within_a_level(monkeypatch, env, flags, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_settings(SettingsInput(**flags)).base_url.value == expected


def test_unknown_pod_is_an_error():
    with pytest.raises(UsageError, match="pod"):
        resolve_settings(SettingsInput(pod="us"))


def test_sid_with_path_characters_is_refused():
    with pytest.raises(UsageError, match="SID"):
        resolve_settings(SettingsInput(sid="HX/../x"))
