"""Reading and atomically writing kwa's TOML config file (DESIGN sections 2 and 9).

The file looks like this::

    default_profile = "prod"

    [profiles.prod]
    sid = "HXAP16XXXXXX85IN"
    api_key = "QWxhZGRpbjpvcGVu=="
    wa_number = "+919876543210"
    pod = "in"
    timeout = 30

Every value is a string except ``timeout`` (seconds, an int or float > 0). This
module only checks the file's shape and value types; what a value means (an
E.164 number, a known pod) is checked by the settings and message modules.

It imports neither Typer nor Rich; every failure is a :class:`ConfigError`
with a message naming the file and a hint saying what to do. ``tomli_w`` and
``platformdirs`` are imported inside the functions that need them, to keep
``kwa --help`` fast.
"""

from __future__ import annotations

import difflib
import errno
import math
import os
import re
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_PROFILE",
    "ConfigFile",
    "default_config_path",
    "load_config",
    "readable_by_others",
    "save_config",
    "set_value",
    "unset_value",
]

CONFIG_KEYS: tuple[str, ...] = ("sid", "api_key", "wa_number", "pod", "base_url", "wa_source", "timeout")
DEFAULT_PROFILE = "default"

# The keys allowed at the top of the file.
_TOP_LEVEL_KEYS: tuple[str, ...] = ("default_profile", "profiles")

_FIX_HINT = (
    "Fix it in a text editor ('kwa config path' prints where the file is), "
    "or move the file away and run 'kwa config init' to write a new one."
)

# tomllib puts the position at the end of its message: "Invalid value (at line 3, column 9)"
# or "Unclosed array (at end of document)". Python 3.11 has no lineno/colno attributes.
_TOML_POSITION = re.compile(
    r"^(?P<reason>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$",
    re.S,
)


def default_config_path() -> Path:
    """Where the config file lives when neither ``--config`` nor ``KWA_CONFIG`` says otherwise.

    ``platformdirs.user_config_dir("kwa")/config.toml``: ``~/.config/kwa/config.toml`` on
    Linux (honouring ``XDG_CONFIG_HOME``), ``~/Library/Application Support/kwa/config.toml``
    on macOS, ``%LOCALAPPDATA%\\kwa\\kwa\\config.toml`` on Windows. Nothing is created.
    """
    import platformdirs  # lazily: only the config commands and settings resolution need it

    return Path(platformdirs.user_config_dir("kwa")) / "config.toml"


@dataclass
class ConfigFile:
    """The contents of one config file.

    ``path``: the file (it may not exist). ``exists``: whether it existed when read.
    ``default_profile``: the file's top-level ``default_profile``, or ``None``.
    ``profiles``: profile name -> ``{key: value}``, keys among :data:`CONFIG_KEYS`,
    in the file's order. Change it with :func:`set_value` / :func:`unset_value`
    and write it with :func:`save_config`.
    """

    path: Path
    exists: bool = False
    default_profile: str | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def profile(self, name: str) -> dict[str, Any]:
        """A copy of profile ``name``'s ``{key: value}``.

        Raises :class:`ConfigError` naming the file and listing the existing profiles
        when there is no such profile (never ``KeyError``).
        """
        try:
            return dict(self.profiles[name])
        except KeyError:
            pass
        names = self.profile_names()
        if not self.exists:
            message = f"No profile {name!r}: the config file {self.path} does not exist."
        elif not names:
            message = f"No profile {name!r}: the config file {self.path} has no profiles."
        else:
            message = f"No profile {name!r} in {self.path}; its profiles are: {', '.join(names)}."
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        hint += (
            f"Choose one of the existing profiles with --profile or KWA_PROFILE, or create {name!r} "
            "with 'kwa config init' or 'kwa config set'."
            if names
            else f"Create {name!r} with 'kwa config init' or 'kwa config set'."
        )
        raise ConfigError(message, hint=hint)

    def profile_names(self) -> list[str]:
        """The profile names, sorted."""
        return sorted(self.profiles)


# ---------------------------------------------------------------- reading


