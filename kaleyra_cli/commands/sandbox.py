"""``kwa sandbox``: a local emulator of Kaleyra's endpoint (DESIGN section 6)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _options as o

HELP = "Run a local emulator of Kaleyra's Send Reply endpoint, for trying kwa and testing pipelines."

sandbox_app = typer.Typer(help=HELP, no_args_is_help=True)


@sandbox_app.command(
    "serve",
    epilog=(
        "Examples:\n\n"
        "  kwa sandbox serve &\n\n"
        "  export KALEYRA_BASE_URL=http://127.0.0.1:8181 (and the printed KALEYRA_SID, KALEYRA_API_KEY, KALEYRA_WA_NUMBER)\n\n"
        "  kwa reply --to +919876543210 hi\n\n"
        "  curl -s http://127.0.0.1:8181/_sandbox/messages"
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


@sandbox_app.command("numbers")
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
