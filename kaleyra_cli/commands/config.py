"""``kwa config``: profiles in a TOML file, and every setting with its source (DESIGN sections 1, 2).

Each subcommand parses its options, calls the core (``settings``, ``config_file``) and hands the
result to ``render``. Nothing here imports Rich, httpx, phonenumbers, tomli_w or platformdirs at
import time: ``import kaleyra_cli.cli`` must stay cheap.

Exit codes: 0 done; 2 usage or config error (unknown key, invalid value, unknown profile, broken
config file, a value that is not set for ``get``, a prompt needed where none may be shown);
130 cancelled at a prompt (nothing written).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigError, Interrupted, Problem, UsageError, mask_secret
from ..settings import DEFAULT_PROFILE, SETTING_ENV, Resolved, SettingsInput, Source
from . import _options as o

if TYPE_CHECKING:
    from ..cli import AppState
    from ..config_file import ConfigFile
    from ..settings import ConfigLocation

HELP = "Manage profiles in the config file and show where each setting comes from."

config_app = typer.Typer(
    name="config",
    help=HELP,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Examples:\n\n"
        "  kwa config init                       # asks for SID, key, business number\n"
        "  kwa config set pod eu --profile prod\n"
        "  kwa config use prod\n"
        "  kwa config show                       # each setting and where it is from\n\n"
        "Settings: flag > environment > .env > config profile > default. 'kwa config COMMAND --help' for more."
    ),
)

# ---------------------------------------------------------------- shared options

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profile to use. Env KWA_PROFILE. (Default: default_profile in the file, else 'default'.)",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file. Env KWA_CONFIG. (Default: see 'kwa config path'.)", show_default=False),
]
EnvFileOpt = Annotated[
    Path | None,
    typer.Option("--env-file", help="A .env file that may set KWA_PROFILE / KWA_CONFIG. (Default: ./.env if present.)", show_default=False),
]
NoEnvFileOpt = Annotated[bool, typer.Option("--no-env-file", help="Do not read any .env file.")]
NoInput = Annotated[
    bool,
    typer.Option("--no-input", help="Never prompt (nor when CI is set or stdin is not a terminal); fail with what to pass instead."),
]
KeyArg = Annotated[
    str,
    typer.Argument(help="One of: sid, api_key, wa_number, pod, base_url, wa_source, timeout.", metavar="KEY", show_default=False),
]

_EXIT_CODES = "Exit codes: 0 done, 2 usage or config error, 130 cancelled at a prompt (nothing written)."

# ---------------------------------------------------------------- helpers


@dataclass
class _Target:
    """The config file and the profile a subcommand acts on."""

    location: ConfigLocation
    config: ConfigFile
    profile: Resolved

    @property
    def name(self) -> str:
        return str(self.profile.value)

    @property
    def path(self) -> Path:
        return Path(self.config.path)

    def named(self) -> bool:
        """Whether someone chose the profile (flag, env, .env, default_profile) rather than the built-in default."""
        return self.profile.source.kind != "default"

    def where(self) -> str:
        origin = "" if not self.named() else f" (from {_source_words(self.profile.source)})"
        return f"profile '{self.name}'{origin} in {self.path}"


def _source_words(source: Source) -> str:
    from ..settings import describe_source

    return describe_source(source)


def _state(ctx: typer.Context) -> AppState:
    from ..cli import get_state

    return get_state(ctx)


def _locate(state: AppState, *, profile: str | None, config: Path | None, env_file: Path | None, no_env_file: bool) -> ConfigLocation:
    from ..settings import locate_config

    given = SettingsInput(profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    return locate_config(given, state.env.environ)


def _open(state: AppState, *, profile: str | None, config: Path | None, env_file: Path | None, no_env_file: bool) -> _Target:
    """Locate and read the config file (a broken one raises ConfigError, exit 2) and pick the profile."""
    from ..config_file import load_config
    from ..settings import active_profile

    location = _locate(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    config_file = load_config(location.config_path.value)
    return _Target(location, config_file, active_profile(location, config_file, profile))


def _save(target: _Target) -> None:
    from ..config_file import save_config

    save_config(target.config)


def _prompt_refusal(state: AppState, no_input: bool) -> str | None:
    """Why kwa may not prompt here (``--no-input``, ``CI``, stdin not a terminal), or ``None`` when it may."""
    if no_input:
        return "--no-input was given"
    if state.env.in_ci:
        return "CI is set"
    if not state.env.stdin_isatty:
        return "stdin is not a terminal"
    return None


def _ask(text: str, *, default: str | None = None, hide_input: bool = False) -> str:
    """One prompt on stderr (stdout stays for data). Ctrl-C or end of input cancels: exit 130."""
    try:
        answer = typer.prompt(text, default=default, hide_input=hide_input, err=True, show_default=default is not None and not hide_input)
    except typer.Abort:
        raise Interrupted("cancelled at the prompt: nothing was written") from None
    return str(answer)


def _confirm(text: str, *, default: bool = True) -> bool:
    try:
        return bool(typer.confirm(text, default=default, err=True))
    except typer.Abort:
        raise Interrupted("cancelled at the prompt: nothing was written") from None


def _overriders(location: ConfigLocation, key: str) -> list[str]:
    """Where a value above the config file sets ``key`` (env or .env), in words."""
    env_name = SETTING_ENV.get(key)
    if not env_name:
        return []
    return [_source_words(source) for _, source in location.layers(None, "", env_name)]


def _display(key: str, value: Any) -> str:
    """A stored value as text: the key masked, a timeout without a needless ``.0``."""
    if value is None:
        return ""
    if key == "api_key":
        return mask_secret(str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shown(value: Any) -> str:
    """A reported value (already masked where secret) as text."""
    return _display("", value)


def _envelope(**values: Any) -> dict[str, Any]:
    from ..render import SCHEMA_VERSION

    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": True, "exit_code": 0}
    document.update(values)
    return document


# ---------------------------------------------------------------- set


SET_EPILOG = (
    "Examples:\n\n"
    "  kwa config set sid HXAP16XXXXXX97IN\n\n"
    "  kwa config set api_key                 # prompts, input hidden\n\n"
    "  pass show kaleyra/key | kwa config set api_key -\n\n"
    "  kwa config set wa_number +919876543210 --profile prod\n\n"
    "  kwa config set pod sg; kwa config set timeout 15\n\n" + _EXIT_CODES
)


def set_command(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[
        list[str] | None,
        typer.Argument(
            help="The value. For api_key leave it out to be prompted (hidden), or give '-' to read stdin.",
            metavar="VALUE",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
    no_input: NoInput = False,
) -> None:
    """Set KEY in a profile, checked as 'kwa reply' would check it."""
    from ..config_file import set_value
    from ..settings import check_setting_key, check_setting_value

    state = _state(ctx)
    renderer = state.make_renderer("auto")
    name = check_setting_key(key)
    target = _open(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    words = list(value or [])

    if name == "api_key":
        text, source = _read_key_value(state, words, no_input)
        renderer.secrets.append(text.strip())
    elif not words:
        raise UsageError(f"no value given for {name}", hint=f"Run: kwa config set {name} VALUE (or 'kwa config unset {name}' to remove it).")
    elif len(words) > 1 and name != "wa_number":
        raise UsageError(
            f"{name} takes one value, not {len(words)} words",
            hint=f"Quote a value that holds spaces: kwa config set {name} \"...\"",
        )
    else:
        # A number is often written in groups (+91 98765 43210): join them, then check it as E.164.
        text, source = " ".join(words), Source("command line")

    checked, warnings = check_setting_value(name, text, source)
    renderer.warn(warnings)
    created = target.name not in target.config.profiles
    set_value(target.config, target.name, name, checked)
    _save(target)
    renderer.note(f"set {name} = {_display(name, checked)} in {target.where()}")
    if created:
        renderer.note(f"created profile '{target.name}'")
    for where in _overriders(target.location, name):
        renderer.warn([
            Problem(
                f"settings.{name}",
                "SETTING_OVERRIDDEN",
                f"{where} also sets {name} and takes precedence over the config file",
                "'kwa config show' lists every value in use and its source.",
                severity="warning",
            )
        ])


def _read_key_value(state: AppState, words: list[str], no_input: bool) -> tuple[str, Source]:
    """The API key for ``set api_key``: the hidden prompt, stdin (``-``), or the command line (warned)."""
    renderer = state.renderer
    assert renderer is not None
    if len(words) > 1:
        raise UsageError(
            f"api_key takes one value, not {len(words)} words",
            hint="A key has no spaces. Run 'kwa config set api_key' with no value to be prompted.",
        )
    if words == ["-"]:
        from ..settings import read_api_key_file

        return read_api_key_file("-", state.env.stdin), Source("stdin")
    if words:
        renderer.warn([
            Problem(
                "settings.api_key",
                "KEY_ON_COMMAND_LINE",
                "the API key was given on the command line, so it is now in your shell history "
                "(and was visible to other users in the process list)",
                "Next time run 'kwa config set api_key' with no value to be prompted, or pipe it in with "
                "'kwa config set api_key -'; consider clearing the history entry.",
                severity="warning",
            )
        ])
        return words[0], Source("command line")
    refusal = _prompt_refusal(state, no_input)
    if refusal:
        raise UsageError(
            f"no API key given, and kwa will not prompt for it: {refusal}",
            hint="Pipe the key in: kwa config set api_key - < keyfile (or printf '%s' \"$KEY\" | kwa config set api_key -).",
            code="PROMPT_REFUSED",
        )
    return _ask("API key (input hidden)", hide_input=True), Source("prompt")


# ---------------------------------------------------------------- get


GET_EPILOG = (
    "Prints the value stored in the profile (not the environment's: 'kwa config show' shows the "
    "value in use). The API key is masked unless --reveal is given.\n\n"
    "Examples:\n\n"
    "  SID=$(kwa config get sid)\n\n"
    "  kwa config get api_key --reveal --profile prod | pbcopy\n\n"
    "Exit codes: 0 printed, 2 not set or api_key without --reveal in plain output (nothing on stdout), "
    "unknown key or profile, broken config file."
)


def get_command(
    ctx: typer.Context,
    key: KeyArg,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the API key itself, not its mask.")] = False,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
) -> None:
    """Print the value of KEY stored in a profile."""
    from ..settings import check_setting_key, profile_values

    state = _state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json))
    name = check_setting_key(key)
    target = _open(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    stored = profile_values(target.config, target.profile)  # a named profile that is missing: exit 2
    value = stored.get(name)
    if value is None or value == "":
        overriders = _overriders(target.location, name)
        elsewhere = f" {', '.join(overriders)} sets it: 'kwa config show' shows the value in use." if overriders else ""
        raise ConfigError(
            f"{name} is not set in {target.where()}",
            hint=f"Set it with: kwa config set {name} VALUE.{elsewhere}",
            code="SETTING_NOT_SET",
        )
    masked = name == "api_key" and not reveal
    if masked:
        renderer.secrets.append(str(value))
        if renderer.mode == "plain":
            # Plain output feeds $(...): a masked key there would be stored as if it were the key.
            raise UsageError(
                f"api_key is set in {target.where()} ({_display(name, value)}) but not printed",
                hint="Pass --reveal to print the key itself; 'kwa config show' shows it masked.",
                code="KEY_NOT_REVEALED",
            )
    text = _display(name, value) if masked else _shown(value)
    if renderer.mode == "json":
        renderer.json_out(
            _envelope(
                profile=target.name,
                config_path=str(target.path),
                key=name,
                value=text if masked or name != "timeout" else value,
                masked=masked,
            )
        )
    else:
        renderer.out(text)
    if masked:
        renderer.note("the API key is masked; pass --reveal to print it")


# ---------------------------------------------------------------- unset


UNSET_EPILOG = (
    "Examples:\n\n"
    "  kwa config unset base_url\n\n"
    "  kwa config unset api_key --profile old-account\n\n"
    "Removing a key that is not set changes nothing and exits 0.\n\n" + _EXIT_CODES
)


def unset_command(
    ctx: typer.Context,
    key: KeyArg,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
) -> None:
    """Remove KEY from a profile."""
    from ..config_file import unset_value
    from ..settings import check_setting_key, profile_values

    state = _state(ctx)
    renderer = state.make_renderer("auto")
    name = check_setting_key(key)
    target = _open(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    profile_values(target.config, target.profile)  # a named profile that is missing: exit 2, listing them
    if not unset_value(target.config, target.name, name):
        renderer.note(f"{name} was not set in {target.where()}; nothing changed")
        return
    _save(target)
    renderer.note(f"removed {name} from {target.where()}")


# ---------------------------------------------------------------- show


SHOW_EPILOG = (
    "Every setting, its value (the API key masked) and its source: a flag, an environment "
    "variable, a .env file, the config file and profile, or the default. Values a higher level "
    "overrides are listed as overridden. Takes the same settings flags as 'kwa reply', to show "
    "what a command with them would use.\n\n"
    "Examples:\n\n"
    "  kwa config show\n\n"
    "  kwa config show --profile prod -o json | jq .settings.sid\n\n"
    "  KALEYRA_SID=HX... kwa config show -o plain\n\n"
    "Plain output: one 'setting<TAB>value<TAB>source' line per setting, each followed by a line "
    "per overridden value whose source ends in '(overridden)'.\n\n"
    "Exit codes: 0 shown, 2 invalid setting, unknown profile or broken config file."
)


def show_command(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
    sid: o.Sid = None,
    api_key_file: o.ApiKeyFile = None,
    from_number: o.From = None,
    pod: o.Pod = None,
    base_url: o.BaseUrl = None,
    wa_source: o.WaSource = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds per attempt.", rich_help_panel=o.CREDENTIALS, show_default=False)] = None,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
    quiet: o.Quiet = False,
) -> None:
    """Show every setting in use, its source, and what it overrides (the key masked)."""
    from ..settings import report_settings, resolve_settings

    state = _state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json), quiet=quiet)
    given = SettingsInput(
        sid=sid,
        wa_number=from_number,
        pod=pod,
        base_url=base_url,
        wa_source=wa_source,
        timeout=timeout,
        profile=profile,
        config=config,
        env_file=env_file,
        no_env_file=no_env_file,
        api_key_file=api_key_file,
    )
    settings = resolve_settings(given, state.env.environ, stdin=state.env.stdin)
    # Defence in depth: every output path also scrubs the key, and the values it overrode.
    for value, _ in [(settings.api_key.value, None), *settings.api_key.overridden]:
        if value:
            renderer.secrets.append(str(value).strip())
    state.warnings = list(settings.warnings)
    report = report_settings(settings, given)

    if renderer.mode == "json":
        renderer.json_out(
            _envelope(
                profile=settings.profile.value,
                config_path=str(settings.config_path.value),
                settings={
                    item.name: {
                        "value": item.value,
                        "source": item.source,
                        "source_kind": item.source_kind,
                        "overridden": [{"value": v, "source": s, "source_kind": k} for v, s, k in item.overridden],
                        "note": item.note,
                    }
                    for item in report
                },
                warnings=[p.as_dict() for p in settings.warnings],
            )
        )
        renderer.warn(settings.warnings)
        return
    renderer.warn(settings.warnings)
    if renderer.mode == "plain":
        for item in report:
            note = f" ({item.note})" if item.note else ""
            renderer.out(_plain_line(item.name, _shown(item.value), item.source + note))
            for old_value, old_source, _ in item.overridden:
                renderer.out(_plain_line(item.name, _shown(old_value), f"{old_source} (overridden)"))
        return
    rows = [
        (
            item.name,
            _shown(item.value) if item.value is not None else "(not set)",
            item.source,
            [(_shown(v), s) for v, s, _ in item.overridden],
            item.note,
        )
        for item in report
    ]
    renderer.settings_table(f"Settings in use (profile '{settings.profile.value}')", rows)


def _plain_line(*fields: str) -> str:
    from ..render import neutralize

    return "\t".join(neutralize(field).replace("\t", "\\t") for field in fields)


# ---------------------------------------------------------------- path


PATH_EPILOG = (
    "Examples:\n\n"
    "  kwa config path\n\n"
    "  $EDITOR \"$(kwa config path)\"\n\n"
    "The path comes from --config, else KWA_CONFIG (environment, then .env), else the platform's "
    "user config folder. The file is not read, so this works even when it is broken."
)


def path_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
) -> None:
    """Print the config file's path."""
    state = _state(ctx)
    renderer = state.make_renderer("auto")
    location = _locate(state, profile=None, config=config, env_file=env_file, no_env_file=no_env_file)
    path = Path(location.config_path.value)
    renderer.out(str(path))
    if not path.exists():
        renderer.note("the file does not exist yet; 'kwa config init' or 'kwa config set' creates it")


