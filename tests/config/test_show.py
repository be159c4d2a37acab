"""``kwa config show``: every setting, its value (the key masked) and its source, in every mode."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, SID, WA_NUMBER

PROFILE = f'[profiles.default]\nsid = "{SID}"\napi_key = "{API_KEY}"\nwa_number = "{WA_NUMBER}"\n'
SETTINGS = ("sid", "api_key", "wa_number", "pod", "base_url", "wa_source", "timeout", "profile", "config", "env_file")
MASK = "Aq\u20263"


def plain_lines(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


@pytest.mark.parametrize("mode", ["json", "plain", "table", "auto"])
def test_no_full_key_in_any_mode(kwa, write_config, monkeypatch, isolated_env, tmp_path, mode):
    # The key at every level at once: profile, .env, env and --api-key-file; none may leak.
    write_config(PROFILE)
    (isolated_env / ".env").write_text("KALEYRA_API_KEY=DotenvKey0000000000000009\n")
    monkeypatch.setenv("KALEYRA_API_KEY", "EnvKey000000000000000007")
    key_file = tmp_path / "key"
    key_file.write_text("FlagKey00000000000000005\n")
    key_file.chmod(0o600)
    result = kwa("config", "show", "-o", mode, "--api-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    everything = result.stdout + result.stderr
    for key in (API_KEY, "DotenvKey0000000000000009", "EnvKey000000000000000007", "FlagKey00000000000000005"):
        assert key not in everything
        assert key[4:-4] not in everything  # not even most of it
    assert "Fl\u20265" in result.stdout


def test_json_document(kwa, write_config, config_path, monkeypatch):
    write_config(PROFILE)
    monkeypatch.setenv("KALEYRA_SID", "SHELLSID1")
    result = kwa("config", "show", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["schema_version"] == 1 and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["profile"] == "default"
    assert doc["config_path"] == str(config_path)
    assert tuple(doc["settings"]) == SETTINGS
    where = f"config {config_path} [profiles.default]"
    # The shell's KALEYRA_SID wins, and the profile's sid is listed as overridden.
    assert doc["settings"]["sid"] == {
        "value": "SHELLSID1",
        "source": "env KALEYRA_SID",
        "source_kind": "env",
        "overridden": [{"value": SID, "source": where, "source_kind": "config"}],
        "note": None,
    }
    assert doc["settings"]["api_key"]["value"] == MASK
    assert doc["settings"]["api_key"]["source"] == where
    assert doc["settings"]["wa_number"]["source"] == where
    assert doc["settings"]["pod"] == {"value": "in", "source": "default", "source_kind": "default", "overridden": [], "note": None}
    assert doc["settings"]["base_url"]["value"] == "https://api.in.kaleyra.io"
    assert doc["settings"]["base_url"]["source"] == "default (from pod in)"
    assert doc["settings"]["timeout"]["value"] == 30
    assert doc["settings"]["wa_source"]["value"] is None
    assert doc["settings"]["wa_source"]["source"] == "not set"
    assert doc["settings"]["config"]["value"] == str(config_path)
    assert doc["settings"]["config"]["source"] == "env KWA_CONFIG"
    assert doc["warnings"] == []


def test_plain_lines_state_each_source(kwa, write_config, config_path, monkeypatch):
    write_config(PROFILE)
    monkeypatch.setenv("KALEYRA_SID", "SHELLSID1")
    result = kwa("config", "show", "-o", "plain")
    assert result.exit_code == 0, result.output
    lines = plain_lines(result.stdout)
    assert all(len(fields) == 3 for fields in lines)
    where = f"config {config_path} [profiles.default]"
    assert lines[0] == ["sid", "SHELLSID1", "env KALEYRA_SID"]
    assert lines[1] == ["sid", SID, f"{where} (overridden)"]
    assert ["api_key", MASK, where] in lines
    assert ["timeout", "30", "default"] in lines
    assert ["profile", "default", "default"] in lines
    assert [fields[0] for fields in lines if not fields[2].endswith("(overridden)")] == list(SETTINGS)


def test_table_states_sources_and_overridden(kwa, write_config, monkeypatch):
    write_config(PROFILE)
    monkeypatch.setenv("KALEYRA_SID", "SHELLSID1")
    result = kwa("config", "show", "-o", "table")
    assert result.exit_code == 0, result.output
    assert "env KALEYRA_SID" in result.stdout
    assert "overridden" in result.stdout
    assert SID in result.stdout
    for name in SETTINGS:
        assert name in result.stdout


def test_every_kind_of_source(kwa, write_config, config_path, monkeypatch, isolated_env):
    write_config(PROFILE + 'wa_source = "zoho"\ntimeout = 12\n')
    (isolated_env / ".env").write_text("KALEYRA_WA_NUMBER=+919000000002\n")
    monkeypatch.setenv("KALEYRA_POD", "sg")
    result = kwa("config", "show", "--json", "--sid", "FLAGSID4", "--timeout", "5")
    settings = result.json()["settings"]
    dotenv = isolated_env / ".env"
    assert settings["sid"]["source"] == "flag --sid"
    assert settings["wa_number"]["source"] == f".env {dotenv}"
    assert settings["wa_number"]["overridden"][0]["value"] == WA_NUMBER
    assert settings["pod"]["source"] == "env KALEYRA_POD"
    assert settings["base_url"] == {
        "value": "https://api.ap.kaleyra.io",
        "source": "env KALEYRA_POD (from pod sg)",
        "source_kind": "env",
        "overridden": [],
        "note": None,
    }
    assert settings["wa_source"]["source"] == f"config {config_path} [profiles.default]"
    assert settings["timeout"]["value"] == 5 and settings["timeout"]["source"] == "flag --timeout"
    assert settings["timeout"]["overridden"][0]["value"] == 12
    assert settings["env_file"]["value"] == str(dotenv)


def test_base_url_decides_and_pod_is_marked_unused(kwa, write_config, monkeypatch):
    write_config(PROFILE + 'pod = "eu"\nbase_url = "https://proxy.example"\n')
    monkeypatch.setenv("KALEYRA_BASE_URL", "http://127.0.0.1:8181")
    settings = kwa("config", "show", "--json").json()["settings"]
    assert settings["base_url"]["value"] == "http://127.0.0.1:8181"
    assert settings["base_url"]["source"] == "env KALEYRA_BASE_URL"
    assert settings["base_url"]["overridden"][0]["value"] == "https://proxy.example"
    assert settings["pod"]["value"] == "eu"
    assert "not used" in settings["pod"]["note"]


def test_profile_source(kwa, write_config, monkeypatch, config_path):
    write_config('default_profile = "prod"\n[profiles.prod]\nsid = "P1"\n[profiles.test]\nsid = "T1"\n')
    settings = kwa("config", "show", "--json").json()["settings"]
    assert settings["profile"]["value"] == "prod"
    assert settings["profile"]["source"] == f"config {config_path} default_profile"
    monkeypatch.setenv("KWA_PROFILE", "test")
    settings = kwa("config", "show", "--json").json()["settings"]
    assert settings["profile"]["value"] == "test"
    assert settings["profile"]["source"] == "env KWA_PROFILE"
    assert settings["sid"]["value"] == "T1"
    settings = kwa("config", "show", "--json", "--profile", "prod").json()["settings"]
    assert settings["profile"]["source"] == "flag --profile"
    assert settings["profile"]["overridden"] == [{"value": "test", "source": "env KWA_PROFILE", "source_kind": "env"}]


def test_no_env_file_flag_is_the_source(kwa, isolated_env):
    (isolated_env / ".env").write_text("KALEYRA_SID=DOTENV1\n")
    settings = kwa("config", "show", "--json", "--no-env-file").json()["settings"]
    assert settings["env_file"]["value"] is None
    assert settings["env_file"]["source"] == "flag --no-env-file"
    assert settings["sid"]["value"] is None


def test_key_in_a_file_others_can_read_warns(kwa, write_config, config_path):
    write_config(PROFILE).chmod(0o644)
    result = kwa("config", "show", "-o", "plain")
    assert result.exit_code == 0, result.output
    assert "other users can read" in result.stderr
    assert f"chmod 600 {config_path}" in result.stderr


def test_missing_named_config_file_warns(kwa, tmp_path):
    result = kwa("config", "show", "--json", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 0, result.output
    assert result.json()["warnings"][0]["code"] == "CONFIG_NOT_FOUND"
    assert result.json()["settings"]["config"]["note"] == "the file does not exist"


def test_unknown_profile_is_exit_2(kwa, write_config):
    write_config(PROFILE)
    result = kwa("config", "show", "--profile", "staging")
    assert result.exit_code == 2, result.output
    assert "its profiles are: default" in result.stderr


def test_control_characters_in_values_are_neutralised(kwa, write_config):
    write_config('[profiles.default]\nwa_source = "a\\u001b[31mred\\tb"\n')
    result = kwa("config", "show", "-o", "plain")
    assert "\x1b" not in result.stdout
    line = next(fields for fields in plain_lines(result.stdout) if fields[0] == "wa_source")
    assert len(line) == 3
