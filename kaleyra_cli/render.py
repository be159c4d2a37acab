"""Table, plain and JSON output, and secret masking (DESIGN section 5).

The only module that draws Rich tables; Rich is imported only when a table or panel is
drawn, never for plain or JSON output. Every string that leaves through here is scrubbed
of the API key (servers can echo it back) and, in human modes, of control characters and
ANSI escapes (a server message must not drive the terminal).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import ApiError, ExitCode, KwaError, Problem, SendError, ValidationError, redact

SCHEMA_VERSION = 1
OUTPUT_MODES = ("auto", "table", "json", "plain")

# C0/C1 controls and DEL; ESC starts ANSI sequences. Tab and newline are kept where text is multi-line.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def neutralize(text: str, *, keep_newlines: bool = False) -> str:
    """Make untrusted text safe for a terminal: control characters shown as ``\\xNN``/``\\n``."""

    def escape(match: re.Match[str]) -> str:
        return f"\\x{ord(match.group()):02x}"

    if not keep_newlines:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return _CONTROL_RE.sub(escape, text)


_JSON_RAW_CONTROL_RE = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def json_safe(text: str) -> str:
    """JSON text with DEL, C1 controls and U+2028/U+2029 as ``\\u`` escapes: the same JSON value,
    nothing a terminal acts on, and one line for every line reader.

    ``json.dumps(..., ensure_ascii=False)`` escapes only C0 controls; DEL and C1 (``\\x9b`` is
    a CSI on some terminals, ``\\x85`` a line break to ``str.splitlines``) would pass raw, as
    would the Unicode line and paragraph separators. They can only occur inside strings, so
    escaping them keeps the document equal.
    """
    return _JSON_RAW_CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _discard_stdout() -> None:
    """After stdout failed, point file descriptor 1 at /dev/null so the final flush at exit
    cannot fail again (and print "Exception ignored" noise)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests): nothing will be flushed to it


def write_text(stream: TextIO, text: str) -> None:
    """Write ``text``; a stream that cannot encode a character (ASCII, cp1252) gets an escape instead of a crash."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))


@dataclass
class Environment:
    """The streams and facts output depends on, injectable for tests (httpie's ``Environment``)."""

    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    stdout_isatty: bool
    stderr_isatty: bool
    stdin_isatty: bool
    environ: Mapping[str, str]

    @classmethod
    def from_system(cls) -> Environment:
        def isatty(stream: Any) -> bool:
            try:
                return bool(stream.isatty())
            except (AttributeError, ValueError):
                return False

        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin=sys.stdin,
            stdout_isatty=isatty(sys.stdout),
            stderr_isatty=isatty(sys.stderr),
            stdin_isatty=isatty(sys.stdin),
            environ=os.environ,
        )

    @property
    def no_color(self) -> bool:
        return bool(self.environ.get("NO_COLOR"))

    @property
    def in_ci(self) -> bool:
        """``CI`` set to anything but ``0``/``false``/``no``: no prompts, no progress bars (DESIGN section 8)."""
        value = self.environ.get("CI", "").strip().lower()
        return bool(value) and value not in ("0", "false", "no")


