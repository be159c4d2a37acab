"""``kwa config set``: validation as ``reply`` would do it, the key's three ways in, a 0600 file
written atomically (DESIGN section 2)."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest

from kaleyra_cli import config_file
from tests.conftest import API_KEY, SID, WA_NUMBER

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def read(path):
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_set_writes_the_active_profile(kwa, config_path):
    result = kwa("config", "set", "sid", SID)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert read(config_path) == {"profiles": {"default": {"sid": SID}}}
    assert f"set sid = {SID}" in result.stderr
    assert str(config_path) in result.stderr


@pytest.mark.parametrize("how", ["flag", "env", "default_profile"])
def test_set_honours_the_selected_profile(kwa, config_path, write_config, monkeypatch, how):
    write_config('default_profile = "prod"\n[profiles.prod]\nsid = "OLD1"\n' if how == "default_profile" else "")
    args = ["config", "set", "sid", SID]
    if how == "flag":
        args += ["--profile", "prod"]
    elif how == "env":
        monkeypatch.setenv("KWA_PROFILE", "prod")
    result = kwa(*args)
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"] == {"prod": {"sid": SID}}


def test_set_keeps_other_profiles_and_keys(kwa, config_path, write_config):
    write_config('default_profile = "a"\n[profiles.a]\nsid = "A1"\npod = "sg"\n[profiles.b]\nsid = "B2"\n')
    assert kwa("config", "set", "pod", "eu").exit_code == 0
    assert read(config_path) == {"default_profile": "a", "profiles": {"a": {"sid": "A1", "pod": "eu"}, "b": {"sid": "B2"}}}


def test_unknown_key_lists_the_valid_ones(kwa, config_path):
    result = kwa("config", "set", "colour", "red")
    assert result.exit_code == 2, result.output
    for key in ("sid", "api_key", "wa_number", "pod", "base_url", "wa_source", "timeout"):
        assert key in result.stderr
    assert not config_path.exists()


def test_unknown_key_did_you_mean(kwa):
    result = kwa("config", "set", "sdi", "X")
    assert result.exit_code == 2
    assert "Did you mean 'sid'" in result.stderr


def test_hyphenated_key_is_accepted(kwa, config_path):
    assert kwa("config", "set", "wa-source", "zoho").exit_code == 0
    assert read(config_path)["profiles"]["default"] == {"wa_source": "zoho"}


def test_wa_number_in_two_words_without_plus_is_refused_with_the_e164_hint(kwa, config_path):
    result = kwa("config", "set", "wa_number", "98765", "43210")
    assert result.exit_code == 2, result.output
    assert "E.164" in result.stderr
    assert "NUMBER_NO_PLUS" in result.stderr
    assert not config_path.exists()


def test_wa_number_written_in_groups_is_stored_as_e164(kwa, config_path):
    result = kwa("config", "set", "wa_number", "+91", "98765", "43210")
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["wa_number"] == "+919876543210"


@pytest.mark.parametrize(
    ("number", "code"),
    [("098765 43210", "NUMBER_NATIONAL"), ("00919876543210", "NUMBER_INTERNATIONAL_PREFIX"), ("+91 98765", "NUMBER_IMPOSSIBLE")],
)
def test_wa_number_errors(kwa, config_path, number, code):
    result = kwa("config", "set", "wa_number", number)
    assert result.exit_code == 2, result.output
    assert code in result.stderr
    assert "E.164" in result.stderr
    assert not config_path.exists()


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("pod", "xx", "in, sg, eu, na"),
        ("base_url", "https://api.in.kaleyra.io/v2/HX/whatsapp", "API path"),
        ("base_url", "api.in.kaleyra.io", "http"),
        ("timeout", "0", "above 0"),
        ("timeout", "-1.5e0", "above 0"),
        ("timeout", "soon", "seconds"),
        ("timeout", "nan", "above 0"),
        ("sid", "HX-12", "letters and digits"),
        ("sid", "", "empty"),
    ],
)
def test_invalid_values_are_refused(kwa, config_path, key, value, words):
    result = kwa("config", "set", key, "--", value)
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert not config_path.exists()


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("pod", "SG", "sg"),
        ("base_url", "https://proxy.example/kaleyra/", "https://proxy.example/kaleyra"),
        ("timeout", "15", 15),
        ("timeout", "2.5", 2.5),
        ("sid", f" {SID} ", SID),
        ("wa_source", "shopify", "shopify"),
    ],
)
def test_valid_values_are_stored_normalised(kwa, config_path, key, value, stored):
    result = kwa("config", "set", key, value)
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"][key] == stored


def test_unknown_wa_source_is_a_warning(kwa, config_path):
    result = kwa("config", "set", "wa_source", "shopfy")
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "shopify" in result.stderr
    assert read(config_path)["profiles"]["default"]["wa_source"] == "shopfy"


def test_insecure_base_url_is_a_warning(kwa, config_path):
    result = kwa("config", "set", "base_url", "http://kaleyra.example")
    assert result.exit_code == 0, result.output
    assert "unencrypted" in result.stderr


def test_more_than_one_word_for_other_keys_is_refused(kwa, config_path):
    result = kwa("config", "set", "sid", "HX", "12")
    assert result.exit_code == 2, result.output
    assert "Quote" in result.stderr


def test_missing_value_is_a_usage_error(kwa, config_path):
    result = kwa("config", "set", "sid")
    assert result.exit_code == 2, result.output
    assert "kwa config set sid VALUE" in result.stderr


def test_env_that_overrides_the_value_is_pointed_out(kwa, monkeypatch):
    monkeypatch.setenv("KALEYRA_SID", "ENVSID")
    result = kwa("config", "set", "sid", SID)
    assert result.exit_code == 0, result.output
    assert "env KALEYRA_SID also sets sid" in result.stderr


# ---------------------------------------------------------------- the API key


def test_api_key_from_stdin(kwa, config_path):
    result = kwa("config", "set", "api_key", "-", input=API_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["api_key"] == API_KEY
    assert API_KEY not in result.stdout + result.stderr
    assert "Aq\u20263" in result.stderr


def test_api_key_padding_is_kept(kwa, config_path):
    assert kwa("config", "set", "api_key", "-", input="QWxhZGRpbjpvcGVu==\n").exit_code == 0
    assert read(config_path)["profiles"]["default"]["api_key"] == "QWxhZGRpbjpvcGVu=="


def test_api_key_on_the_command_line_works_with_a_warning(kwa, config_path):
    result = kwa("config", "set", "api_key", API_KEY)
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["api_key"] == API_KEY
    assert "shell history" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


def test_api_key_prompt_is_hidden(kwa_tty, config_path):
    result = kwa_tty("config", "set", "api_key", input=API_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert read(config_path)["profiles"]["default"]["api_key"] == API_KEY
    assert "API key (input hidden)" in result.stderr
    assert API_KEY not in result.stdout + result.stderr  # not echoed, not printed back


def test_api_key_with_inner_whitespace_is_refused(kwa, config_path):
    result = kwa("config", "set", "api_key", "-", input="Aq7Zx1Sec4 etKey9Test\n")
    assert result.exit_code == 2, result.output
    assert "whitespace" in result.stderr and "position 11" in result.stderr
    assert "Sec4" not in result.stderr
    assert not config_path.exists()


def test_empty_api_key_is_refused(kwa, config_path):
    result = kwa("config", "set", "api_key", "-", input="  \n")
    assert result.exit_code == 2, result.output
    assert "empty" in result.stderr


@pytest.mark.parametrize(
    ("how", "reason"),
    [("no_tty", "stdin is not a terminal"), ("no_input", "--no-input"), ("ci", "CI is set")],
)
def test_api_key_is_never_prompted_for_when_kwa_must_not_prompt(kwa, kwa_tty, monkeypatch, config_path, how, reason):
    args = ["config", "set", "api_key"]
    if how == "no_tty":
        result = kwa(*args, input=API_KEY + "\n")
    elif how == "no_input":
        result = kwa_tty(*args, "--no-input", input=API_KEY + "\n")
    else:
        monkeypatch.setenv("CI", "true")
        result = kwa_tty(*args, input=API_KEY + "\n")
    assert result.exit_code == 2, result.output
    assert reason in result.stderr
    assert "kwa config set api_key -" in result.stderr  # what to do instead
    assert "API key (input hidden)" not in result.stderr
    assert not config_path.exists()


def test_ctrl_c_at_the_prompt_writes_nothing(kwa_tty, config_path):
    result = kwa_tty("config", "set", "api_key", input="")  # end of input = cancelled
    assert result.exit_code == 130, result.output
    assert "nothing was written" in result.stderr
    assert not config_path.exists()


# ---------------------------------------------------------------- the file


@posix_only
def test_written_file_is_0600_in_a_0700_folder(kwa, tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "kwa" / "config.toml"
        result = kwa("config", "set", "api_key", "-", "--config", str(path), input=API_KEY)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


@posix_only
def test_loose_file_is_tightened_on_write(kwa, config_path, write_config):
    write_config('[profiles.default]\nsid = "A1"\n').chmod(0o644)
    assert kwa("config", "set", "pod", "sg").exit_code == 0
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


def test_crash_between_write_and_rename_leaves_the_old_file(kwa, config_path, write_config, monkeypatch):
    write_config('[profiles.default]\nsid = "OLD1"\n')
    before = config_path.read_bytes()
    seen = {}
    real_replace = os.replace

    def crash(src, dst, *args, **kwargs):
        # The new file is complete and private before the rename would publish it...
        seen["text"] = open(src, encoding="utf-8").read()
        seen["mode"] = stat.S_IMODE(os.stat(src).st_mode)
        # ...and the rename never happens (the process dies here).
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(config_file.os, "replace", crash)
    result = kwa("config", "set", "sid", "NEW2")
    monkeypatch.setattr(config_file.os, "replace", real_replace)

    assert result.exit_code == 2, result.output
    assert "Input/output error" in result.stderr and str(config_path) in result.stderr
    assert 'sid = "NEW2"' in seen["text"]
    if os.name == "posix":
        assert seen["mode"] == 0o600
    assert config_path.read_bytes() == before
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["config.toml"]  # no temp file left


def test_broken_config_is_never_overwritten(kwa, config_path, write_config):
    write_config('[profiles.default]\nsid = "A1\n')
    before = config_path.read_bytes()
    result = kwa("config", "set", "pod", "sg")
    assert result.exit_code == 2, result.output
    assert "line 2" in result.stderr
    assert config_path.read_bytes() == before


def test_full_round_trip_feeds_reply(kwa, httpx_mock, config_path):
    assert kwa("config", "set", "sid", SID).exit_code == 0
    assert kwa("config", "set", "api_key", "-", input=API_KEY).exit_code == 0
    assert kwa("config", "set", "wa_number", WA_NUMBER).exit_code == 0
    httpx_mock.add_response(method="POST", status_code=202, json={"code": "WA202", "data": {"message_id": "wamid.X"}})
    result = kwa("reply", "--to", "+919876543210", "hi")
    assert result.exit_code == 0, result.output
    (request,) = httpx_mock.get_requests()
    assert request.headers["api-key"] == API_KEY
    assert f"/v2/{SID}/whatsapp/{WA_NUMBER}/" in str(request.url)