# ---------------------------------------------------------------- profiles


PROFILES_EPILOG = (
    "Examples:\n\n"
    "  kwa config profiles\n\n"
    "  kwa config profiles -o plain | cut -f1\n\n"
    "  kwa config profiles --json | jq -r '.profiles[].name'\n\n"
    "Plain output: one profile per line; a second tab-separated field says 'active' and/or "
    "'default' (default_profile in the file).\n\n"
    "Exit codes: 0 listed (also when there are none), 2 broken config file."
)


def profiles_command(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
) -> None:
    """List the profiles in the config file, marking the active and default ones."""
    state = _state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json))
    target = _open(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    names = target.config.profile_names()
    warnings: list[Problem] = []
    if target.named() and target.name not in target.config.profiles:
        warnings.append(
            Problem(
                "settings.profile",
                "PROFILE_NOT_FOUND",
                f"the active profile '{target.name}' (from {_source_words(target.profile.source)}) is not in {target.path}",
                f"Create it with 'kwa config init --profile {target.name}', or choose one of the listed profiles.",
                severity="warning",
            )
        )
    default = target.config.default_profile

    def marks(name: str) -> list[str]:
        return [mark for mark, on in (("active", name == target.name), ("default", name == default)) if on]

    if renderer.mode == "json":
        renderer.json_out(
            _envelope(
                config_path=str(target.path),
                default_profile=default,
                active_profile={"name": target.name, "source": _source_words(target.profile.source)},
                profiles=[
                    {
                        "name": name,
                        "active": name == target.name,
                        "default": name == default,
                        "keys": [k for k in target.config.profiles[name] if target.config.profiles[name][k] not in (None, "")],
                    }
                    for name in names
                ],
                warnings=[p.as_dict() for p in warnings],
            )
        )
        renderer.warn(warnings)
        return
    renderer.warn(warnings)
    if not names:
        where = "does not exist" if not target.config.exists else "has no profiles"
        renderer.note(f"the config file {target.path} {where}; create a profile with 'kwa config init'")
        return
    if renderer.mode == "plain":
        for name in names:
            renderer.out(_plain_line(name, ",".join(marks(name))) if marks(name) else _plain_line(name))
        return
    rows = [
        [name, ", ".join(marks(name)), ", ".join(k for k in target.config.profiles[name])]
        for name in names
    ]
    renderer.list_table(f"Profiles in {target.path}", ["profile", "", "keys set"], rows)


# ---------------------------------------------------------------- use


USE_EPILOG = (
    "Sets default_profile in the config file. KWA_PROFILE and --profile still take precedence.\n\n"
    "Examples:\n\n"
    "  kwa config use prod\n\n"
    "  kwa config use test --config ./ci-config.toml\n\n"
    "Exit codes: 0 done, 2 no such profile (the existing ones are listed) or broken config file."
)


def use_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="An existing profile ('kwa config profiles' lists them).", metavar="PROFILE", show_default=False)],
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
) -> None:
    """Make PROFILE the default profile."""
    state = _state(ctx)
    renderer = state.make_renderer("auto")
    target = _open(state, profile=None, config=config, env_file=env_file, no_env_file=no_env_file)
    if name not in target.config.profiles:
        import difflib

        names = target.config.profile_names()
        if not target.config.exists:
            message = f"no profile '{name}': the config file {target.path} does not exist"
        elif not names:
            message = f"no profile '{name}': the config file {target.path} has no profiles"
        else:
            message = f"no profile '{name}' in {target.path}; its profiles are: {', '.join(names)}"
        close = difflib.get_close_matches(name, names, n=1)
        hint = (f"Did you mean '{close[0]}'? " if close else "") + f"Create it with: kwa config init --profile {name}"
        raise ConfigError(message, hint=hint, code="PROFILE_NOT_FOUND")
    target.config.default_profile = name
    _save(target)
    renderer.note(f"default profile is now '{name}' (in {target.path})")
    layers = target.location.layers(None, "", "KWA_PROFILE")
    if layers and layers[0][0] != name:
        renderer.warn([
            Problem(
                "settings.profile",
                "PROFILE_OVERRIDDEN",
                f"{_source_words(layers[0][1])} selects profile '{layers[0][0]}', which takes precedence over default_profile",
                "Unset KWA_PROFILE to use the default profile.",
                severity="warning",
            )
        ])


