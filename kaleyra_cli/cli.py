"""The root Typer app: global options, command registration, and the one place that turns
errors into messages and exit codes (DESIGN section 9).

Importing this module must stay cheap: no httpx, phonenumbers, uvicorn or Rich tables here;
commands import what they need when they run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ._version import __version__
from .errors import ExitCode, KwaError, Problem
from .render import Environment, Renderer


@dataclass
class AppState:
    """Per-invocation application object kept in ``ctx.obj`` (hatch's pattern): no module globals."""

    env: Environment = field(default_factory=Environment.from_system)
    renderer: Renderer | None = None
    warnings: list[Problem] = field(default_factory=list)
    hint_extra: str | None = None

    def make_renderer(self, mode: str, *, quiet: bool = False, verbose: bool = False) -> Renderer:
        self.renderer = Renderer(self.env, mode, quiet=quiet, verbose=verbose)
        return self.renderer


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


class KwaGroup(TyperGroup):
    """Runs a subcommand and maps what escapes it to output and an exit code (DESIGN section 5)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KwaError as error:
            state = get_state(ctx)
            renderer = state.renderer or Renderer(state.env, "auto")
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
            renderer = state.renderer or Renderer(state.env, "auto")
            if renderer.verbose:
                import traceback

                renderer.err("".join(traceback.format_exception(exc)))
            internal = KwaError(
                f"internal error: {exc.__class__.__name__}: {exc}",
                hint="This is a bug in kwa; run again with --verbose and report the traceback.",
            )
            renderer.failure(internal)
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
    if state.env.environ.get("GITHUB_ACTIONS") == "true":
        message = error.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        renderer = state.renderer or Renderer(state.env, "auto")
        renderer.err(f"::error title=kwa {error.code}::{message}")


app = typer.Typer(
    name="kwa",
    cls=KwaGroup,
    help=(
        "Send WhatsApp replies through Kaleyra's WhatsApp API v2.\n\n"
        "Try it without an account: kwa reply --sandbox --to +919876543210 --context wamid.TEST \"hi\""
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


def _register() -> None:
    from .commands import reply, sandbox, validate

    app.command("reply", help=reply.HELP, epilog=reply.EPILOG, no_args_is_help=False)(reply.reply_command)
    app.command("validate", help=validate.HELP, epilog=validate.EPILOG)(validate.validate_command)
    app.add_typer(sandbox.sandbox_app, name="sandbox", help=sandbox.HELP)

    from .commands.config import HELP as CONFIG_HELP, config_app

    app.add_typer(config_app, name="config", help=CONFIG_HELP)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        app(args=argv, prog_name="kwa", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