def load_config(path: Path) -> ConfigFile:
    """Read and check the config file at ``path``.

    A file that does not exist reads as empty (``exists=False``, no profiles); warning
    about it is the caller's job, since only an explicitly named file deserves one.

    Raises :class:`ConfigError` (message naming the file, hint saying how to fix it) when
    the file cannot be read (permission denied, a directory, not UTF-8), is not valid TOML
    (the message gives line and column), or has an unknown key, a wrong type or a profile
    that is not a table (the message names the key path, e.g. ``profiles.prod.timeout``).
    """
    from ._limits import read_bytes_limited

    path = Path(path)
    try:
        data = read_bytes_limited(path)
    except FileNotFoundError:
        return ConfigFile(path, exists=False, default_profile=None, profiles={})
    except IsADirectoryError:
        raise ConfigError(
            f"Cannot read config file {path}: it is a folder, not a file.",
            hint="Point --config or KWA_CONFIG at a file, e.g. a config.toml inside that folder.",
        ) from None
    except PermissionError as exc:
        raise ConfigError(
            f"Cannot read config file {path}: {_reason(exc)}.",
            hint="Make the file readable by your user (chmod 600 on POSIX), or point --config / KWA_CONFIG elsewhere.",
        ) from None
    except OSError as exc:
        # ENOTDIR (a parent is a file), ELOOP, EIO...: never a traceback.
        raise ConfigError(
            f"Cannot read config file {path}: {_reason(exc)}.",
            hint="Check the path given by --config or KWA_CONFIG ('kwa config path' prints it).",
        ) from None
    return _parse(path, data)


def _parse(path: Path, data: bytes) -> ConfigFile:
    """Decode, parse and check ``data``, the bytes of ``path``."""
    try:
        # utf-8-sig: tolerate the byte-order mark some Windows editors add, which tomllib rejects.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"Cannot read config file {path}: it is not UTF-8 text (byte {exc.start} on line {line}).",
            hint="TOML files must be UTF-8: save the file as UTF-8 in your editor. " + _FIX_HINT,
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {_describe_toml_error(exc)}.", hint=_FIX_HINT
        ) from None
    return _check_document(path, document)


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """``"line 3, column 9: invalid value"`` from tomllib's ``"Invalid value (at line 3, column 9)"``."""
    text = str(exc)
    match = _TOML_POSITION.match(text)
    if not match:
        return text
    reason = match["reason"]
    reason = reason[:1].lower() + reason[1:]
    if match["line"] is None:
        return f"at the end of the file: {reason}"
    return f"line {match['line']}, column {match['column']}: {reason}"


def _check_document(path: Path, document: dict[str, Any]) -> ConfigFile:
    """Check the parsed document's shape and types and build the :class:`ConfigFile`."""

    def fail(message: str, hint: str = _FIX_HINT) -> ConfigError:
        return ConfigError(f"Config file {path}: {message}", hint=hint)

    for key, value in document.items():
        if key not in _TOP_LEVEL_KEYS:
            raise fail(f"unknown top-level key {key!r}.", _top_level_hint(key, value))

    default_profile = document.get("default_profile")
    if default_profile is not None and not isinstance(default_profile, str):
        raise fail(f"default_profile must be a string (a profile name), not {_toml_type(default_profile)}.")

    raw_profiles = document.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise fail(
            f"profiles must be a table, not {_toml_type(raw_profiles)}.",
            "Write each profile as its own table: [profiles.NAME] followed by key = \"value\" lines. " + _FIX_HINT,
        )
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in raw_profiles.items():
        key_path = f"profiles.{_toml_key(name)}"
        if not isinstance(table, dict):
            raise fail(
                f"{key_path} must be a table, not {_toml_type(table)}.",
                f"Write the profile as a table: [{key_path}] followed by key = \"value\" lines. " + _FIX_HINT,
            )
        for key, value in table.items():
            if key not in CONFIG_KEYS:
                raise fail(f"unknown key {key_path}.{_toml_key(key)}.", _unknown_key_hint(key) + " " + _FIX_HINT)
            problem = _type_problem(key, value)
            if problem:
                raise fail(f"{key_path}.{key} {problem}.")
        profiles[name] = dict(table)
    return ConfigFile(path, exists=True, default_profile=default_profile, profiles=profiles)


def _top_level_hint(key: str, value: Any) -> str:
    if key in CONFIG_KEYS:
        # The commonest hand-editing slip: a setting outside any profile.
        return f"Settings belong to a profile: move '{key} = ...' under [profiles.{DEFAULT_PROFILE}]. " + _FIX_HINT
    if isinstance(value, dict):
        # "[prod]" written for "[profiles.prod]".
        name = _toml_key(key)
        return f"Profiles are written [profiles.NAME]: rename [{name}] to [profiles.{name}]. " + _FIX_HINT
    close = difflib.get_close_matches(key, _TOP_LEVEL_KEYS, n=1)
    prefix = f"Did you mean {close[0]!r}? " if close else ""
    return prefix + "The top level may hold only default_profile and [profiles.NAME] tables. " + _FIX_HINT


# ---------------------------------------------------------------- values