# ---------------------------------------------------------------- init


INIT_EPILOG = (
    "On a terminal, asks for the account SID, the API key (input hidden), the business WhatsApp "
    "number and the pod, checks each, and writes the profile. With --no-input, CI set, or stdin "
    "not a terminal it never prompts: pass the values as flags.\n\n"
    "Examples:\n\n"
    "  kwa config init\n\n"
    "  kwa config init --profile prod --pod sg\n\n"
    "  kwa config init --no-input --sid HXAP16XXXXXX97IN --api-key-file key.txt --from +919876543210\n\n"
    + _EXIT_CODES
)

_REQUIRED = (("sid", "--sid SID"), ("api_key", "--api-key-file PATH|-"), ("wa_number", "--from +E164"))


def init_command(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    env_file: EnvFileOpt = None,
    no_env_file: NoEnvFileOpt = False,
    sid: Annotated[str | None, typer.Option("--sid", help="Account SID.", show_default=False)] = None,
    api_key_file: Annotated[
        str | None,
        typer.Option("--api-key-file", help="Read the API key from PATH or '-' (stdin).", metavar="PATH|-", show_default=False),
    ] = None,
    from_number: Annotated[str | None, typer.Option("--from", help="Business WhatsApp number in E.164.", show_default=False)] = None,
    pod: Annotated[str | None, typer.Option("--pod", help="Kaleyra pod: in, sg, eu or na.", show_default=False)] = None,
    no_input: NoInput = False,
) -> None:
    """Write a profile: prompt for credentials on a terminal, or take them from flags."""
    from ..config_file import set_value
    from ..settings import check_setting_value, read_api_key_file

    state = _state(ctx)
    renderer = state.make_renderer("auto")
    target = _open(state, profile=profile, config=config, env_file=env_file, no_env_file=no_env_file)
    existing = dict(target.config.profiles.get(target.name, {}))

    values: dict[str, Any] = {}
    flags = (("sid", sid, Source("flag", "--sid")), ("wa_number", from_number, Source("flag", "--from")), ("pod", pod, Source("flag", "--pod")))
    for key, given, source in flags:
        if given is not None:
            checked, warnings = check_setting_value(key, given, source)
            renderer.warn(warnings)
            values[key] = checked
    if api_key_file is not None:
        raw = read_api_key_file(api_key_file, state.env.stdin)
        renderer.secrets.append(raw.strip())
        values["api_key"], _ = check_setting_value("api_key", raw, Source("flag", f"--api-key-file {api_key_file}"))

    refusal = _prompt_refusal(state, no_input)
    if refusal:
        missing = [flag for key, flag in _REQUIRED if key not in values and not existing.get(key)]
        if missing:
            raise UsageError(
                f"{target.where()} needs {', '.join(flag.split()[0] for flag in missing)}, and kwa will not prompt: {refusal}",
                hint="Pass " + " ".join(missing) + " (and --pod in|sg|eu|na if not in), or run 'kwa config init' in a terminal.",
                code="PROMPT_REFUSED",
            )
    else:
        renderer.err(f"Writing {target.where()}. Press Enter to keep a value shown in [brackets].")
        _prompt_missing(state, values, existing)
        if not _confirm(f"Write {target.where()}?"):
            renderer.note("nothing was written")
            return

    had_profiles = bool(target.config.profiles)
    for key, checked in values.items():
        set_value(target.config, target.name, key, checked)
    target.config.profiles.setdefault(target.name, {})
    made_default = False
    if not had_profiles and target.config.default_profile is None and target.name != DEFAULT_PROFILE:
        target.config.default_profile = target.name
        made_default = True
    _save(target)
    renderer.note(f"wrote {target.where()}")
    if made_default:
        renderer.note(f"'{target.name}' is the default profile (the file's first); change it with 'kwa config use'")
    elif target.profile.source.kind == "flag" and target.config.default_profile != target.name:
        renderer.note(f"use it with --profile {target.name} or KWA_PROFILE={target.name}, or make it the default: kwa config use {target.name}")
    renderer.note("check it with: kwa config show")


