"""The root Typer app: global options, command registration, and the one place that turns
errors into messages and exit codes (DESIGN section 9).

Importing this module must stay cheap: no httpx, phonenumbers, uvicorn or Rich tables here;
commands import what they need when they run, and each command's module is imported only when
that command is used (``_COMMANDS``), so ``kwa --version`` imports none of them (issue 7).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ._version import __version__
from ._fastparams import install as _fast_parameters
from .errors import ExitCode, KwaError, Problem

if TYPE_CHECKING:
    from .render import Environment, Renderer


def _system_environment() -> Environment:
    from .render import Environment

    return Environment.from_system()


def _renderer(env: Environment, mode: str, **options: Any) -> Renderer:
    from .render import Renderer

    return Renderer(env, mode, **options)


@dataclass
class AppState:
    """Per-invocation application object kept in ``ctx.obj`` (hatch's pattern): no module globals."""

    env: Environment = field(default_factory=_system_environment)
    renderer: Renderer | None = None
    warnings: list[Problem] = field(default_factory=list)
    hint_extra: str | None = None

    def make_renderer(self, mode: str, *, quiet: bool = False, verbose: bool = False) -> Renderer:
        self.renderer = _renderer(self.env, mode, quiet=quiet, verbose=verbose)
        return self.renderer


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


class KwaGroup(TyperGroup):
    """Runs a subcommand and maps what escapes it to output and an exit code (DESIGN section 5).

    Its commands are the lazy table ``_COMMANDS``: a command's module is imported (and its Click
    command built) the first time the command is looked up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands, {name: _loader(name) for name in _COMMANDS})

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KwaError as error:
            state = get_state(ctx)
            renderer = state.renderer or _renderer(state.env, "auto")
            renderer.failure(error, warnings=state.warnings, extra_hint=state.hint_extra)
            _github_annotation(state, error)
            raise typer.Exit(int(error.exit_code)) from None
        except BrokenPipeError:
            # The reader of stdout went away (`kwa config show | head -1`): not a bug and
            # nothing to report; whatever was to be done (a send) is done.
            _silence_stdout()
            raise typer.Exit(int(ExitCode.OK)) from None
        except KeyboardInterrupt:
            state = get_state(ctx)
            state.env.stderr.write("kwa: interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:  # a bug: short message, traceback only with --verbose
            if _is_framework_exception(exc):
                raise  # usage errors and exits: Click prints its usage text, exit 2
            state = get_state(ctx)
            renderer = state.renderer or _renderer(state.env, "auto")
            if renderer.verbose:
                import traceback

                renderer.err("".join(traceback.format_exception(exc)))
            internal = KwaError(
                f"internal error: {exc.__class__.__name__}: {exc}",
                hint="This is a bug in kwa; run again with --verbose and report the traceback.",
            )
            renderer.failure(internal)
            _github_annotation(state, internal)
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file descriptor (tests): nothing will flush to it anyway


def _is_framework_exception(exc: BaseException) -> bool:
    # Typer may vendor Click (typer._click) or use Click itself: recognise both by origin.
    module = type(exc).__module__
    return module.startswith(("click", "typer"))


def _github_annotation(state: AppState, error: KwaError) -> None:
    """A failure in GitHub Actions also becomes an ``::error`` annotation: ``title=kwa CODE``, message and hint."""
    message = error.message + (f" (hint: {error.hint})" if error.hint else "")
    (state.renderer or _renderer(state.env, "auto")).github_error(f"kwa {error.code}", message)


app = typer.Typer(
    name="kwa",
    cls=KwaGroup,
    help=(
        "Send WhatsApp replies through Kaleyra's WhatsApp API v2.\n\n"
        "Try it without an account: kwa reply --sandbox --to +919876543210 --context wamid.TEST \"hi\""
    ),
    # Examples one per line in one paragraph (Typer's Rich help keeps single newlines); the last
    # paragraph is not indented, or the help would dedent the examples.
    epilog=(
        "Examples:\n\n"
        "  kwa reply --sandbox --to +919876543210 \"hi\"          # try it, no account\n"
        "  kwa reply --to +919876543210 -c \"$WAMID\" \"Shipped!\"  # a real reply\n"
        "  kwa validate --to +919876543210 \"hello\"              # check, send nothing\n"
        "  kwa config init                                      # save credentials\n"
        "  kwa --install-completion                             # Tab completion\n\n"
        "Exit codes: 0 accepted, 2 usage or validation (nothing sent), 3 auth, 4 rejected, "
        "5 account, 6 rate limited, 7 server error, 8 network (not sent), 9 outcome unknown, "
        "10 batch partly failed, 130 interrupted. 'kwa COMMAND --help' for more."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kwa {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """Send WhatsApp replies through Kaleyra's WhatsApp API v2."""
    get_state(ctx)


_fast_parameters()  # Typer's option coercion without importing Pydantic (see _fastparams)

# The commands, in --help order: name -> (module, attribute). The attribute is a command function
# (help and epilog from the module's HELP and EPILOG) or a Typer app (help from HELP). A module is
# imported only when its command is looked up: `kwa --version` imports none, `kwa validate` one.
_COMMANDS: dict[str, tuple[str, str]] = {
    "reply": ("kaleyra_cli.commands.reply", "reply_command"),
    "validate": ("kaleyra_cli.commands.validate", "validate_command"),
    "sandbox": ("kaleyra_cli.commands.sandbox", "sandbox_app"),
    "config": ("kaleyra_cli.commands.config", "config_app"),
}


class _LazyCommands(MutableMapping[str, Any]):
    """A group's ``commands`` whose names are known up front and whose commands load on first access."""

    def __init__(self, loaded: MutableMapping[str, Any], lazy: dict[str, Callable[[], Any]]) -> None:
        self._loaded = dict(loaded)
        self._lazy = lazy

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self._lazy[name]()  # KeyError for an unknown name, as a dict
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._loaded if name not in self._lazy)

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._loaded


def _loader(name: str) -> Callable[[], Any]:
    def load() -> Any:
        import importlib
        import inspect

        from typer.main import get_command_from_info, get_group_from_info
        from typer.models import CommandInfo, TyperInfo

        module_name, attribute = _COMMANDS[name]
        module = importlib.import_module(module_name)
        target = getattr(module, attribute)
        options: dict[str, Any] = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
        if isinstance(target, typer.Typer):
            if "suggest_commands" in inspect.signature(get_group_from_info).parameters:
                options["suggest_commands"] = app.suggest_commands
            command = get_group_from_info(TyperInfo(target, name=name, help=module.HELP), **options)
        else:
            info = CommandInfo(name, callback=target, help=module.HELP, epilog=getattr(module, "EPILOG", None))
            command = get_command_from_info(info, **options)
        return command

    return load


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    from ._fastparams import skip_httpx_cli

    skip_httpx_cli()
    try:
        app(args=argv, prog_name="kwa", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
