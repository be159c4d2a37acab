"""A broken config file is an error naming file, line and column or key path, with a fix: exit 2,
never a traceback, for every config subcommand and for reply/validate."""

from __future__ import annotations

import pytest

from tests.conftest import TO

COMMANDS = [
    ["config", "show"],
    ["config", "show", "--json"],
    ["config", "get", "sid"],
    ["config", "set", "sid", "HX1"],
    ["config", "unset", "sid"],
    ["config", "profiles"],
    ["config", "profiles", "--json"],
    ["config", "use", "prod"],
    ["config", "init", "--no-input", "--sid", "HX1"],
    ["reply", "--to", TO, "hi"],
    ["validate", "--to", TO, "hi"],
]
BROKEN = [
    ('[profiles.prod]\nsid = "HX1\n', ["line 2, column"]),
    ('[profiles.prod]\ntimeout = "30"\n', ["profiles.prod.timeout", "number of seconds"]),
    ('[profiles.prod]\ncolour = "red"\n', ["profiles.prod.colour", "Valid keys"]),
    ('sid = "HX1"\n', ["unknown top-level key 'sid'", "[profiles.default]"]),
]


@pytest.mark.parametrize(("text", "words"), BROKEN, ids=["toml", "type", "key", "top-level"])
@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:3]) for a in COMMANDS])
def test_broken_config_is_exit_2_naming_the_problem(kwa, write_config, config_path, args, text, words):
    write_config(text)
    before = config_path.read_bytes()
    result = kwa(*args)
    assert result.exit_code == 2, result.output
    assert result.exception is None
    shown = result.stdout + result.stderr
    assert "Traceback" not in shown
    assert str(config_path) in shown
    for word in words:
        assert word in shown
    assert config_path.read_bytes() == before


def test_json_mode_failure_is_one_document(kwa, write_config):
    write_config('[profiles.prod]\nsid = "HX1\n')
    result = kwa("config", "show", "--json")
    doc = result.json()
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["code"] == "CONFIG"
    assert "line 2" in doc["message"]
    assert doc["hint"]