def base_document(**values: Any) -> dict[str, Any]:
    """The versioned JSON envelope: every key present (``null`` when not applicable)."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": False,
        "exit_code": int(ExitCode.OK),
        "http_status": None,
        "code": None,
        "message": None,
        "message_id": None,
        "hint": None,
        "error": None,
        "attempts": 0,
        "warnings": [],
    }
    doc.update(values)
    return doc


def error_document(error: KwaError, warnings: list[Problem] | None = None) -> dict[str, Any]:
    """JSON document for a failure: Kaleyra's code and error object kept beside kwa's exit code."""
    doc = base_document(
        ok=False,
        exit_code=int(error.exit_code),
        code=error.code,
        message=error.message,
        hint=error.hint,
        attempts=getattr(error, "attempts", 0),
        warnings=[p.as_dict() for p in warnings or []],
    )
    if isinstance(error, ApiError):
        doc["http_status"] = error.http_status
        doc["error"] = error.error
    if isinstance(error, ValidationError):
        doc["problems"] = [p.as_dict() for p in error.problems if p.severity == "error"]
        doc["warnings"] = [p.as_dict() for p in error.problems if p.severity == "warning"]
    return doc


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


@dataclass
class Renderer:
    """Writes results for one command in one output mode. Data → stdout, messages → stderr."""

    env: Environment
    mode: str = "auto"
    quiet: bool = False
    verbose: bool = False
    secrets: list[str] = field(default_factory=list)
    _stdout_failed: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode == "auto":
            self.mode = "table" if self.env.stdout_isatty else "plain"

    # -- low level -------------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in self.secrets if s)

    def out(self, text: str) -> None:
        self._line(self.env.stdout, text)

    def err(self, text: str) -> None:
        self._line(self.env.stderr, text)

    def _line(self, stream: TextIO, text: str) -> None:
        # Last line of defence: whatever a caller passes, no key and no control character
        # (ANSI escape, CR, BEL...) reaches the terminal; newlines of multi-line text stay.
        self._put(stream, neutralize(redact(text, self._secrets()), keep_newlines=True) + "\n")

    def _put(self, stream: TextIO, text: str) -> None:
        """Write and flush. stdout that fails (a full disk, EIO) is reported on stderr with what it
        should have shown (the message_id of a reply already sent is never lost); the exit code
        stays the outcome's. A closed pipe is left to the CLI layer (exit quietly)."""
        try:
            write_text(stream, text)
            stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            if stream is not self.env.stdout:
                return  # stderr itself failed: nowhere left to say anything
            _discard_stdout()
            if not self._stdout_failed:
                self._stdout_failed = True
                self._put(self.env.stderr, f"kwa: error: cannot write to stdout ({exc.strerror or exc}); its output follows on stderr\n")
            self._put(self.env.stderr, text)

    def _text(self, value: Any, style: str = "") -> Any:
        """A Rich ``Text`` cell of untrusted text: never markup, key masked before Rich can wrap it, controls shown."""
        from rich.text import Text

        return Text(neutralize(redact("" if value is None else str(value), self._secrets())), style=style)

    def json_out(self, document: Mapping[str, Any]) -> None:
        self._json_line(dict(document))

    def _json_line(self, value: Any) -> None:
        scrubbed = _scrub(value, self._secrets())
        text = json_safe(json.dumps(scrubbed, ensure_ascii=False))
        encoding = getattr(self.env.stdout, "encoding", None) or "utf-8"
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):  # an ASCII stdout, or a lone surrogate from a server
            text = json.dumps(scrubbed, ensure_ascii=True)
        self._put(self.env.stdout, text + "\n")

    def _console(self, stream: TextIO, isatty: bool) -> Any:
        from rich.console import Console

        return Console(
            file=stream,
            force_terminal=isatty,
            no_color=self.env.no_color or not isatty,
            highlight=False,
            soft_wrap=not isatty,
            emoji=False,
            markup=False,
        )

    def _print_rich(self, renderable: Any, *, stderr: bool = False) -> None:
        stream = self.env.stderr if stderr else self.env.stdout
        isatty = self.env.stderr_isatty if stderr else self.env.stdout_isatty
        # Render to text first so the key is scrubbed from whatever Rich produced.
        import io

        from rich.console import Console

        probe = self._console(stream, isatty)
        width = probe.width
        if not isatty:
            # A pipe or a file: never wrap or cut (a 78-character wamid stays on one line).
            width = max(width, Console(file=io.StringIO(), width=100_000, legacy_windows=False).measure(renderable).maximum)
        buffer = io.StringIO()
        console = Console(
            file=buffer,
            force_terminal=isatty,
            color_system=probe.color_system,
            no_color=probe.no_color,
            width=width,
            highlight=False,
            emoji=False,
            markup=False,
            legacy_windows=False,
        )
        console.print(renderable)
        self._put(stream, redact(buffer.getvalue(), self._secrets()))

    # -- messages -------------------------------------------------------------------------
    def warn(self, problems: list[Problem]) -> None:
        """Warnings on stderr (in every mode; ``--quiet`` hides them)."""
        if self.quiet:
            return
        for p in problems:
            hint = f" ({neutralize(p.hint)})" if p.hint else ""
            self.err(f"kwa: warning: {neutralize(p.message)}{hint}")

    def github_error(self, title: str, message: str) -> None:
        """In GitHub Actions (``GITHUB_ACTIONS=true``) print an ``::error title=...::message`` workflow
        command on stderr, which the runner shows as an annotation (DESIGN section 8). Newlines and
        ``%`` are escaped as the runner expects, so server text cannot start another command."""
        if self.env.environ.get("GITHUB_ACTIONS") != "true":
            return

        def escape(text: str, *, property_value: bool = False) -> str:
            text = neutralize(text, keep_newlines=True).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            return text.replace(":", "%3A").replace(",", "%2C") if property_value else text

        self.err(f"::error title={escape(title, property_value=True)}::{escape(message)}")

    def note(self, text: str) -> None:
        if not self.quiet:
            self.err(f"kwa: {text}")

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """``--verbose``: each attempt's request and response on stderr, curl -v style, key masked."""
        if not self.verbose:
            return
        if kind == "request":
            self.err(f"> {data['method']} {data['url']}")
            for name, value in data["headers"].items():
                self.err(f"> {name}: {value}")
            self.err(">")
            self.err("> " + neutralize(data["body"].decode("utf-8", "replace")))
        elif kind == "response":
            self.err(f"< HTTP {data['status']}")
            for name, value in data["headers"].items():
                self.err(f"< {neutralize(name)}: {neutralize(value)}")
            self.err("<")
            # Mask before cutting: a key straddling the cut would otherwise print half of it.
            body = redact(data["body"].decode("utf-8", "replace"), self._secrets())
            self.err("< " + neutralize(body[:2000]))
        elif kind == "retry":
            self.err(f"* attempt {data['attempt']} failed ({neutralize(data['reason'])}); retrying in {data['wait']:.1f} s")

    # -- results --------------------------------------------------------------------------
    def accepted(self, result: Any, *, to: str, warnings: list[Problem], repeat: bool = False) -> None:
        """An accepted reply: the ``message_id`` alone (plain), a table, or the JSON document."""
        if self.mode == "json":
            self.json_out(
                base_document(
                    ok=True,
                    exit_code=0,
                    http_status=result.http_status or None,
                    code=result.code,
                    message=result.message,
                    message_id=result.message_id,
                    attempts=result.attempts,
                    warnings=[p.as_dict() for p in warnings],
                    repeat=repeat,
                )
            )
            for w in result.warnings:
                self.err(f"kwa: warning: {neutralize(w)}")
            return
        for w in result.warnings:
            if not self.quiet:
                self.err(f"kwa: warning: {neutralize(w)}")
        if self.mode == "plain":
            if result.message_id:
                self.out(result.message_id)
            return
        if repeat:
            status = "accepted earlier (repeat: nothing sent)"
        else:
            status = f"accepted (HTTP {result.http_status}" + (f" {result.code})" if result.code else ")")
        self._fields(
            "Reply accepted" + (" (repeat: nothing sent)" if repeat else ""),
            [("message_id", result.message_id or "(none returned)"), ("to", to), ("status", status), ("attempts", result.attempts)],
        )

    def _fields(self, title: str, pairs: list[tuple[str, Any]]) -> None:
        """A two-column field/value table on stdout; every value printed as text, never markup."""
        from rich.table import Table

        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for name, value in pairs:
            table.add_row(self._text(name), self._text(str(value)))
        self._print_rich(table)

    def failure(self, error: KwaError, *, warnings: list[Problem] | None = None, extra_hint: str | None = None) -> None:
        """An error: a panel on stderr (table), one line on stderr (plain), or the JSON document on stdout."""
        if extra_hint:
            error.hint = f"{error.hint} {extra_hint}" if error.hint else extra_hint
        if self.mode == "json":
            self.json_out(error_document(error, warnings))
            return
        if isinstance(error, ValidationError):
            self.problems(error.problems)
            return
        status = f"HTTP {error.http_status} " if isinstance(error, ApiError) else ""
        attempts = getattr(error, "attempts", 0)
        tries = f" after {attempts} attempts" if isinstance(error, SendError) and attempts > 1 else ""
        if self.mode == "table":
            from rich.panel import Panel
            from rich.text import Text

            text = Text()
            text.append_text(self._text(f"{status}{error.code}{tries}", style="bold"))
            text.append("\n")
            text.append_text(self._text(error.message))
            if error.hint:
                text.append("\n")
                text.append_text(self._text(error.hint, style="dim" if not self.env.no_color else ""))
            self._print_rich(Panel(text, title="kwa: error", title_align="left", border_style="red"), stderr=True)
            return
        line = f"kwa: error: {status}{neutralize(error.code)}: {neutralize(error.message)}{tries}"
        if error.hint:
            line += f" (hint: {neutralize(error.hint)})"
        self.err(line)

    def problems(self, problems: list[Problem]) -> None:
        """Validation problems (human modes): a table on stderr (table) or one line each (plain)."""
        errors = [p for p in problems if p.severity == "error"]
        warnings = [p for p in problems if p.severity == "warning"]
        if self.mode == "table":
            from rich.table import Table

            table = Table(title=f"{len(errors)} error(s), {len(warnings)} warning(s)", title_justify="left")
            for column in ("severity", "path", "code", "message", "hint"):
                table.add_column(column, overflow="fold")
            for p in errors + warnings:
                table.add_row(*(self._text(cell) for cell in (p.severity, p.path, p.code, p.message, p.hint)))
            self._print_rich(table, stderr=True)
            return
        for p in errors + (warnings if not self.quiet else []):
            hint = f" (hint: {neutralize(p.hint)})" if p.hint else ""
            self.err(f"kwa: {p.severity}: {p.path}: {p.code}: {neutralize(p.message)}{hint}")

    def valid(self, problems: list[Problem], summary: dict[str, Any]) -> None:
        """``kwa validate`` success: ``valid`` (plain), a table, or the JSON document."""
        if self.mode == "json":
            self.json_out(
                base_document(ok=True, exit_code=0, message="valid", warnings=[p.as_dict() for p in problems], problems=[], **summary)
            )
            return
        self.warn(problems)
        if self.mode == "plain":
            self.out("valid")
            return
        self._fields("valid: nothing was sent", list(summary.get("request", {}).items()))

    def records(self, rows: list[dict[str, Any]], *, title: str) -> None:
        """A list of flat records: a JSON array (json), tab-separated lines (plain), or a table."""
        if self.mode == "json":
            self._json_line(rows)
            return
        if self.mode == "plain":
            for row in rows:
                self.out("\t".join("" if v is None else neutralize(str(v)) for v in row.values()))
            return
        from rich.table import Table

        table = Table(title=neutralize(title), title_justify="left")  # a title may hold a profile name or a path
        columns = list(rows[0]) if rows else []
        for index, column in enumerate(columns):
            # Ids and numbers stay whole on one line; only the last (prose) column wraps.
            table.add_column(column, overflow="fold", no_wrap=index < len(columns) - 1)
        for row in rows:
            table.add_row(*(self._text(v) for v in row.values()))
        self._print_rich(table)

    def dry_run(self, request: dict[str, Any], warnings: list[Problem]) -> None:
        """``--dry-run``: the exact request (URL, headers with the key masked, body); nothing was sent."""
        if self.mode == "json":
            self.json_out(
                base_document(ok=True, exit_code=0, dry_run=True, request=request, warnings=[p.as_dict() for p in warnings])
            )
        elif self.mode == "plain":
            self.out(f"{request['method']} {request['url']}")
            for name, value in request["headers"].items():
                self.out(f"{name}: {value}")
            self.out("")
            self.out(json_safe(request["body"]))
        else:
            from rich.text import Text

            pretty = json_safe(json.dumps(json.loads(request["body"]), ensure_ascii=False, indent=2))
            lines = [f"{request['method']} {request['url']}"]
            lines += [f"{name}: {value}" for name, value in request["headers"].items()]
            text = redact("\n".join(lines) + "\n\n" + pretty, self._secrets())
            # No wrapping: the URL and headers must stay copyable as single lines.
            self._print_rich(Text(neutralize(text, keep_newlines=True), no_wrap=True, overflow="ignore"))
        self.note("dry run: nothing was sent")


    # -- settings (kwa config) -------------------------------------------------------------
    def settings_table(self, title: str, rows: list[tuple[str, str, str, list[tuple[str, str]], str | None]]) -> None:
        """``kwa config show`` as a table: setting, value, source; under each setting the values it
        overrode (marked "overridden") and a note. ``rows``: ``(name, value, source, [(value, source)], note)``,
        already masked; every cell is printed as text, never markup."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=neutralize(title), title_justify="left")  # a title may hold a profile name or a path
        for column in ("setting", "value", "source"):
            table.add_column(column, overflow="fold")
        for name, value, source, overridden, note in rows:
            table.add_row(Text(name, style="bold"), Text(neutralize(value)), Text(neutralize(source)))
            for old_value, old_source in overridden:
                table.add_row("", Text(neutralize(old_value), style="dim strike"), Text(f"overridden: {neutralize(old_source)}", style="dim"))
            if note:
                table.add_row("", "", Text(neutralize(note), style="dim"))
        self._print_rich(table)

    def list_table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        """A plain Rich table of text cells on stdout (``kwa config profiles``); cells are never markup."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=neutralize(title), title_justify="left")  # a title may hold a profile name or a path
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(neutralize(cell)) for cell in row))
        self._print_rich(table)

    # -- batches (kwa reply --batch, kwa validate --batch) -----------------------------------
    def batch_problems(self, problems: list[dict[str, Any]], *, total_errors: int, total_warnings: int, shown: int = 50) -> None:
        """Located batch problems (human modes): a table on stderr (table) or one line each (plain).

        ``problems`` are dicts with ``row``, ``line``, ``column``, ``severity``, ``code``, ``message``,
        ``hint``; at most ``shown`` are printed, then how many more there are.
        """
        errors = [p for p in problems if p["severity"] == "error"]
        warnings = [] if self.quiet else [p for p in problems if p["severity"] == "warning"]
        listed = (errors + warnings)[:shown]
        hidden = total_errors + (0 if self.quiet else total_warnings) - len(listed)
        if self.mode == "table":
            from rich.table import Table
            from rich.text import Text

            table = Table(title=f"{total_errors} error(s), {total_warnings} warning(s): nothing was sent", title_justify="left")
            for column in ("row", "line", "column", "severity", "code", "message", "hint"):
                table.add_column(column, overflow="fold", no_wrap=column in ("row", "line"))
            for p in listed:
                table.add_row(
                    "" if p["row"] is None else str(p["row"]),
                    "" if p["line"] is None else str(p["line"]),
                    Text(neutralize(p["column"] or "")),
                    p["severity"],
                    p["code"],
                    Text(neutralize(p["message"])),
                    Text(neutralize(p["hint"] or "")),
                )
            if hidden > 0:
                table.caption = f"... and {hidden} more not shown"
            self._print_rich(table, stderr=True)
            return
        for p in listed:
            self.err(f"kwa: {p['severity']}: {_where(p)}: {p['code']}: {neutralize(p['message'])}" + (f" (hint: {neutralize(p['hint'])})" if p["hint"] else ""))
        if hidden > 0:
            self.err(f"kwa: ... and {hidden} more not shown")

    def batch_progress(self, total: int, *, title: str = "sending") -> Any:
        """A live progress bar on stderr (done/total, msgs/s, ETA, counts per status) when stderr is a
        terminal and ``CI`` is unset; otherwise an object whose ``update``/``close`` do nothing.
        ``update(done, elapsed_seconds, counts)`` may be called often: Rich redraws at most 8 times a second."""
        if not self.env.stderr_isatty or self.env.in_ci or self.quiet or total <= 0:
            return _NoProgress()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(file=self.env.stderr, force_terminal=True, no_color=self.env.no_color, highlight=False, emoji=False)
        progress = Progress(
            TextColumn(title),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}", markup=False),
            console=console,
            refresh_per_second=8,
            transient=False,
        )
        return _RichProgress(progress, total)

    def batch_summary(self, summary: dict[str, Any], failures: list[dict[str, Any]]) -> None:
        """The end of a batch: the summary JSON line (json), one line on stderr (plain), or tables on
        stdout (table). ``failures`` are the first results lines that were not ``accepted``."""
        if self.mode == "json":
            self.json_out(summary)
            return
        counts = ", ".join(f"{summary[s]} {s}" for s in ("accepted", "failed", "unknown", "invalid", "skipped"))
        timing = f"{summary['sent']} sent in {summary['elapsed_s']:.1f} s ({summary['rate']:.0f} msg/s)"
        stopped = summary.get("stopped")
        if self.mode == "plain":
            for f in failures:
                self.err(_failure_line(f))
            line = f"kwa: batch: {summary['rows']} rows: {counts}; {timing}"
            if summary.get("kept"):
                line += f"; {summary['kept']} kept from an earlier run"
            if summary.get("results"):
                line += f"; results: {summary['results']}"
            self.err(line)
            if stopped:
                self.err(f"kwa: stopped: {stopped['code']}: {neutralize(stopped['message'])}" + (f" (hint: {neutralize(stopped['hint'])})" if stopped.get("hint") else ""))
            return
        from rich.table import Table
        from rich.text import Text

        title = "Batch finished" if not stopped else f"Batch stopped ({stopped['code']})"
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        table.add_row("rows", str(summary["rows"]) + (f" (shard {summary['shard']})" if summary.get("shard") else ""))
        for status in ("accepted", "failed", "unknown", "invalid", "skipped"):
            table.add_row(status, str(summary[status]))
        table.add_row("sent this run", str(summary["sent"]))
        if summary.get("kept"):
            table.add_row("kept from an earlier run", str(summary["kept"]))
        table.add_row("elapsed", f"{summary['elapsed_s']:.1f} s")
        table.add_row("rate", f"{summary['rate']:.0f} msg/s")
        table.add_row("results", Text(summary.get("results") or "(no --results file)"))
        if stopped:
            table.add_row("stopped", Text(neutralize(f"{stopped['code']}: {stopped['message']}" + (f" ({stopped['hint']})" if stopped.get("hint") else ""))))
        self._print_rich(table)
        if failures:
            rows = Table(title="Rows not accepted (first ones)", title_justify="left")
            for column in ("row", "id", "to", "status", "code", "error"):
                rows.add_column(column, overflow="fold", no_wrap=column in ("row", "status"))
            for f in failures:
                rows.add_row(
                    str(f["row"]),
                    Text(neutralize(str(f["id"] or ""))),
                    Text(neutralize(str(f["to"] or ""))),
                    f["status"],
                    Text(f["code"] or ""),
                    Text(neutralize(f["error"] or "")),
                )
            self._print_rich(rows)

    def batch_valid(self, summary: dict[str, Any]) -> None:
        """``kwa validate --batch`` without errors: ``valid`` (plain), a table, or the JSON document."""
        if self.mode == "json":
            self.json_out(summary)
            return
        if self.mode == "plain":
            self.out("valid")
            return
        pairs = [
            (key, ", ".join(value) if isinstance(value, list) else value)
            for key in ("rows", "format", "delimiter", "columns", "warnings_total")
            if (value := summary.get(key)) is not None
        ]
        self._fields("valid: nothing was sent", pairs)


