"""Resolve settings from flags, environment, ``.env``, config-file profile and defaults (DESIGN section 2).

Every value remembers where it came from, so ``kwa config show`` and error hints can
say "API key Ax…3 from .env /srv/app/.env". Precedence, highest first:
flag > environment > ``.env`` > config-file profile > default. An empty value counts as unset.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from .config_file import CONFIG_KEYS, ConfigFile, readable_by_others
from .errors import ConfigError, Problem, UsageError, mask_secret

# Environment variable names: one place (STYLE "Do" 10).
ENV_SID = "KALEYRA_SID"
ENV_API_KEY = "KALEYRA_API_KEY"
ENV_WA_NUMBER = "KALEYRA_WA_NUMBER"
ENV_POD = "KALEYRA_POD"
ENV_BASE_URL = "KALEYRA_BASE_URL"
ENV_PROFILE = "KWA_PROFILE"
ENV_CONFIG = "KWA_CONFIG"
ENV_STATE_DIR = "KWA_STATE_DIR"

SETTING_ENV: dict[str, str] = {
    "sid": ENV_SID,
    "api_key": ENV_API_KEY,
    "wa_number": ENV_WA_NUMBER,
    "pod": ENV_POD,
    "base_url": ENV_BASE_URL,
}
SETTING_FLAG: dict[str, str] = {
    "sid": "--sid",
    "api_key": "--api-key-file",
    "wa_number": "--from",
    "pod": "--pod",
    "base_url": "--base-url",
    "wa_source": "--wa-source",
    "timeout": "--timeout",
}

# DESIGN section 2; API_NOTES.md "Hosts": hosts differ between doc pages, so --base-url overrides.
PODS: dict[str, str] = {
    "in": "https://api.in.kaleyra.io",
    "sg": "https://api.ap.kaleyra.io",
    "eu": "https://api.eu.kaleyra.io",
    "na": "https://api.na.kaleyra.ai",
}
DEFAULT_POD = "in"
DEFAULT_PROFILE = "default"
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Source:
    """Where a value came from: ``kind`` is flag | env | dotenv | config | default."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}".strip()


@dataclass(frozen=True)
class Resolved:
    """A setting's value, its source, and the lower-precedence values it overrode."""

    value: Any
    source: Source
    overridden: tuple[tuple[Any, Source], ...] = ()


DEFAULT_SOURCE = Source("default")
UNSET = Resolved(None, Source("unset"))


@dataclass
class Settings:
    """Resolved settings. Each field is a :class:`Resolved`; ``warnings`` are problems to print."""

    sid: Resolved
    api_key: Resolved
    wa_number: Resolved
    pod: Resolved
    base_url: Resolved
    wa_source: Resolved
    timeout: Resolved
    profile: Resolved
    config_path: Resolved
    env_file: Path | None
    warnings: list[Problem] = field(default_factory=list)
    # The base_url setting's own layers (``base_url`` above is the endpoint, which a pod may decide).
    base_url_setting: Resolved = UNSET

    def describe_credentials(self) -> str:
        """Where the SID, key and business number came from, key masked (for auth-error hints)."""
        parts = []
        if self.sid.value:
            parts.append(f"SID {self.sid.value} from {self.sid.source}")
        if self.api_key.value:
            parts.append(f"API key {mask_secret(self.api_key.value)} from {self.api_key.source}")
        if self.wa_number.value:
            parts.append(f"business number {self.wa_number.value} from {self.wa_number.source}")
        return "; ".join(parts)

    def missing(self) -> list[Problem]:
        """Errors for the credentials a send needs and does not have (DESIGN section 4)."""
        problems = []
        needed = (
            ("sid", "account SID", "--sid", ENV_SID),
            ("api_key", "API key", "--api-key-file PATH", ENV_API_KEY),
            ("wa_number", "business number", "--from", ENV_WA_NUMBER),
        )
        for name, label, flag, env in needed:
            if not getattr(self, name).value:
                problems.append(
                    Problem(
                        f"settings.{name}",
                        "SETTING_MISSING",
                        f"no {label}",
                        f"Pass {flag}, set {env}, or run 'kwa config set {name} ...' (config key '{name}').",
                    )
                )
        return problems


