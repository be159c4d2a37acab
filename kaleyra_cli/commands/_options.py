"""Options shared by ``reply`` and ``validate`` (one definition each, reused as ``Annotated`` types),
and the reading of the body and payload sources. No Rich, no httpx here.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from ..errors import UsageError

CREDENTIALS = "Credentials and endpoint"
MESSAGE = "Message"
OUTPUT = "Output"
SENDING = "Sending"


class OutputMode(str, Enum):
    auto = "auto"
    table = "table"
    json = "json"
    plain = "plain"


BodyArg = Annotated[
    str | None,
    typer.Argument(
        help="The reply text, or '-' to read it from stdin. Use '--' before a text that starts with '-'.",
        metavar="BODY",
        show_default=False,
    ),
]
To = Annotated[
    str | None,
    typer.Option("--to", help="Customer's WhatsApp number in E.164 (+919876543210).", rich_help_panel=MESSAGE, show_default=False),
]
ToWaId = Annotated[
    str | None,
    typer.Option(
        "--to-wa-id",
        help="Recipient as a webhook's wa_id digits (no '+'); kwa adds the '+'. Instead of --to.",
        rich_help_panel=MESSAGE,
        show_default=False,
    ),
]
Context = Annotated[
    str | None,
    typer.Option("--context", "-c", help="wamid of the message you reply to (webhook messages[].id).", rich_help_panel=MESSAGE, show_default=False),
]
Body = Annotated[
    str | None,
    typer.Option("--body", help="The reply text (instead of the argument).", rich_help_panel=MESSAGE, show_default=False),
]
BodyFile = Annotated[
    str | None,
    typer.Option("--body-file", help="Read the reply text from PATH, or '-' for stdin.", metavar="PATH|-", rich_help_panel=MESSAGE, show_default=False),
]
Payload = Annotated[
    Path | None,
    typer.Option("--payload", help="A whole request body as JSON (as in Kaleyra's curl example), instead of --to/body.", metavar="FILE.json", rich_help_panel=MESSAGE, show_default=False),
]
PreviewUrl = Annotated[
    bool,
    typer.Option("--preview-url/--no-preview-url", help="Ask WhatsApp to render a preview of the first URL.", rich_help_panel=MESSAGE),
]
Ref = Annotated[str | None, typer.Option("--ref", help="extra_info.ref (max 255 characters).", rich_help_panel=MESSAGE, show_default=False)]
Ref1 = Annotated[str | None, typer.Option("--ref1", help="extra_info.ref1 (max 255 characters).", rich_help_panel=MESSAGE, show_default=False)]
Ref2 = Annotated[str | None, typer.Option("--ref2", help="extra_info.ref2 (max 255 characters).", rich_help_panel=MESSAGE, show_default=False)]


def complete_wa_source(incomplete: str) -> list[str]:
    """Shell completion for ``--wa-source``: the documented values."""
    from ..message import WA_SOURCES

    return [value for value in WA_SOURCES if value.startswith(incomplete)]


def complete_pod(incomplete: str) -> list[str]:
    """Shell completion for ``--pod``: the pod names."""
    from ..settings import PODS

    return [pod for pod in PODS if pod.startswith(incomplete)]


WaSource = Annotated[
    str | None,
    typer.Option(
        "--wa-source",
        help="extra_info.wa_source (api, zoho, shopify, ...). Config key wa_source.",
        rich_help_panel=MESSAGE,
        show_default=False,
        autocompletion=complete_wa_source,
    ),
]
Strict = Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.", rich_help_panel=MESSAGE)]

From = Annotated[
    str | None,
    typer.Option("--from", help="Business WhatsApp number in E.164 (the URL's number). Env KALEYRA_WA_NUMBER.", rich_help_panel=CREDENTIALS, show_default=False),
]
Sid = Annotated[str | None, typer.Option("--sid", help="Account SID. Env KALEYRA_SID.", rich_help_panel=CREDENTIALS, show_default=False)]
ApiKeyFile = Annotated[
    str | None,
    typer.Option(
        "--api-key-file",
        help="Read the API key from PATH or '-' (stdin). Env KALEYRA_API_KEY. There is no flag taking the key itself.",
        metavar="PATH|-",
        rich_help_panel=CREDENTIALS,
        show_default=False,
    ),
]
Pod = Annotated[
    str | None,
    typer.Option(
        "--pod",
        help="Kaleyra pod: in, sg, eu or na. Env KALEYRA_POD. Default: in.",
        rich_help_panel=CREDENTIALS,
        show_default=False,
        autocompletion=complete_pod,
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", help="API base URL, overrides the pod. Env KALEYRA_BASE_URL.", rich_help_panel=CREDENTIALS, show_default=False),
]
Profile = Annotated[str | None, typer.Option("--profile", help="Config profile. Env KWA_PROFILE.", rich_help_panel=CREDENTIALS, show_default=False)]
Config = Annotated[Path | None, typer.Option("--config", help="Config file. Env KWA_CONFIG.", rich_help_panel=CREDENTIALS, show_default=False)]
EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Read settings from this .env file (default: ./.env if present).", rich_help_panel=CREDENTIALS, show_default=False)]
NoEnvFile = Annotated[bool, typer.Option("--no-env-file", help="Do not read any .env file.", rich_help_panel=CREDENTIALS)]

Output = Annotated[
    OutputMode,
    typer.Option("--output", "-o", help="auto = table on a terminal, plain otherwise.", rich_help_panel=OUTPUT, case_sensitive=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as -o json: one JSON document on stdout.", rich_help_panel=OUTPUT)]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show each request and response (key masked).", rich_help_panel=OUTPUT)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No warnings or notes (never hides the id or errors).", rich_help_panel=OUTPUT)]


def output_mode(output: OutputMode, as_json: bool) -> str:
    """``--json`` is ``-o json``; with another ``-o`` value it is a usage error (DESIGN section 1)."""
    if as_json:
        if output not in (OutputMode.auto, OutputMode.json):
            raise typer.BadParameter(f"--json conflicts with --output {output.value}", param_hint="--json")
        return "json"
    return output.value


def _strip_one_newline(text: str) -> str:
    # As $(...) would, but exactly one: a body may end in blank lines on purpose.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def read_text_source(spec: str, stdin: TextIO, what: str) -> str:
    """Read ``spec`` (a path or ``-`` for stdin) as UTF-8 text. Raises :class:`UsageError`."""
    from .._limits import read_stream_limited, read_text_limited

    if spec == "-":
        try:
            return read_stream_limited(stdin)
        except UnicodeDecodeError:
            raise UsageError(f"{what} from stdin is not UTF-8 text", hint="Convert it to UTF-8.") from None
        except OSError as exc:
            raise UsageError(f"cannot read {what} from stdin: {exc.strerror or exc}", hint="Pipe in only the text.") from None
    try:
        return read_text_limited(spec)
    except UnicodeDecodeError:
        raise UsageError(f"{what} file {spec} is not UTF-8 text", hint="Convert it to UTF-8 (iconv -t UTF-8).") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {spec}: {exc.strerror or exc}", hint="Check the path.") from None


def resolve_body(*, argument: str | None, body: str | None, body_file: str | None, stdin: TextIO) -> str | None:
    """The reply text from exactly one source: the argument (``-`` = stdin), ``--body`` or ``--body-file``.

    A text read from a file or stdin loses exactly one trailing newline. Two sources are a
    usage error. Returns ``None`` when no source was given.
    """
    sources = [name for name, value in (("BODY argument", argument), ("--body", body), ("--body-file", body_file)) if value is not None]
    if len(sources) > 1:
        raise UsageError(f"the body is given twice ({' and '.join(sources)})", hint="Give exactly one of: the BODY argument, --body, --body-file.")
    if argument == "-":
        return _strip_one_newline(read_text_source("-", stdin, "the body"))
    if argument is not None:
        return argument
    if body is not None:
        return body
    if body_file is not None:
        return _strip_one_newline(read_text_source(body_file, stdin, "the body"))
    return None


def check_stdin_readers(**readers: str | None) -> None:
    """At most one option may read stdin (``-``): two readers would split one stream."""
    using = [name for name, value in readers.items() if value == "-"]
    if len(using) > 1:
        raise UsageError(f"{' and '.join(using)} both read stdin", hint="Only one input can come from stdin; use a file for the other.")


def read_payload(path: Path, stdin: TextIO) -> Any:
    """Parse ``--payload FILE.json`` (``-`` = stdin). Raises :class:`UsageError` naming line and column."""
    text = read_text_source(str(path), stdin, "the payload")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"payload {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="Check the file against Kaleyra's curl example (kwa reply --dry-run prints a valid body).",
        ) from None


# -- batches (kwa reply --batch, kwa validate --batch; DESIGN section 7) ------------------------
BATCH = "Batch"


class BatchFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


Batch = Annotated[
    str | None,
    typer.Option(
        "--batch",
        help="Send one reply per row of a CSV or JSONL file ('-' = stdin). Columns: to (or wa_id), body, context, ref, ref1, ref2, preview_url, id.",
        metavar="FILE|-",
        rich_help_panel=BATCH,
        show_default=False,
    ),
]
BatchFormatOpt = Annotated[
    BatchFormat | None,
    typer.Option("--format", help="Input format. Default: by extension (.csv .tsv .jsonl .ndjson), else detected.", rich_help_panel=BATCH, case_sensitive=False, show_default=False),
]
Delimiter = Annotated[
    str | None,
    typer.Option("--delimiter", help="CSV separator: ',', ';', 'tab' or '|'. Default: detected from the header line.", rich_help_panel=BATCH, show_default=False),
]
Concurrency = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, max=256, help="Requests in flight at once. Default: 8.", rich_help_panel=BATCH, show_default=False),
]
Rate = Annotated[
    float | None,
    typer.Option("--rate", min=0, help="Messages per second across all workers; 0 = unlimited. Default: 80 (Meta's default per-number throughput).", metavar="R", rich_help_panel=BATCH, show_default=False),
]
Results = Annotated[
    Path | None,
    typer.Option("--results", help="Write one JSONL line per row (status, message_id, error) to PATH, flushed as it goes.", metavar="PATH", rich_help_panel=BATCH, show_default=False),
]
Resume = Annotated[
    bool,
    typer.Option("--resume", help="Continue the batch recorded in --results: skip accepted rows (and rows of unknown outcome).", rich_help_panel=BATCH),
]
RetryUnknown = Annotated[
    bool,
    typer.Option("--retry-unknown", help="With --resume, also send rows whose outcome is unknown (they may arrive twice).", rich_help_panel=BATCH, show_default=False),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Overwrite an existing --results file and start over.", rich_help_panel=BATCH, show_default=False),
]
SkipInvalid = Annotated[
    bool,
    typer.Option("--skip-invalid", help="Send the valid rows even if others have errors; those are recorded invalid.", rich_help_panel=BATCH, show_default=False),
]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", help="Send only rows whose 0-based index mod N is K-1 (N CI jobs or indexed Jobs split one file).", metavar="K/N", rich_help_panel=BATCH, show_default=False),
]