def _type_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of config key ``key``, or ``None`` when it can.

    The phrase completes "profiles.prod.timeout ...". It never repeats a string value,
    which might be an API key.
    """
    if key == "timeout":
        # bool is an int subclass, but `timeout = true` is surely a mistake.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number of seconds (e.g. 30), not {_toml_type(value)}"
        if not math.isfinite(value) or value <= 0:
            return f"must be a number of seconds greater than 0, not {value!r}"
        return None
    if not isinstance(value, str):
        return f"must be a string (in double quotes), not {_toml_type(value)}"
    return None


def _unknown_key_hint(key: str) -> str:
    close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
    prefix = f"Did you mean {close[0]!r}? " if close else ""
    return prefix + "Valid keys: " + ", ".join(CONFIG_KEYS) + "."


def _toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, with its article ("a string", "an array")."""
    import datetime

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return "a date or time"
    return f"a {type(value).__name__}"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(name: str) -> str:
    """``name`` as it would appear in a TOML key path: bare when it can be, else quoted."""
    if _BARE_KEY.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _coerce(key: str, value: Any) -> Any:
    """``value`` checked (and for ``timeout``, parsed from text) for config key ``key``.

    ``timeout`` accepts a number or text such as ``"30"`` / ``"2.5"`` (what a command
    line gives); every other key takes a string, kept exactly. Raises :class:`ConfigError`.
    """
    if key == "timeout" and isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(
                    f"timeout must be a number of seconds, not {value!r}.",
                    hint="Give the timeout in seconds, e.g. 30 or 2.5.",
                ) from None
    problem = _type_problem(key, value)
    if problem:
        hint = "Give the timeout in seconds, e.g. 30 or 2.5." if key == "timeout" else None
        raise ConfigError(f"{key} {problem}.", hint=hint)
    return value


def _check_key(key: str) -> None:
    if key not in CONFIG_KEYS:
        raise ConfigError(f"Unknown config key {key!r}.", hint=_unknown_key_hint(key))


def set_value(config: ConfigFile, profile: str, key: str, value: Any) -> None:
    """Set ``key`` to ``value`` in ``profile`` of ``config`` (in memory; :func:`save_config` writes).

    The profile is created when missing. ``value`` is a string, or for ``timeout`` a
    number of seconds > 0 or its text (``"30"``, ``"2.5"``). Raises :class:`ConfigError`
    for a key not in :data:`CONFIG_KEYS` (the hint lists them), an empty profile name, or
    a value of the wrong type. What a value means (a valid pod or number) is not checked here.
    """
    _check_key(key)
    if not isinstance(profile, str) or not profile:
        raise ConfigError("A profile name cannot be empty.", hint=f"Use a name such as {DEFAULT_PROFILE!r}.")
    value = _coerce(key, value)
    config.profiles.setdefault(profile, {})[key] = value


def unset_value(config: ConfigFile, profile: str, key: str) -> bool:
    """Remove ``key`` from ``profile`` of ``config`` (in memory); ``True`` if it was set.

    A missing profile or key returns ``False``. A profile left empty is kept (it may be the
    ``default_profile``). Raises :class:`ConfigError` for a key not in :data:`CONFIG_KEYS`,
    since it can never be set and is most likely a typo.
    """
    _check_key(key)
    table = config.profiles.get(profile)
    if table is None or key not in table:
        return False
    del table[key]
    return True


# ---------------------------------------------------------------- writing


_HEADER = "# kwa configuration, written by 'kwa config'. Comments in this file are not kept.\n\n"


def save_config(config: ConfigFile) -> None:
    """Write ``config`` to ``config.path`` atomically, readable only by its owner.

    The document is ``default_profile`` (when set) followed by the profiles in
    ``config.profiles`` order, each profile's keys in :data:`CONFIG_KEYS` order. Only
    the data is kept: **comments and formatting in the old file are lost.**

    Steps: missing parent folders are created with mode 0700 (an existing folder is
    never changed); the text goes to a temporary file in the same folder, created
    0600, which is flushed and fsynced and then renamed over the target, and the
    folder is fsynced where the platform allows. A crash or error at any point leaves
    either the old file or the new one, never half of one. When ``config.path`` is a
    symlink (dotfile managers), the file it points to is replaced, not the link.
    On success ``config.exists`` becomes ``True``.

    Raises :class:`ConfigError` naming the path and the OS reason (read-only file
    system, disk full, permission denied); the old file is then untouched and no
    temporary file is left. Also raises it, before touching the disk, when the data
    cannot be written as TOML that reads back identically (a wrong key or type, or a
    string holding a lone surrogate, which UTF-8 cannot encode).
    """
    path = Path(config.path)
    payload = _serialize(config)
    # Replace the file a symlink points to, not the link (os.replace would swap the link itself).
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    folder = target.parent
    try:
        _make_folders(folder)
    except OSError as exc:
        raise _write_error(path, exc, f"cannot create the folder {exc.filename or folder}") from None

    tmp_name: str | None = None
    try:
        # mkstemp opens with O_EXCL and mode 0600, so the key is never readable by others,
        # not even between creation and rename.
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                # mkstemp's 0600 is still masked by the umask: make it exactly 0600.
                os.fchmod(handle.fileno(), 0o600)
            handle.write(payload)
            handle.flush()
            # The data must be on disk before the rename makes it the file, or a crash
            # could leave an empty config where a good one was.
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except BaseException as exc:
        # BaseException: Ctrl-C mid-write must not leave a temp file holding the key.
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc, "cannot write it") from None
        raise
    _fsync_folder(folder)
    config.exists = True