@dataclass
class SettingsInput:
    """What the command line gave: flag values (``None`` = not given) and file choices."""

    sid: str | None = None
    wa_number: str | None = None
    pod: str | None = None
    base_url: str | None = None
    wa_source: str | None = None
    timeout: float | None = None
    profile: str | None = None
    config: Path | None = None
    env_file: Path | None = None
    no_env_file: bool = False
    api_key_file: str | None = None  # a path, or "-" for stdin


def _nonempty(value: Any) -> bool:
    return value is not None and value != ""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file with python-dotenv (``export``, quotes, CRLF); empty values dropped.

    Raises :class:`ConfigError` when the file cannot be read or is not UTF-8.
    """
    from dotenv import dotenv_values  # lazy: only when a .env is used

    from ._limits import read_text_limited

    try:
        # Read first so a bad encoding is our clear error, not dotenv's traceback.
        text = read_text_limited(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot read the .env file {path}: {reason}",
            hint="Fix or remove the file, name another with --env-file, or pass --no-env-file.",
        ) from None
    import io

    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if v is not None and v != ""}


def read_api_key_file(spec: str, stdin: TextIO | None = None) -> str:
    """Read an API key from a file path or ``-`` (stdin). Raises :class:`UsageError` if unreadable."""
    from ._limits import read_stream_limited, read_text_limited

    if spec == "-":
        stream = stdin if stdin is not None else sys.stdin
        try:
            return read_stream_limited(stream)
        except (UnicodeDecodeError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise UsageError(f"cannot read the API key from stdin (--api-key-file -): {reason}", hint="Pipe in only the key, as text.", code="API_KEY_INVALID") from None
    try:
        return read_text_limited(spec)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UsageError(f"cannot read --api-key-file {spec}: {reason}", hint="Give a readable file holding only the key.") from None


def clean_api_key(raw: str, source: Source) -> str:
    """Trim surrounding whitespace; refuse whitespace, control or non-ASCII characters inside the key.

    The key itself never appears in the error: only the position and the character class.
    """
    key = raw.strip()
    for index, ch in enumerate(key):
        if ch.isspace() or not ch.isprintable() or not ch.isascii():
            # An HTTP header carries ASCII only; kaleyra.io keys are printable ASCII.
            kind = "whitespace" if ch.isspace() else "a control character" if not ch.isprintable() else "a non-ASCII character"
            raise UsageError(
                f"the API key from {source} has {kind} (U+{ord(ch):04X}) at position {index + 1}",
                hint="Copy the key again from kaleyra.io; a key is one unbroken string.",
                code="API_KEY_INVALID",
            )
    return key


def check_base_url(url: str, source: Source) -> tuple[str, list[Problem]]:
    """Validate a base URL: scheme + host + optional prefix, no ``/v2/``; trailing ``/`` dropped.

    Returns ``(url, warnings)``; raises :class:`UsageError` for an unusable URL.
    Plain ``http://`` to a host that is not loopback is a warning: the key would travel unencrypted.
    """
    value = url.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"base URL {url!r} from {source} is not a valid URL: {exc}", hint="Use a form like https://api.in.kaleyra.io.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"base URL {url!r} from {source} needs http:// or https:// and a host",
            hint="Use a form like https://api.in.kaleyra.io, or --pod in|sg|eu|na.",
        )
    if "/v2/" in parts.path + "/" or parts.query or parts.fragment:
        raise UsageError(
            f"base URL {url!r} from {source} holds an API path",
            hint="Give only scheme, host and port (e.g. https://api.in.kaleyra.io): kwa adds /v2/<SID>/whatsapp/<number>/messages.",
        )
    warnings = []
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        warnings.append(
            Problem(
                "settings.base_url",
                "BASE_URL_INSECURE",
                f"base URL {value} uses plain http:// to a host that is not loopback: the API key would travel unencrypted",
                "Use https://.",
                severity="warning",
            )
        )
    return value, warnings


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_permission_warning(path: Path) -> Problem:
    return Problem(
        "settings.api_key",
        "KEY_FILE_READABLE",
        f"the API key is read from {path}, which other users can read",
        f"Run: chmod 600 {path}",
        severity="warning",
    )


@dataclass
class ConfigLocation:
    """Where settings are looked up, found before any of them is resolved (DESIGN section 2).

    ``environ``: the environment with empty values dropped (an empty variable counts as unset).
    ``dotenv``: the ``.env`` file's non-empty values (empty when no file is read).
    ``env_file``: that file, or ``None``. ``config_path``: the config file's path and its source
    (``--config`` > ``KWA_CONFIG`` in the environment > ``KWA_CONFIG`` in ``.env`` > default).
    """

    environ: dict[str, str]
    dotenv: dict[str, str]
    env_file: Path | None
    config_path: Resolved

    def layers(self, flag_value: Any, flag_name: str, env_name: str | None) -> list[tuple[Any, Source]]:
        """The non-empty values of one setting above the config file, highest first: flag, env, ``.env``."""
        layers: list[tuple[Any, Source]] = []
        if _nonempty(flag_value):
            layers.append((flag_value, Source("flag", flag_name)))
        if env_name and env_name in self.environ:
            layers.append((self.environ[env_name], Source("env", env_name)))
        if env_name and env_name in self.dotenv:
            layers.append((self.dotenv[env_name], Source("dotenv", str(self.env_file))))
        return layers


def locate_config(given: SettingsInput, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> ConfigLocation:
    """Find the ``.env`` file (and read it) and the config file's path; the config file is not read.

    ``environ`` defaults to ``os.environ``; ``cwd`` to the working directory (for ``./.env``).
    Raises :class:`UsageError` for an ``--env-file`` that does not exist and :class:`ConfigError`
    for a ``.env`` file that cannot be read.
    """
    from .config_file import default_config_path

    env = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in env.items() if v != ""}

    env_path: Path | None = None
    dotenv: dict[str, str] = {}
    if not given.no_env_file:
        if given.env_file is not None:
            env_path = given.env_file
            if not env_path.is_file():
                raise UsageError(f".env file {env_path} does not exist or is not a file", hint="Check the --env-file path, or pass --no-env-file.")
        else:
            candidate = (cwd or Path.cwd()) / ".env"
            env_path = candidate if candidate.is_file() else None
        if env_path is not None:
            dotenv = read_env_file(env_path)
    location = ConfigLocation(env, dotenv, env_path, UNSET)
    config_layers = location.layers(given.config, "--config", ENV_CONFIG)
    if config_layers:
        location.config_path = Resolved(
            Path(config_layers[0][0]).expanduser(),
            config_layers[0][1],
            tuple((Path(value).expanduser(), source) for value, source in config_layers[1:]),
        )
    else:
        location.config_path = Resolved(default_config_path(), DEFAULT_SOURCE)
    return location


def active_profile(location: ConfigLocation, config: ConfigFile, flag_profile: str | None = None) -> Resolved:
    """The profile in use: ``--profile`` > ``KWA_PROFILE`` (env, then ``.env``) > the file's
    ``default_profile`` > ``"default"``. The profile need not exist (see :func:`profile_values`).
    """
    layers = location.layers(flag_profile, "--profile", ENV_PROFILE)
    if layers:
        return Resolved(layers[0][0], layers[0][1], tuple(layers[1:]))
    if config.default_profile:
        return Resolved(config.default_profile, Source("config", f"{config.path} default_profile"))
    return Resolved(DEFAULT_PROFILE, DEFAULT_SOURCE)


def profile_values(config: ConfigFile, profile: Resolved) -> dict[str, Any]:
    """The ``{key: value}`` of ``profile`` in ``config``.

    A missing profile reads as empty when it is the built-in ``"default"`` (nobody named it);
    a profile named by ``--profile``, ``KWA_PROFILE`` or ``default_profile`` that does not exist
    raises :class:`ConfigError` listing the profiles.
    """
    if profile.source.kind == "default" and profile.value not in config.profiles:
        return {}
    return config.profile(profile.value)


def config_not_found_warning(config_path: Resolved) -> Problem:
    """The warning for a config file named by ``--config``/``KWA_CONFIG`` that does not exist."""
    return Problem(
        "settings.config",
        "CONFIG_NOT_FOUND",
        f"config file {config_path.value} (from {config_path.source}) does not exist; reading it as empty",
        "Create it with 'kwa config init' or check the path.",
        severity="warning",
    )


def check_sid(value: str, source: Source) -> str:
    """An account SID, trimmed: ASCII letters and digits only. Raises :class:`UsageError` (``SID_INVALID``)."""
    sid = str(value).strip()
    if not sid or not sid.isascii() or not sid.isalnum():
        raise UsageError(
            f"account SID from {source} must be letters and digits only",
            hint="Copy the SID from kaleyra.io (it looks like HXAP16XXXXXX97IN).",
            code="SID_INVALID",
        )
    return sid


def resolve_settings(
    given: SettingsInput,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    stdin: TextIO | None = None,
    need_key: bool = True,
    on_secret: Callable[[str], None] | None = None,
) -> Settings:
    """Resolve every setting with its source (DESIGN section 2).

    ``environ`` defaults to ``os.environ``; ``cwd`` to the working directory (for ``./.env``).
    ``need_key=False`` skips reading ``--api-key-file`` (``validate`` needs no credentials).
    ``on_secret`` is called with every API key found (the one in use and those it overrode) as
    soon as it is read, so output can mask it even when a later setting fails.
    Raises :class:`UsageError`/:class:`ConfigError` for unusable input (bad ``.env``, bad
    config file, unknown profile, bad base URL, a key with inner whitespace).
    """
    from .config_file import load_config

    location = locate_config(given, environ, cwd=cwd)
    env_path = location.env_file
    pick = location.layers
    warnings: list[Problem] = []
    if on_secret is not None:
        # Known before the config file and profile are read, whose errors may quote a value.
        for layer in (location.environ, location.dotenv):
            if str(layer.get(ENV_API_KEY, "")).strip():
                on_secret(str(layer[ENV_API_KEY]).strip())

    config_path = location.config_path
    config = load_config(config_path.value)
    if not config.exists and config_path.source.kind != "default":
        warnings.append(config_not_found_warning(config_path))

    profile = active_profile(location, config, given.profile)
    profile_values_ = profile_values(config, profile)  # raises listing the profiles
    profile_source = Source("config", f"{config.path} [profiles.{profile.value}]")

    def resolve(name: str, flag_value: Any = None, default: Any = None) -> Resolved:
        layers = pick(flag_value, SETTING_FLAG.get(name, ""), SETTING_ENV.get(name))
        if _nonempty(profile_values_.get(name)):
            layers.append((profile_values_[name], profile_source))
        if not layers:
            return Resolved(default, DEFAULT_SOURCE) if default is not None else Resolved(None, Source("unset"))
        return Resolved(layers[0][0], layers[0][1], tuple(layers[1:]))

    # API key: the only flag layer is --api-key-file (a value flag would leak into history and ps).
    api_key = resolve("api_key")
    key_path: Path | None = None
    if given.api_key_file is not None and need_key:
        raw = read_api_key_file(given.api_key_file, stdin)
        source = Source("flag", f"--api-key-file {given.api_key_file}")
        api_key = Resolved(raw, source, ((api_key.value, api_key.source), *api_key.overridden) if api_key.value else ())
        if given.api_key_file != "-":
            key_path = Path(given.api_key_file)
    elif api_key.source.kind == "dotenv":
        key_path = env_path
    elif api_key.source.kind == "config":
        key_path = config.path
    if on_secret is not None:
        for value in (api_key.value, *(v for v, _ in api_key.overridden)):
            if isinstance(value, str) and value.strip():
                on_secret(value.strip())
    if api_key.value is not None:
        api_key = Resolved(clean_api_key(str(api_key.value), api_key.source), api_key.source, api_key.overridden)
        if api_key.value == "" and api_key.source.kind == "flag":
            # The user pointed at a key and it is not there: say so, not "no API key".
            raise UsageError(
                f"the API key from {api_key.source} is empty",
                hint="Put the key in the file (or on stdin), or leave --api-key-file out to use KALEYRA_API_KEY.",
                code="API_KEY_EMPTY",
            )
        if api_key.value == "":
            api_key = Resolved(None, Source("unset"))
        elif key_path is not None and readable_by_others(key_path):
            warnings.append(_key_permission_warning(key_path))

    sid = resolve("sid", given.sid)
    if sid.value is not None:
        sid = Resolved(check_sid(sid.value, sid.source), sid.source, sid.overridden)

    wa_number = resolve("wa_number", given.wa_number)
    pod = resolve("pod", given.pod)
    base_url = resolve("base_url", given.base_url)
    endpoint = _resolve_endpoint(pod, base_url)
    if endpoint.source.kind != "default":
        url, found = check_base_url(endpoint.value, endpoint.source)
        endpoint = Resolved(url, endpoint.source, endpoint.overridden)
        warnings += found
    if pod.value is not None and pod.value not in PODS:
        raise UsageError(
            f"pod {pod.value!r} from {pod.source} is not one of {', '.join(PODS)}",
            hint="Use --pod in|sg|eu|na, or --base-url for another host.",
            code="POD_UNKNOWN",
        )
    if pod.value is None:
        pod = Resolved(DEFAULT_POD, DEFAULT_SOURCE)

    timeout = resolve("timeout", given.timeout, DEFAULT_TIMEOUT)
    try:
        timeout_value = float(timeout.value)
    except (TypeError, ValueError):
        timeout_value = -1.0
    if not timeout_value > 0:
        raise UsageError(f"timeout {timeout.value!r} from {timeout.source} must be a number of seconds above 0")
    timeout = Resolved(timeout_value, timeout.source, timeout.overridden)

    return Settings(
        sid=sid,
        api_key=api_key,
        wa_number=wa_number,
        pod=pod,
        base_url=endpoint,
        wa_source=resolve("wa_source", given.wa_source),
        timeout=timeout,
        profile=profile,
        config_path=config_path,
        env_file=env_path,
        warnings=warnings,
        base_url_setting=base_url,
    )


_LEVEL_ORDER = ("flag", "env", "dotenv", "config")


def _resolve_endpoint(pod: Resolved, base_url: Resolved) -> Resolved:
    """The highest level that sets ``base_url`` or ``pod`` decides; within one level ``base_url`` wins."""
    candidates: list[tuple[int, int, str, Source]] = []
    for rank_in_level, setting in ((0, base_url), (1, pod)):
        layers = [(setting.value, setting.source), *setting.overridden] if setting.value is not None else []
        for value, source in layers:
            level = _LEVEL_ORDER.index(source.kind) if source.kind in _LEVEL_ORDER else len(_LEVEL_ORDER)
            url = value if rank_in_level == 0 else PODS.get(value)
            if url is None:
                continue  # unknown pod: reported by the caller
            candidates.append((level, rank_in_level, url, source))
    if not candidates:
        return Resolved(PODS[DEFAULT_POD], DEFAULT_SOURCE)
    candidates.sort(key=lambda c: (c[0], c[1]))
    _, _, url, source = candidates[0]
    return Resolved(url, source)


# ---------------------------------------------------------------- config values and reports

_E164_HINT = "Write the business number in E.164: '+', country code and number, e.g. +919876543210."


def check_setting_key(key: str) -> str:
    """A config key as typed (``api-key`` is read as ``api_key``). Raises :class:`ConfigError` listing the valid keys."""
    import difflib

    name = key.strip().replace("-", "_")
    if name in CONFIG_KEYS:
        return name
    close = difflib.get_close_matches(name.lower(), CONFIG_KEYS, n=1)
    hint = (f"Did you mean {close[0]!r}? " if close else "") + "Valid keys: " + ", ".join(CONFIG_KEYS) + "."
    raise ConfigError(f"unknown config key {key!r}", hint=hint, code="CONFIG_KEY_UNKNOWN")


def check_setting_value(key: str, text: str, source: Source) -> tuple[Any, list[Problem]]:
    """Check one config value as ``reply`` would, and return it in the form to store, with warnings.

    ``sid``: letters and digits. ``api_key``: trimmed; no whitespace or control characters inside.
    ``wa_number``: E.164 (spaces, dashes and brackets dropped; stored as ``+digits``). ``pod``:
    ``in``, ``sg``, ``eu`` or ``na`` (any case; stored lower case). ``base_url``: see
    :func:`check_base_url` (stored without a trailing ``/``). ``wa_source``: any text; an
    undocumented one is a warning. ``timeout``: seconds above 0, stored as an int or float.
    ``source`` names where the text came from, for messages. Raises :class:`UsageError` (exit 2).
    """
    key = check_setting_key(key)
    if key == "api_key":
        value = clean_api_key(text, source)
        if not value:
            raise UsageError(f"the API key from {source} is empty", hint="Copy the key again from kaleyra.io.", code="API_KEY_INVALID")
        return value, []
    if key == "timeout":
        return _check_timeout_text(text, source), []
    value = text.strip()
    if not value:
        raise UsageError(
            f"{key} from {source} is empty",
            hint=f"To remove {key} from the profile, run: kwa config unset {key}",
            code="SETTING_EMPTY",
        )
    if key == "sid":
        return check_sid(value, source), []
    if key == "wa_number":
        from .message import normalize_number

        number, problems = normalize_number(value, "settings.wa_number", label=f"business number from {source}")
        errors = [p for p in problems if p.severity == "error"]
        if errors or number is None:
            first = errors[0] if errors else Problem("settings.wa_number", "NUMBER_INVALID", f"business number from {source} is not valid")
            hint = _E164_HINT if first.code == "NUMBER_NO_PLUS" or not first.hint else f"{first.hint} {_E164_HINT}"
            raise UsageError(first.message, hint=hint, code=first.code)
        return number, problems
    if key == "pod":
        pod = value.lower()
        if pod not in PODS:
            raise UsageError(
                f"pod {value!r} from {source} is not one of {', '.join(PODS)}",
                hint="Use in, sg, eu or na; for another host set base_url instead.",
                code="POD_UNKNOWN",
            )
        return pod, []
    if key == "base_url":
        return check_base_url(value, source)
    if key == "wa_source":
        from .message import check_wa_source

        return value, check_wa_source(value)
    raise AssertionError(key)  # pragma: no cover - every key is handled above


def _check_timeout_text(text: str, source: Source) -> int | float:
    import math

    raw = text.strip()
    number: int | float
    try:
        number = int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise UsageError(
            f"timeout {text!r} from {source} must be a number of seconds above 0",
            hint="Give the timeout in seconds, e.g. 30 or 2.5.",
            code="TIMEOUT_INVALID",
        )
    return number


@dataclass(frozen=True)
class SettingReport:
    """One setting as ``kwa config show`` reports it (DESIGN section 2).

    ``value``: the value in use (the API key masked, never whole; ``None`` when not set).
    ``source``: where it came from, as :func:`describe_source` words it; ``source_kind``:
    flag | env | dotenv | config | default | unset. ``overridden``: lower-precedence values it
    won over, highest first, as ``(value, source, source_kind)`` (keys masked). ``note``: a remark
    such as "not used: base_url decides the endpoint", or ``None``.
    """

    name: str
    value: Any
    source: str
    source_kind: str
    overridden: tuple[tuple[Any, str, str], ...] = ()
    note: str | None = None


def describe_source(source: Source) -> str:
    """A source in words: ``flag --sid``, ``env KALEYRA_SID``, ``.env /app/.env``,
    ``config /home/me/.config/kwa/config.toml [profiles.prod]``, ``default``, ``not set``."""
    if source.kind == "dotenv":
        return f".env {source.detail}".strip()
    if source.kind == "unset":
        return "not set"
    return str(source)


def report_settings(settings: Settings, given: SettingsInput | None = None) -> list[SettingReport]:
    """Every setting with its value, source and overridden values, for ``kwa config show``.

    Order: sid, api_key, wa_number, pod, base_url, wa_source, timeout, profile, config, env_file.
    ``given`` (what the command line said) explains the ``.env`` file's source. The API key is
    masked with :func:`mask_secret` in the value and in every overridden value.
    """
    given = given or SettingsInput()

    def item(name: str, resolved: Resolved, *, secret: bool = False, note: str | None = None, source_text: str | None = None) -> SettingReport:
        def shown(value: Any) -> Any:
            if value is None:
                return None
            return mask_secret(str(value)) if secret else value

        return SettingReport(
            name,
            shown(resolved.value),
            source_text or describe_source(resolved.source),
            resolved.source.kind,
            tuple((shown(v), describe_source(s), s.kind) for v, s in resolved.overridden),
            note,
        )

    endpoint = settings.base_url
    base_url = settings.base_url_setting
    base_layers = [(base_url.value, base_url.source), *base_url.overridden] if base_url.value is not None else []
    from_base_url = any(source == endpoint.source for _, source in base_layers)
    if from_base_url:
        endpoint_item = item(
            "base_url",
            Resolved(endpoint.value, endpoint.source, tuple((v, s) for v, s in base_layers if s != endpoint.source)),
        )
        pod_note = f"not used: base_url from {describe_source(endpoint.source)} decides the endpoint"
    else:
        endpoint_item = item(
            "base_url",
            Resolved(endpoint.value, endpoint.source, tuple(base_layers)),
            source_text=f"{describe_source(endpoint.source)} (from pod {settings.pod.value})",
        )
        pod_note = None

    config_path = settings.config_path
    config_note = None if Path(config_path.value).exists() else "the file does not exist"
    if given.no_env_file:
        env_file = Resolved(None, Source("flag", "--no-env-file"))
    elif given.env_file is not None:
        env_file = Resolved(str(settings.env_file), Source("flag", "--env-file"))
    elif settings.env_file is not None:
        env_file = Resolved(str(settings.env_file), Source("default", "(./.env in the working folder)"))
    else:
        env_file = Resolved(None, Source("unset"))
    env_note = "no ./.env in the working folder" if env_file.source.kind == "unset" else None

    return [
        item("sid", settings.sid),
        item("api_key", settings.api_key, secret=True),
        item("wa_number", settings.wa_number),
        item("pod", settings.pod, note=pod_note),
        endpoint_item,
        item("wa_source", settings.wa_source),
        item("timeout", settings.timeout),
        item("profile", settings.profile),
        item(
            "config",
            Resolved(str(config_path.value), config_path.source, tuple((str(v), src) for v, src in config_path.overridden)),
            note=config_note,
        ),
        item("env_file", env_file, note=env_note),
    ]


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder for kwa's local state (idempotency journal): ``KWA_STATE_DIR`` or the platform's user state dir."""
    env = os.environ if environ is None else environ
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR])
    import platformdirs

    return Path(platformdirs.user_state_dir("kwa"))

