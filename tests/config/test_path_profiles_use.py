"""``kwa config path``, ``profiles`` and ``use``."""

from __future__ import annotations

import tomllib

import pytest

TWO = 'default_profile = "prod"\n[profiles.prod]\nsid = "P1"\napi_key = "ProdKey000000000000000000"\n[profiles.test]\nsid = "T1"\n'


# ---------------------------------------------------------------- path


def test_path_prints_kwa_config(kwa, config_path):
    result = kwa("config", "path")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{config_path}\n"
    assert "does not exist yet" in result.stderr


def test_path_flag_beats_env_and_dotenv(kwa, tmp_path, isolated_env, monkeypatch):
    (isolated_env / ".env").write_text(f"KWA_CONFIG={tmp_path / 'dotenv.toml'}\n")
    assert kwa("config", "path", "--config", str(tmp_path / "flag.toml")).stdout == f"{tmp_path / 'flag.toml'}\n"
    monkeypatch.delenv("KWA_CONFIG")
    assert kwa("config", "path").stdout == f"{tmp_path / 'dotenv.toml'}\n"
    assert kwa("config", "path", "--no-env-file").stdout.strip().endswith("config.toml")


def test_path_default_is_platformdirs(kwa, monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("KWA_CONFIG")
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda appname: str(tmp_path / "cfg" / appname))
    assert kwa("config", "path").stdout == f"{tmp_path / 'cfg' / 'kwa' / 'config.toml'}\n"


def test_path_works_with_a_broken_file(kwa, write_config, config_path):
    write_config("not toml [")
    result = kwa("config", "path")
    assert result.exit_code == 0
    assert result.stdout == f"{config_path}\n"


# ---------------------------------------------------------------- profiles


def test_profiles_plain(kwa, write_config):
    write_config(TWO)
    result = kwa("config", "profiles")
    assert result.exit_code == 0, result.output
    assert result.stdout == "prod\tactive,default\ntest\n"


def test_profiles_marks_the_active_one(kwa, write_config, monkeypatch):
    write_config(TWO)
    monkeypatch.setenv("KWA_PROFILE", "test")
    assert kwa("config", "profiles").stdout == "prod\tdefault\ntest\tactive\n"
    assert kwa("config", "profiles", "--profile", "prod").stdout == "prod\tactive,default\ntest\n"


def test_profiles_json(kwa, write_config, config_path):
    write_config(TWO)
    doc = kwa("config", "profiles", "--json").json()
    assert doc == {
        "schema_version": 1,
        "ok": True,
        "exit_code": 0,
        "config_path": str(config_path),
        "default_profile": "prod",
        "active_profile": {"name": "prod", "source": f"config {config_path} default_profile"},
        "profiles": [
            {"name": "prod", "active": True, "default": True, "keys": ["sid", "api_key"]},
            {"name": "test", "active": False, "default": False, "keys": ["sid"]},
        ],
        "warnings": [],
    }


def test_profiles_table_never_shows_values(kwa, write_config):
    write_config(TWO)
    result = kwa("config", "profiles", "-o", "table")
    assert result.exit_code == 0, result.output
    assert "prod" in result.stdout and "active" in result.stdout and "api_key" in result.stdout
    assert "ProdKey" not in result.stdout


def test_profiles_when_there_are_none(kwa):
    result = kwa("config", "profiles")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "kwa config init" in result.stderr
    assert kwa("config", "profiles", "--json").json()["profiles"] == []


def test_profiles_warns_about_a_missing_active_profile(kwa, write_config, monkeypatch):
    write_config(TWO)
    monkeypatch.setenv("KWA_PROFILE", "staging")
    result = kwa("config", "profiles")
    assert result.exit_code == 0, result.output
    assert "'staging' (from env KWA_PROFILE) is not in" in result.stderr


# ---------------------------------------------------------------- use


def test_use_sets_default_profile(kwa, write_config, config_path):
    write_config(TWO)
    result = kwa("config", "use", "test")
    assert result.exit_code == 0, result.output
    assert tomllib.loads(config_path.read_text())["default_profile"] == "test"
    assert kwa("config", "profiles").stdout == "prod\ntest\tactive,default\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [(TWO, "its profiles are: prod, test"), ("", "has no profiles"), (None, "does not exist")],
)
def test_use_unknown_profile_is_exit_2_listing_profiles(kwa, write_config, config_path, text, words):
    if text is not None:
        write_config(text)
    before = config_path.read_bytes() if config_path.exists() else None
    result = kwa("config", "use", "staging")
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert "kwa config init --profile staging" in result.stderr
    assert (config_path.read_bytes() if config_path.exists() else None) == before


def test_use_did_you_mean(kwa, write_config):
    write_config(TWO)
    assert "Did you mean 'prod'" in kwa("config", "use", "prd").stderr


def test_use_warns_when_kwa_profile_still_wins(kwa, write_config, monkeypatch):
    write_config(TWO)
    monkeypatch.setenv("KWA_PROFILE", "prod")
    result = kwa("config", "use", "test")
    assert result.exit_code == 0, result.output
    assert "env KWA_PROFILE selects profile 'prod'" in result.stderr
