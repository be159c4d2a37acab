"""Tests for kaleyra_cli/config_file.py: reading, checking and atomically writing the TOML config."""

from __future__ import annotations

import errno
import os
import stat
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaleyra_cli import config_file
from kaleyra_cli.config_file import (
    CONFIG_KEYS,
    DEFAULT_PROFILE,
    ConfigFile,
    default_config_path,
    load_config,
    readable_by_others,
    save_config,
    set_value,
    unset_value,
)
from kaleyra_cli.errors import ConfigError, UsageError

POSIX = os.name == "posix"
IS_ROOT = POSIX and os.geteuid() == 0
posix_only = pytest.mark.skipif(not POSIX, reason="POSIX file modes")

STRING_KEYS = [k for k in CONFIG_KEYS if k != "timeout"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(folder: Path, keep: str = "config.toml") -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


# ---------------------------------------------------------------- default path


def test_default_config_path_is_platformdirs_user_config_dir(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_config_dir", lambda appname: str(tmp_path / "cfg" / appname))
    assert default_config_path() == tmp_path / "cfg" / "kwa" / "config.toml"
    assert not (tmp_path / "cfg").exists()  # only computes the path


def test_default_config_path_ends_with_kwa_config_toml():
    path = default_config_path()
    assert path.name == "config.toml"
    assert "kwa" in path.parent.parts


# ---------------------------------------------------------------- reading


def test_missing_file_reads_as_empty(tmp_path):
    path = tmp_path / "nope" / "config.toml"
    config = load_config(path)
    assert config == ConfigFile(path, exists=False, default_profile=None, profiles={})
    assert config.profile_names() == []


def test_reads_profiles_and_default_profile(tmp_path):
    path = write(
        tmp_path / "config.toml",
        """
        default_profile = "prod"

        [profiles.prod]
        sid = "HXAP16XXXXXX85IN"
        api_key = "QWxhZGRpbjpvcGVu=="
        wa_number = "+919876543210"
        pod = "in"
        timeout = 12.5

        [profiles.staging]
        base_url = "http://127.0.0.1:8181"
        wa_source = "api"
        timeout = 3
        """.replace("        ", ""),
    )
    config = load_config(path)
    assert config.exists is True
    assert config.path == path
    assert config.default_profile == "prod"
    assert config.profile_names() == ["prod", "staging"]
    assert config.profile("prod") == {
        "sid": "HXAP16XXXXXX85IN",
        "api_key": "QWxhZGRpbjpvcGVu==",
        "wa_number": "+919876543210",
        "pod": "in",
        "timeout": 12.5,
    }
    assert config.profile("staging")["timeout"] == 3


def test_profile_returns_a_copy(tmp_path):
    config = ConfigFile(tmp_path / "c.toml", True, None, {"a": {"sid": "x"}})
    config.profile("a")["sid"] = "changed"
    assert config.profiles["a"]["sid"] == "x"


def test_empty_file_and_bom_are_fine(tmp_path):
    assert load_config(write(tmp_path / "empty.toml", "")).profiles == {}
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b'\xef\xbb\xbf[profiles.a]\nsid = "x"\n')
    assert load_config(bom).profile("a") == {"sid": "x"}


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b'[profiles.a]\r\nsid = "x"\r\n')
    assert load_config(path).profile("a") == {"sid": "x"}


def test_bad_toml_names_path_line_and_column(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles.a]\nsid = "ok"\napi_key = oops\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert str(path) in err.message
    assert "line 3, column 11" in err.message
    assert "(at line" not in err.message  # tomllib's suffix is rephrased, not repeated
    assert "oops" not in err.message  # the line itself is never echoed: it may hold a key
    assert err.hint and "kwa config path" in err.hint
    assert isinstance(err, UsageError)


