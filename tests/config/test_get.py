"""``kwa config get``: the stored value alone on stdout, for ``$(...)``; the key only with --reveal."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, SID

PROFILE = f'[profiles.default]\nsid = "{SID}"\napi_key = "{API_KEY}"\ntimeout = 30\n[profiles.b64]\napi_key = "QWxhZGRpbjpvcGVu=="\n'


def test_get_prints_the_raw_value(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "sid")
    assert result.exit_code == 0, result.output
    assert result.stdout == SID + "\n"
    assert result.stderr == ""


def test_get_timeout(kwa, write_config):
    write_config(PROFILE)
    assert kwa("config", "get", "timeout").stdout == "30\n"


def test_get_api_key_without_reveal_prints_nothing_for_scripts(kwa, write_config):
    """`KEY=$(kwa config get api_key)` must not silently capture the mask as if it were the key."""
    write_config(PROFILE)
    result = kwa("config", "get", "api_key")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "--reveal" in result.stderr and "Aq\u20263" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


def test_get_api_key_masked_in_table_and_json(kwa, write_config):
    write_config(PROFILE)
    table = kwa("config", "get", "api_key", "-o", "table")
    doc = kwa("config", "get", "api_key", "--json")
    assert table.exit_code == 0 and "Aq\u20263" in table.stdout
    assert doc.exit_code == 0 and doc.json()["masked"] is True and doc.json()["value"] == "Aq\u20263"
    assert API_KEY not in table.stdout + table.stderr + doc.stdout + doc.stderr


def test_get_api_key_with_reveal(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "api_key", "--reveal")
    assert result.exit_code == 0, result.output
    assert result.stdout == API_KEY + "\n"


def test_base64_padding_is_kept(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "api_key", "--reveal", "--profile", "b64")
    assert result.stdout == "QWxhZGRpbjpvcGVu==\n"


def test_get_json(kwa, write_config, config_path):
    write_config(PROFILE)
    doc = kwa("config", "get", "sid", "--json").json()
    assert doc == {
        "schema_version": 1,
        "ok": True,
        "exit_code": 0,
        "profile": "default",
        "config_path": str(config_path),
        "key": "sid",
        "value": SID,
        "masked": False,
    }
    masked = kwa("config", "get", "api_key", "-o", "json")
    assert masked.json()["value"] == "Aq\u20263" and masked.json()["masked"] is True
    assert API_KEY not in masked.stdout


def test_unset_key_is_exit_2_with_nothing_on_stdout(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "wa_number")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "wa_number is not set in profile 'default'" in result.stderr


def test_unset_key_set_in_env_says_so(kwa, write_config, monkeypatch):
    write_config(PROFILE)
    monkeypatch.setenv("KALEYRA_WA_NUMBER", "+919000012345")
    result = kwa("config", "get", "wa_number")
    assert result.exit_code == 2
    assert "env KALEYRA_WA_NUMBER sets it" in result.stderr


def test_get_without_a_config_file(kwa):
    result = kwa("config", "get", "sid")
    assert result.exit_code == 2, result.output
    assert "not set" in result.stderr


def test_get_json_failure_is_one_document(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "pod", "--json")
    assert result.exit_code == 2
    doc = result.json()
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["code"] == "SETTING_NOT_SET"


@pytest.mark.parametrize("args", [["--profile", "nope"], []])
def test_unknown_profile_lists_profiles(kwa, write_config, monkeypatch, args):
    write_config(PROFILE)
    if not args:
        monkeypatch.setenv("KWA_PROFILE", "nope")
    result = kwa("config", "get", "sid", *args)
    assert result.exit_code == 2, result.output
    assert "b64, default" in result.stderr


def test_unknown_key(kwa):
    result = kwa("config", "get", "colour")
    assert result.exit_code == 2
    assert "Valid keys" in result.stderr


def test_json_conflicting_with_output_is_a_usage_error(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "get", "sid", "--json", "-o", "plain")
    assert result.exit_code == 2
