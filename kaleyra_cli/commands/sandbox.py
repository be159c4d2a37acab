"""``kwa sandbox``: a local emulator of Kaleyra's endpoint (DESIGN section 6)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _options as o

HELP = "Run a local emulator of Kaleyra's Send Reply endpoint, for trying kwa and testing pipelines."

# Epilogs: examples one per line in one paragraph (Typer's Rich help keeps single newlines), and a
# last line that is not indented, since the help dedents the lines after the first when all are.
sandbox_app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    epilog=(
        "Examples:\n\n"
        "  kwa reply --sandbox --to +919876543210 \"hi\"     # no server needed: one send\n"
        "  kwa sandbox serve --port 8181 &                 # a server for scripts and CI\n"
        "  kwa sandbox numbers                             # the numbers that fail on purpose\n\n"
        "The sandbox listens on loopback only and needs no Kaleyra account."
    ),
)


@sandbox_app.command(
    "serve",
    epilog=(
        "Examples:\n\n"
        "  kwa sandbox serve &                          # prints the exports to use\n"
        "  export KALEYRA_BASE_URL=http://127.0.0.1:8181\n"
        "  kwa reply --to +919876543210 hi\n"
        "  curl -s http://127.0.0.1:8181/_sandbox/messages\n\n"
        "Stop it with Ctrl-C, or SIGTERM (kill %1) from a script."
    ),
)
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep it loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0 = any free port).")] = 8181,
    latency: Annotated[float, typer.Option("--latency", min=0, help="Milliseconds to wait before each answer.", metavar="MS")] = 0,
    fail_rate: Annotated[float, typer.Option("--fail-rate", min=0, max=1, help="Share of requests answered 500 WA500 (0 to 1).", metavar="P")] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for --fail-rate and message ids (reproducible runs).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log one line per request on stderr.")] = False,
) -> None:
    """Serve the emulator until Ctrl-C; prints the sandbox credentials to use."""
    from ..cli import get_state
    from ..sandbox import serve

    state = get_state(ctx)
    renderer = state.make_renderer("plain")
    serve(
        host=host,
        port=port,
        latency_ms=latency,
        fail_rate=fail_rate,
        seed=seed,
        announce=renderer.err,
        access_log=access_log,
    )
    renderer.err("kwa: sandbox stopped")


@sandbox_app.command(
    "numbers",
    epilog=(
        "Examples:\n\n"
        "  kwa sandbox numbers\n"
        "  kwa reply --sandbox --to +12025550110 hi; echo \"exit $?\"   # low balance: exit 5\n"
        "  kwa sandbox numbers --json | jq -r '.[] | \"\\(.number) \\(.code)\"'\n\n"
        "Each number passes kwa's own checks, so the failure comes from the sandbox, as from Kaleyra."
    ),
)
def numbers_command(
    ctx: typer.Context,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
) -> None:
    """List the magic recipient numbers and the failure each one simulates."""
    from ..cli import get_state
    from ..sandbox import MAGIC_NUMBERS

    state = get_state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json))
    rows = [
        {
            "number": m.number,
            "name": m.name,
            "http_status": m.http_status,
            "code": m.code,
            "exit_code": int(m.exit_code),
            "simulates": m.simulates,
        }
        for m in MAGIC_NUMBERS
    ]
    renderer.records(rows, title="Sandbox magic numbers (send to these to get each failure)")