def _prompt_missing(state: AppState, values: dict[str, Any], existing: dict[str, Any]) -> None:
    """Ask for each value the flags did not give, re-asking until it passes the same checks as 'set'."""
    from ..settings import check_setting_value

    renderer = state.renderer
    assert renderer is not None
    questions = (
        ("sid", "Account SID (e.g. HXAP16XXXXXX97IN)", False),
        ("api_key", "API key (input hidden)", True),
        ("wa_number", "Business WhatsApp number in E.164 (e.g. +919876543210)", False),
        ("pod", "Pod: in, sg, eu or na", False),
    )
    for key, question, hidden in questions:
        if key in values:
            continue
        current = existing.get(key)
        if hidden:
            default = "" if current else None
            text = question + (f" [Enter keeps {mask_secret(str(current))}]" if current else "")
        else:
            default = str(current) if current else ("in" if key == "pod" else None)
            text = question
        while True:
            answer = _ask(text, default=default, hide_input=hidden)
            if hidden and current and answer == "":
                break  # keep the stored key
            try:
                checked, warnings = check_setting_value(key, answer, Source("prompt"))
            except UsageError as error:
                hint = f" ({error.hint})" if error.hint else ""
                renderer.err(f"kwa: {error.message}{hint}")
                continue
            renderer.warn(warnings)
            if key == "api_key":
                renderer.secrets.append(checked)
            values[key] = checked
            break


# ---------------------------------------------------------------- registration


config_app.command("init", epilog=INIT_EPILOG)(init_command)
config_app.command("set", epilog=SET_EPILOG)(set_command)
config_app.command("get", epilog=GET_EPILOG)(get_command)
config_app.command("unset", epilog=UNSET_EPILOG)(unset_command)
config_app.command("show", epilog=SHOW_EPILOG)(show_command)
config_app.command("path", epilog=PATH_EPILOG)(path_command)
config_app.command("profiles", epilog=PROFILES_EPILOG)(profiles_command)
config_app.command("use", epilog=USE_EPILOG)(use_command)
