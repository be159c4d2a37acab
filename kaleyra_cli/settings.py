"""Resolve settings from flags, environment, ``.env``, config-file profile and defaults (DESIGN section 2).

Every value remembers where it came from, so ``kwa config show`` and error hints can
say "API key Ax…3 from .env /srv/app/.env". Precedence, highest first:
flag > environment > ``.env`` > config-file profile > default. An empty value counts as unset.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

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

    try:
        # Read first so a bad encoding is our clear error, not dotenv's traceback.
        text = path.read_text(encoding="utf-8-sig")
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
    if spec == "-":
        stream = stdin if stdin is not None else sys.stdin
        return stream.read()
    try:
        return Path(spec).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UsageError(f"cannot read --api-key-file {spec}: {reason}", hint="Give a readable file holding only the key.") from None


def clean_api_key(raw: str, source: Source) -> str:
    """Trim surrounding whitespace; refuse whitespace or control characters inside the key.

    The key itself never appears in the error: only the position and the character class.
    """
    key = raw.strip()
    for index, ch in enumerate(key):
        if ch.isspace() or not ch.isprintable():
            kind = "whitespace" if ch.isspace() else "a control character"
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


def _readable_by_others(path: Path) -> bool:
    if os.name != "posix":
        return False
    try:
        return bool(path.stat().st_mode & 0o044)
    except OSError:
        return False


def _key_permission_warning(path: Path) -> Problem:
    return Problem(
        "settings.api_key",
        "KEY_FILE_READABLE",
        f"the API key is read from {path}, which other users can read",
        f"Run: chmod 600 {path}",
        severity="warning",
    )


def resolve_settings(
    given: SettingsInput,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    stdin: TextIO | None = None,
    need_key: bool = True,
) -> Settings:
    """Resolve every setting with its source (DESIGN section 2).

    ``environ`` defaults to ``os.environ``; ``cwd`` to the working directory (for ``./.env``).
    ``need_key=False`` skips reading ``--api-key-file`` (``validate`` needs no credentials).
    Raises :class:`UsageError`/:class:`ConfigError` for unusable input (bad ``.env``, bad
    config file, unknown profile, bad base URL, a key with inner whitespace).
    """
    from .config_file import default_config_path, load_config

    env = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in env.items() if v != ""}
    warnings: list[Problem] = []

    env_path: Path | None = None
    dotenv: dict[str, str] = {}
    if not given.no_env_file:
        if given.env_file is not None:
            env_path = given.env_file
            if not env_path.is_file():
                raise UsageError(f".env file {env_path} does not exist", hint="Check the --env-file path.")
        else:
            candidate = (cwd or Path.cwd()) / ".env"
            env_path = candidate if candidate.is_file() else None
        if env_path is not None:
            dotenv = read_env_file(env_path)
    dotenv_source = Source("dotenv", str(env_path))

    def pick(flag_value: Any, flag_name: str, env_name: str | None) -> list[tuple[Any, Source]]:
        layers: list[tuple[Any, Source]] = []
        if _nonempty(flag_value):
            layers.append((flag_value, Source("flag", flag_name)))
        if env_name and env_name in env:
            layers.append((env[env_name], Source("env", env_name)))
        if env_name and env_name in dotenv:
            layers.append((dotenv[env_name], dotenv_source))
        return layers

    config_layers = pick(given.config, "--config", ENV_CONFIG)
    if config_layers:
        config_path = Resolved(Path(config_layers[0][0]).expanduser(), config_layers[0][1])
    else:
        config_path = Resolved(default_config_path(), DEFAULT_SOURCE)
    config = load_config(config_path.value)
    if not config.exists and config_path.source.kind != "default":
        warnings.append(
            Problem(
                "settings.config",
                "CONFIG_NOT_FOUND",
                f"config file {config_path.value} (from {config_path.source}) does not exist; reading it as empty",
                "Create it with 'kwa config init' or check the path.",
                severity="warning",
            )
        )

    profile_layers = pick(given.profile, "--profile", ENV_PROFILE)
    if profile_layers:
        profile = Resolved(profile_layers[0][0], profile_layers[0][1])
    elif config.default_profile:
        profile = Resolved(config.default_profile, Source("config", f"{config.path} default_profile"))
    else:
        profile = Resolved(DEFAULT_PROFILE, DEFAULT_SOURCE)
    if profile.source.kind == "default" and profile.value not in config.profiles:
        profile_values: dict[str, Any] = {}
    else:
        profile_values = config.profile(profile.value)  # raises listing the profiles
    profile_source = Source("config", f"{config.path} [profiles.{profile.value}]")

    def resolve(name: str, flag_value: Any = None, default: Any = None) -> Resolved:
        layers = pick(flag_value, SETTING_FLAG.get(name, ""), SETTING_ENV.get(name))
        if _nonempty(profile_values.get(name)):
            layers.append((profile_values[name], profile_source))
        if not layers:
            return Resolved(default, DEFAULT_SOURCE) if default is not None else Resolved(None, Source("unset"))
        return Resolved(layers[0][0], layers[0][1], tuple(layers[1:]))

    # API key: the only flag layer is --api-key-file (a value flag would leak into history and ps).
    api_key = resolve("api_key")
    key_path: Path | None = None
    if given.api_key_file is not None and need_key:
        raw = read_api_key_file(given.api_key_file, stdin)
        source = Source("flag", f"--api-key-file {given.api_key_file}")
        api_key = Resolved(raw, source, ((api_key.value, api_key.source),) if api_key.value else ())
        if given.api_key_file != "-":
            key_path = Path(given.api_key_file)
    elif api_key.source.kind == "dotenv":
        key_path = env_path
    elif api_key.source.kind == "config":
        key_path = config.path
    if api_key.value is not None:
        api_key = Resolved(clean_api_key(str(api_key.value), api_key.source), api_key.source, api_key.overridden)
        if api_key.value == "":
            api_key = Resolved(None, Source("unset"))
        elif key_path is not None and _readable_by_others(key_path):
            warnings.append(_key_permission_warning(key_path))

    sid = resolve("sid", given.sid)
    if sid.value is not None:
        sid_value = str(sid.value).strip()
        if not sid_value.isascii() or not sid_value.isalnum():
            raise UsageError(
                f"account SID from {sid.source} must be letters and digits only",
                hint="Copy the SID from kaleyra.io (it looks like HXAP16XXXXXX97IN).",
                code="SID_INVALID",
            )
        sid = Resolved(sid_value, sid.source, sid.overridden)

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


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder for kwa's local state (idempotency journal): ``KWA_STATE_DIR`` or the platform's user state dir."""
    env = os.environ if environ is None else environ
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR])
    import platformdirs

    return Path(platformdirs.user_state_dir("kwa"))