def _serialize(config: ConfigFile) -> bytes:
    """The file's bytes for ``config``; :class:`ConfigError` if they would not read back the same."""
    import tomli_w  # lazily: only 'kwa config set/unset/use/init' write

    document: dict[str, Any] = {}
    if config.default_profile is not None:
        if not isinstance(config.default_profile, str):
            raise ConfigError(
                f"Cannot write {config.path}: default_profile must be a string, "
                f"not {_toml_type(config.default_profile)}."
            )
        document["default_profile"] = config.default_profile
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in config.profiles.items():
        if not isinstance(name, str) or not isinstance(table, dict):
            raise ConfigError(f"Cannot write {config.path}: profile {name!r} must be a name with a table of settings.")
        for key, value in table.items():
            if key not in CONFIG_KEYS:
                raise ConfigError(
                    f"Cannot write {config.path}: unknown key profiles.{_toml_key(name)}.{_toml_key(str(key))}.",
                    hint=_unknown_key_hint(str(key)),
                )
            problem = _type_problem(key, value)
            if problem:
                raise ConfigError(f"Cannot write {config.path}: profiles.{_toml_key(name)}.{key} {problem}.")
        profiles[name] = {key: table[key] for key in CONFIG_KEYS if key in table}
    if profiles:
        document["profiles"] = profiles

    text = _HEADER + tomli_w.dumps(document)
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:
        # tomli_w passes lone surrogates through; the file would not be UTF-8.
        raise ConfigError(
            f"Cannot write {config.path}: a value or profile name holds a character that UTF-8 cannot encode "
            "(a lone surrogate).",
            hint="Check where the value came from; it is not valid text.",
        ) from None
    # Never write a file kwa itself would refuse to read.
    if tomllib.loads(text) != document:
        raise ConfigError(
            f"Cannot write {config.path}: the values would not read back unchanged.",
            hint="This is a bug in kwa; please report it with the kind of value you set (not the value itself).",
        )
    return payload


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and any missing parents with mode 0700; existing folders are left alone."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            # Created meanwhile by someone else: not ours, so not ours to chmod.
            if not new.is_dir():
                raise
            continue
        if os.name == "posix":
            # The umask may have taken bits off the 0700 (or, with an odd umask, off the
            # owner's own); set it exactly.
            os.chmod(new, 0o700)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. POSIX only; a failure here is ignored: the file is already in place."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # Some file systems (and some network mounts) refuse fsync on a folder.
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError, what: str) -> ConfigError:
    reason = _reason(exc)
    if exc.errno == errno.EROFS:
        hint = "The file system is read-only: point --config or KWA_CONFIG at a writable location."
    elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        hint = "The disk (or your quota) is full: free some space and try again. The old file is unchanged."
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = (
            "Check that you own the file and its folder and may write to them, "
            "or point --config or KWA_CONFIG elsewhere."
        )
    else:
        hint = "Check the path ('kwa config path' prints it) and try again. The old file, if any, is unchanged."
    return ConfigError(f"Cannot save config file {path}: {what}: {reason}.", hint=hint)


def _reason(exc: OSError) -> str:
    """The OS's own words for ``exc`` ("Permission denied"), without the repeated file name."""
    return exc.strerror or str(exc) or type(exc).__name__


# ---------------------------------------------------------------- permissions


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner may read ``path`` (POSIX group or other read bit).

    Follows symlinks (the target's bits are what count). ``False`` on Windows, where
    mode bits do not describe access, and when ``path`` cannot be examined.
    """
    if os.name == "nt":
        return False
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))
