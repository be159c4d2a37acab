"""``kwa config init``: driven at its prompts on a terminal, and with --no-input (DESIGN section 2)."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest

from tests.conftest import API_KEY, SID, WA_NUMBER


def read(path):
    return tomllib.loads(path.read_text(encoding="utf-8"))


def answers(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_prompts_validate_and_write(kwa_tty, config_path):
    result = kwa_tty("config", "init", input=answers(SID, API_KEY, WA_NUMBER, "sg", "y"))
    assert result.exit_code == 0, result.output
    assert read(config_path) == {"profiles": {"default": {"sid": SID, "api_key": API_KEY, "wa_number": WA_NUMBER, "pod": "sg"}}}
    for question in ("Account SID", "API key (input hidden)", "Business WhatsApp number", "Pod"):
        assert question in result.stderr
    assert API_KEY not in result.stdout + result.stderr
    if os.name == "posix":
        assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


def test_bad_answers_are_asked_again(kwa_tty, config_path):
    result = kwa_tty(
        "config",
        "init",
        input=answers("HX-BAD!", SID, "Aq7 Zx1", API_KEY, "98765 43210", "+91 98765 43210", "mars", "", "y"),
    )
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"] == {"sid": SID, "api_key": API_KEY, "wa_number": "+919876543210", "pod": "in"}
    assert result.stderr.count("Account SID") == 2
    assert "letters and digits" in result.stderr
    assert "whitespace" in result.stderr
    assert "E.164" in result.stderr
    assert "not one of in, sg, eu, na" in result.stderr
    assert "Aq7 Zx1" not in result.stderr  # a bad key is never printed back


def test_existing_values_are_the_defaults(kwa_tty, write_config, config_path):
    write_config(f'[profiles.default]\nsid = "{SID}"\napi_key = "{API_KEY}"\nwa_number = "{WA_NUMBER}"\npod = "eu"\n')
    result = kwa_tty("config", "init", input=answers("", "", "", "", "y"))
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"] == {"sid": SID, "api_key": API_KEY, "wa_number": WA_NUMBER, "pod": "eu"}
    assert "Enter keeps Aq\u20263" in result.stderr
    assert f"[{SID}]" in result.stderr


def test_flags_given_are_not_asked(kwa_tty, config_path):
    result = kwa_tty("config", "init", "--sid", SID, "--pod", "na", input=answers(API_KEY, WA_NUMBER, "y"))
    assert result.exit_code == 0, result.output
    assert "Account SID" not in result.stderr and "Pod" not in result.stderr
    assert read(config_path)["profiles"]["default"]["pod"] == "na"


def test_declining_writes_nothing(kwa_tty, config_path):
    result = kwa_tty("config", "init", input=answers(SID, API_KEY, WA_NUMBER, "in", "n"))
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.stderr
    assert not config_path.exists()


def test_end_of_input_cancels_with_130(kwa_tty, config_path):
    result = kwa_tty("config", "init", input=answers(SID))
    assert result.exit_code == 130, result.output
    assert not config_path.exists()


def test_first_named_profile_becomes_the_default(kwa_tty, config_path):
    result = kwa_tty("config", "init", "--profile", "prod", input=answers(SID, API_KEY, WA_NUMBER, "in", "y"))
    assert result.exit_code == 0, result.output
    assert read(config_path)["default_profile"] == "prod"


def test_another_profile_leaves_the_default_alone(kwa_tty, write_config, config_path):
    write_config('[profiles.default]\nsid = "A1"\n')
    result = kwa_tty("config", "init", "--profile", "test", input=answers(SID, API_KEY, WA_NUMBER, "in", "y"))
    assert result.exit_code == 0, result.output
    doc = read(config_path)
    assert "default_profile" not in doc
    assert doc["profiles"]["default"] == {"sid": "A1"}
    assert "kwa config use test" in result.stderr


# ---------------------------------------------------------------- never prompting


def test_no_input_with_flags_writes_the_profile(kwa, config_path, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(API_KEY + "\n")
    result = kwa("config", "init", "--no-input", "--sid", SID, "--api-key-file", str(key_file), "--from", "+91 90000 12345", "--pod", "sg")
    assert result.exit_code == 0, result.output
    assert read(config_path) == {"profiles": {"default": {"sid": SID, "api_key": API_KEY, "wa_number": WA_NUMBER, "pod": "sg"}}}
    assert API_KEY not in result.stdout + result.stderr


def test_no_input_key_from_stdin(kwa, config_path):
    result = kwa("config", "init", "--no-input", "--sid", SID, "--api-key-file", "-", "--from", WA_NUMBER, input=API_KEY)
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["api_key"] == API_KEY


@pytest.mark.parametrize(
    ("how", "reason"),
    [("no_input", "--no-input was given"), ("ci", "CI is set"), ("no_tty", "stdin is not a terminal")],
)
def test_never_prompts_and_names_the_missing_flags(kwa, kwa_tty, monkeypatch, config_path, how, reason):
    if how == "no_input":
        result = kwa_tty("config", "init", "--no-input", "--sid", SID, input=answers(API_KEY, WA_NUMBER, "in", "y"))
    elif how == "ci":
        monkeypatch.setenv("CI", "1")
        result = kwa_tty("config", "init", "--sid", SID, input=answers(API_KEY, WA_NUMBER, "in", "y"))
    else:
        result = kwa("config", "init", "--sid", SID, input=answers(API_KEY, WA_NUMBER, "in", "y"))
    assert result.exit_code == 2, result.output
    assert reason in result.stderr
    assert "--api-key-file" in result.stderr and "--from" in result.stderr
    assert "--sid SID" not in result.stderr  # given already
    assert "Account SID" not in result.stderr and "API key (input hidden)" not in result.stderr
    assert not config_path.exists()


def test_no_input_completes_an_existing_profile(kwa, write_config, config_path):
    write_config(f'[profiles.default]\nsid = "{SID}"\napi_key = "{API_KEY}"\nwa_number = "{WA_NUMBER}"\n')
    result = kwa("config", "init", "--no-input", "--pod", "eu")
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["pod"] == "eu"


def test_no_input_bad_flag_value_is_exit_2(kwa, config_path, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(API_KEY)
    result = kwa("config", "init", "--no-input", "--sid", SID, "--api-key-file", str(key_file), "--from", "98765 43210")
    assert result.exit_code == 2, result.output
    assert "E.164" in result.stderr
    assert not config_path.exists()


def test_ci_false_still_prompts(kwa_tty, monkeypatch, config_path):
    monkeypatch.setenv("CI", "false")
    result = kwa_tty("config", "init", input=answers(SID, API_KEY, WA_NUMBER, "in", "y"))
    assert result.exit_code == 0, result.output
