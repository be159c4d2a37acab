"""``kwa config unset``."""

from __future__ import annotations

import tomllib

from tests.conftest import SID


def test_unset_removes_the_key(kwa, write_config, config_path):
    write_config(f'[profiles.default]\nsid = "{SID}"\npod = "sg"\n')
    result = kwa("config", "unset", "pod")
    assert result.exit_code == 0, result.output
    assert tomllib.loads(config_path.read_text())["profiles"]["default"] == {"sid": SID}
    assert "removed pod" in result.stderr


def test_unset_of_a_key_not_set_changes_nothing(kwa, write_config, config_path):
    path = write_config(f'# mine\n[profiles.default]\nsid = "{SID}"\n')
    before = path.read_bytes()
    result = kwa("config", "unset", "pod")
    assert result.exit_code == 0, result.output
    assert "nothing changed" in result.stderr
    assert path.read_bytes() == before  # not even rewritten


def test_unset_in_a_named_profile(kwa, write_config, config_path):
    write_config('[profiles.a]\nsid = "A1"\n[profiles.b]\nsid = "B2"\n')
    assert kwa("config", "unset", "sid", "--profile", "b").exit_code == 0
    assert tomllib.loads(config_path.read_text())["profiles"] == {"a": {"sid": "A1"}, "b": {}}


def test_unset_in_a_missing_profile_lists_profiles(kwa, write_config):
    write_config('[profiles.a]\nsid = "A1"\n')
    result = kwa("config", "unset", "sid", "--profile", "zzz")
    assert result.exit_code == 2, result.output
    assert "its profiles are: a" in result.stderr


def test_unset_unknown_key(kwa):
    result = kwa("config", "unset", "colour")
    assert result.exit_code == 2
    assert "Valid keys" in result.stderr


def test_unset_without_a_file_creates_nothing(kwa, config_path):
    result = kwa("config", "unset", "sid")
    assert result.exit_code == 0, result.output
    assert not config_path.exists()