def test_bad_toml_at_end_of_document(tmp_path):
    path = write(tmp_path / "config.toml", "[profiles.a]\nsid = [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert "end of the file" in info.value.message


@pytest.mark.parametrize(
    ("body", "key_path", "words"),
    [
        ('timeout = "x"', "profiles.prod.timeout", "not a string"),
        ("timeout = true", "profiles.prod.timeout", "not a boolean"),
        ("timeout = 0", "profiles.prod.timeout", "greater than 0"),
        ("timeout = -1.5", "profiles.prod.timeout", "greater than 0"),
        ("timeout = nan", "profiles.prod.timeout", "greater than 0"),
        ("timeout = inf", "profiles.prod.timeout", "greater than 0"),
        ("sid = 5", "profiles.prod.sid", "not an integer"),
        ("api_key = [1]", "profiles.prod.api_key", "not an array"),
        ("pod = 2024-01-01", "profiles.prod.pod", "date"),
        ("wa_number = {a = 1}", "profiles.prod.wa_number", "not a table"),
    ],
)
def test_wrong_type_names_the_key_path(tmp_path, body, key_path, words):
    path = write(tmp_path / "config.toml", f"[profiles.prod]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert key_path in info.value.message
    assert words in info.value.message


def test_unknown_key_names_the_path_and_lists_valid_keys(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles.prod]\ncolour = "red"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "profiles.prod.colour" in info.value.message
    assert str(path) in info.value.message
    for key in CONFIG_KEYS:
        assert key in info.value.hint


def test_unknown_key_did_you_mean(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles.prod]\napikey = "k"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "Did you mean 'api_key'?" in info.value.hint


def test_odd_profile_name_is_quoted_in_key_path(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles."my prod"]\ntimeout = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert 'profiles."my prod".timeout' in info.value.message


@pytest.mark.parametrize(
    ("text", "in_message", "in_hint"),
    [
        ('sid = "x"\n', "'sid'", "[profiles.default]"),
        ('[prod]\nsid = "x"\n', "'prod'", "[profiles.prod]"),
        ('default_profil = "x"\n', "'default_profil'", "default_profile"),
        ('profiles = "prod"\n', "profiles must be a table", "[profiles.NAME]"),
        ('[profiles]\nprod = "x"\n', "profiles.prod must be a table", "[profiles.prod]"),
        ("default_profile = 3\n", "default_profile must be a string", "kwa config"),
    ],
)
def test_bad_top_level(tmp_path, text, in_message, in_hint):
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert in_message in info.value.message
    assert in_hint in info.value.hint


def test_directory_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in info.value.message
    assert "folder" in info.value.message


def test_parent_is_a_file_is_a_config_error(tmp_path):
    blocker = write(tmp_path / "file", "")
    with pytest.raises(ConfigError) as info:
        load_config(blocker / "config.toml")
    assert str(blocker / "config.toml") in info.value.message


@posix_only
@pytest.mark.skipif(IS_ROOT, reason="root can read any file")
def test_unreadable_file_is_a_config_error(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles.a]\nsid = "x"\n')
    path.chmod(0)
    try:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(path) in info.value.message
        assert "Permission denied" in info.value.message
    finally:
        path.chmod(0o600)


def test_unreadable_file_via_patched_open(tmp_path, monkeypatch):
    """The same as above, for runs as root: the read itself fails with EACCES."""
    path = write(tmp_path / "config.toml", "")

    def deny(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    monkeypatch.setattr(Path, "open", lambda self, *args, **kwargs: deny(self))  # the read is bounded (issue 6)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert "Permission denied" in info.value.message


def test_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[profiles.a]\nsid = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert "UTF-8" in info.value.message
    assert "line 2" in info.value.message


# ---------------------------------------------------------------- profile()


def test_profile_missing_lists_profiles(tmp_path):
    config = ConfigFile(tmp_path / "c.toml", True, None, {"prod": {}, "staging": {"sid": "x"}})
    with pytest.raises(ConfigError) as info:
        config.profile("prd")
    assert "'prd'" in info.value.message
    assert "prod, staging" in info.value.message
    assert "Did you mean 'prod'?" in info.value.hint


def test_profile_missing_from_missing_file(tmp_path):
    config = load_config(tmp_path / "c.toml")
    with pytest.raises(ConfigError) as info:
        config.profile(DEFAULT_PROFILE)
    assert "does not exist" in info.value.message
    assert str(tmp_path / "c.toml") in info.value.message


def test_profile_missing_from_file_without_profiles(tmp_path):
    config = load_config(write(tmp_path / "c.toml", 'default_profile = "x"\n'))
    with pytest.raises(ConfigError) as info:
        config.profile("x")
    assert "has no profiles" in info.value.message


# ---------------------------------------------------------------- set / unset


def test_set_value_creates_profile_and_keeps_value_exactly(tmp_path):
    config = load_config(tmp_path / "c.toml")
    set_value(config, "prod", "api_key", "QWxhZGRpbjpvcGVu==")
    set_value(config, "prod", "timeout", "2.5")
    set_value(config, "prod", "sid", "  spaced  ")
    assert config.profiles == {"prod": {"api_key": "QWxhZGRpbjpvcGVu==", "timeout": 2.5, "sid": "  spaced  "}}
    set_value(config, "prod", "timeout", "30")
    assert config.profiles["prod"]["timeout"] == 30
    assert isinstance(config.profiles["prod"]["timeout"], int)


def test_set_value_unknown_key_lists_keys():
    config = ConfigFile(Path("c.toml"))
    with pytest.raises(ConfigError) as info:
        set_value(config, "prod", "colour", "red")
    assert "'colour'" in info.value.message
    assert info.value.hint.endswith("Valid keys: " + ", ".join(CONFIG_KEYS) + ".")
    assert config.profiles == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout", "x"),
        ("timeout", "0"),
        ("timeout", "-3"),
        ("timeout", True),
        ("timeout", "nan"),
        ("timeout", "inf"),
        ("sid", 5),
        ("pod", None),
    ],
)
def test_set_value_wrong_type(key, value):
    config = ConfigFile(Path("c.toml"))
    with pytest.raises(ConfigError) as info:
        set_value(config, "prod", key, value)
    assert key in info.value.message
    assert config.profiles == {}


def test_set_value_empty_profile_name():
    with pytest.raises(ConfigError):
        set_value(ConfigFile(Path("c.toml")), "", "sid", "x")


def test_unset_value():
    config = ConfigFile(Path("c.toml"), True, None, {"prod": {"sid": "x", "pod": "in"}})
    assert unset_value(config, "prod", "sid") is True
    assert unset_value(config, "prod", "sid") is False
    assert unset_value(config, "nope", "sid") is False
    assert config.profiles == {"prod": {"pod": "in"}}
    assert unset_value(config, "prod", "pod") is True
    assert config.profiles == {"prod": {}}  # an empty profile stays
    with pytest.raises(ConfigError) as info:
        unset_value(config, "prod", "colour")
    assert "wa_source" in info.value.hint


# ---------------------------------------------------------------- saving


def test_round_trip(tmp_path):
    path = tmp_path / "kwa" / "config.toml"
    config = load_config(path)
    config.default_profile = "prod"
    set_value(config, "prod", "sid", "HXAP16XXXXXX85IN")
    set_value(config, "prod", "api_key", "QWxhZGRpbjpvcGVu==")
    set_value(config, "prod", "timeout", 7)
    set_value(config, "staging", "base_url", "http://127.0.0.1:8181")
    config.profiles["empty"] = {}
    save_config(config)
    assert config.exists is True

    again = load_config(path)
    assert again.exists is True
    assert again.default_profile == "prod"
    assert again.profiles == config.profiles
    assert again.profile("prod")["api_key"] == "QWxhZGRpbjpvcGVu=="
    text = path.read_text(encoding="utf-8")
    assert 'api_key = "QWxhZGRpbjpvcGVu=="' in text
    assert text.index("default_profile") < text.index("[profiles.prod]")
    assert text.startswith("#")  # the header saying comments are not kept


def test_save_orders_keys_canonically(tmp_path):
    config = ConfigFile(tmp_path / "c.toml", False, None, {"p": {"timeout": 1, "sid": "s", "pod": "in"}})
    save_config(config)
    text = (tmp_path / "c.toml").read_text()
    assert text.index("sid") < text.index("pod") < text.index("timeout")


def test_save_replaces_existing_file_and_drops_comments(tmp_path):
    path = write(tmp_path / "config.toml", '# mine\n[profiles.a]\nsid = "old"\n')
    config = load_config(path)
    set_value(config, "a", "sid", "new")
    save_config(config)
    assert load_config(path).profile("a") == {"sid": "new"}
    assert "# mine" not in path.read_text()
    assert leftovers(tmp_path) == []


@posix_only
def test_saved_file_is_0600_and_created_folders_0700(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "a" / "b" / "config.toml"
        config = ConfigFile(path)
        set_value(config, "p", "api_key", "secret")
        save_config(config)
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700
    assert not readable_by_others(path)


@posix_only
def test_existing_folder_mode_untouched_and_loose_file_tightened(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    path = write(folder / "config.toml", '[profiles.a]\nsid = "x"\n')
    path.chmod(0o644)
    assert readable_by_others(path)
    save_config(load_config(path))
    assert mode(folder) == 0o755
    assert mode(path) == 0o600
    assert not readable_by_others(path)


@posix_only
def test_symlinked_config_replaces_the_target(tmp_path):
    (tmp_path / "dotfiles").mkdir()
    real = write(tmp_path / "dotfiles" / "config.toml", "")
    link_dir = tmp_path / "home"
    link_dir.mkdir()
    link = link_dir / "config.toml"
    link.symlink_to(real)
    config = load_config(link)
    set_value(config, "a", "sid", "x")
    save_config(config)
    assert link.is_symlink()
    assert load_config(real).profile("a") == {"sid": "x"}
    assert leftovers(link_dir) == []
    assert leftovers(real.parent) == []


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = write(tmp_path / "config.toml", '[profiles.a]\nsid = "old"\n')
    before = path.read_bytes()
    config = load_config(path)
    set_value(config, "a", "sid", "new")

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "write":
        monkeypatch.setattr(config_file.os, "fdopen", lambda fd, mode: _FailingWriter(fd))
    else:
        monkeypatch.setattr(config_file.os, failing, boom)
    with pytest.raises(ConfigError) as info:
        save_config(config)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert str(path) in info.value.message
    assert "No space left on device" in info.value.message
    assert "space" in info.value.hint


class _FailingWriter:
    """Stands in for the temp file: writes fail as on a full disk, closing still closes the fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def fileno(self) -> int:
        return self.fd

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_interrupted_save_leaves_no_temp(tmp_path, monkeypatch):
    path = write(tmp_path / "config.toml", '[profiles.a]\nsid = "old"\n')
    config = load_config(path)

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(config_file.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_config(config)
    monkeypatch.undo()
    assert leftovers(tmp_path) == []


def test_read_only_folder_error_names_reason(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(config_file.tempfile, "mkstemp", read_only)
    with pytest.raises(ConfigError) as info:
        save_config(ConfigFile(tmp_path / "config.toml"))
    assert "Read-only file system" in info.value.message
    assert "read-only" in info.value.hint
    assert leftovers(tmp_path) == []


@posix_only
@pytest.mark.skipif(IS_ROOT, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = write(folder / "config.toml", '[profiles.a]\nsid = "old"\n')
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError) as info:
            save_config(load_config(path))
        assert "Permission denied" in info.value.message
        assert path.read_text() == '[profiles.a]\nsid = "old"\n'
    finally:
        folder.chmod(0o700)


def test_parent_is_a_file_on_save(tmp_path):
    blocker = write(tmp_path / "file", "")
    with pytest.raises(ConfigError) as info:
        save_config(ConfigFile(blocker / "sub" / "config.toml"))
    assert str(blocker / "sub" / "config.toml") in info.value.message


def test_save_refuses_lone_surrogate_and_keeps_old_file(tmp_path):
    path = write(tmp_path / "config.toml", '[profiles.a]\nsid = "old"\n')
    config = load_config(path)
    set_value(config, "a", "sid", "bad\ud800")
    with pytest.raises(ConfigError) as info:
        save_config(config)
    assert "surrogate" in info.value.message
    assert path.read_text() == '[profiles.a]\nsid = "old"\n'
    assert leftovers(tmp_path) == []


def test_save_refuses_bad_data_set_behind_set_values_back(tmp_path):
    config = ConfigFile(tmp_path / "c.toml", False, None, {"a": {"colour": "red"}})
    with pytest.raises(ConfigError) as info:
        save_config(config)
    assert "profiles.a.colour" in info.value.message
    config.profiles = {"a": {"timeout": "30"}}
    with pytest.raises(ConfigError):
        save_config(config)
    assert not (tmp_path / "c.toml").exists()


@posix_only
def test_readable_by_others(tmp_path):
    path = write(tmp_path / "f", "")
    path.chmod(0o600)
    assert readable_by_others(path) is False
    path.chmod(0o640)
    assert readable_by_others(path) is True
    path.chmod(0o604)
    assert readable_by_others(path) is True
    assert readable_by_others(tmp_path / "missing") is False


def test_readable_by_others_false_on_windows(tmp_path, monkeypatch):
    path = write(tmp_path / "f", "")
    monkeypatch.setattr(config_file.os, "name", "nt")
    assert readable_by_others(path) is False


# ---------------------------------------------------------------- property


# Text as Python sees it, minus lone surrogates (hypothesis never generates them by
# default; UTF-8 cannot encode them and save_config refuses them, tested above).
profile_names = st.text(min_size=1, max_size=20)
string_values = st.text(max_size=60)
timeouts = st.one_of(
    st.integers(min_value=1, max_value=10**12),
    st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False),
)
profile_tables = st.fixed_dictionaries({}, optional={**{k: string_values for k in STRING_KEYS}, "timeout": timeouts})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    profiles=st.dictionaries(profile_names, profile_tables, max_size=4),
    default=st.none() | profile_names,
)
def test_round_trip_property(tmp_path, profiles, default):
    path = tmp_path / "prop" / "config.toml"
    config = ConfigFile(path, False, None, {})
    for name, table in profiles.items():
        config.profiles.setdefault(name, {})
        for key, value in table.items():
            set_value(config, name, key, value)
    config.default_profile = default
    save_config(config)
    again = load_config(path)
    assert again.profiles == profiles
    assert again.default_profile == default
    # The bytes are plain TOML that any reader accepts, not just load_config.
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document.get("profiles", {}) == profiles
    assert document.get("default_profile") == default


def test_importing_the_module_stays_light():
    """tomli_w and platformdirs load only when used; Typer and Rich never (the core is a library)."""
    import subprocess

    code = (
        "import sys, kaleyra_cli.errors; before = set(sys.modules); import kaleyra_cli.config_file; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    for heavy in ("tomli_w", "platformdirs", "typer", "rich", "httpx"):
        assert f"'{heavy}'" not in out, out