def _where(p: Mapping[str, Any]) -> str:
    parts = []
    if p.get("row") is not None:
        parts.append(f"row {p['row']}")
    if p.get("line") is not None:
        parts.append(f"line {p['line']}")
    if p.get("column"):
        parts.append(neutralize(str(p["column"])))
    return ", ".join(parts) or "file"


def _failure_line(f: Mapping[str, Any]) -> str:
    ident = f" id {neutralize(str(f['id']))}" if f.get("id") else ""
    to = f" to {neutralize(str(f['to']))}" if f.get("to") else ""
    code = f" {f['code']}" if f.get("code") else ""
    return f"kwa: row {f['row']}{ident}{to}: {f['status']}{code}: {neutralize(f.get('error') or '')}"


class _NoProgress:
    def update(self, done: int, elapsed: float, counts: Mapping[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class _RichProgress:
    def __init__(self, progress: Any, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("batch", total=total, rate="", counts="")
        progress.start()

    def update(self, done: int, elapsed: float, counts: Mapping[str, int]) -> None:
        rate = f"{done / elapsed:.0f} msg/s" if elapsed > 0 else ""
        shown = " ".join(f"{name} {counts.get(name, 0)}" for name in ("accepted", "failed", "unknown") if counts.get(name) or name == "accepted")
        self._progress.update(self._task, completed=done, rate=rate, counts=shown)

    def close(self) -> None:
        self._progress.stop()
