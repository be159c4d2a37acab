"""``kwa reply --batch`` and ``kwa validate --batch``: wiring between the options, the batch engine
(:mod:`kaleyra_cli.batch`) and the renderer (DESIGN sections 5, 7, 8).

Output contract (``--json``): one JSONL line per row processed in this run, exactly as written to
``--results`` (``row``, ``id``, ``to``, ``status``, ``message_id``, ``code``, ``http_status``,
``error``, ``attempts``), then one summary line: ``{"schema_version": 1, "summary": true, "ok",
"exit_code", "rows", "accepted", "failed", "unknown", "invalid", "skipped", "sent", "kept",
"elapsed_s", "rate", "results", "shard", "stopped"}``. Validation failures print the usual error
document (``problems`` located by ``row``/``line``/``column``) and exit 2 with nothing sent.

Exit codes: 0 every row accepted; 10 some were not; 2 usage or validation (nothing sent); 130
Ctrl-C or SIGTERM (in-flight requests finish, the summary is written); and, when the batch stopped
early because every further row would fail the same way, that failure's code (3 credentials or
business number, 5 balance or daily limit, 6 a ``Retry-After`` over 60 s, 8 network down).
"""

from __future__ import annotations

import inspect
import math
import os
import signal
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer

from ..errors import ExitCode, Problem, UsageError, ValidationError
from ..settings import SettingsInput
from . import _options as o

DEFAULT_CONCURRENCY = 8
DEFAULT_RATE = 80.0
#: Problems and warnings printed in human modes (all are counted).
SHOWN_PROBLEMS = 50
SHOWN_WARNINGS = 20
#: From this many rows, sending without --results draws a note.
UNRECORDED_NOTE_ROWS = 1000


def check_batch_only(batch: str | None, **given: Any) -> None:
    """Batch options without ``--batch`` are a usage error (they would be silently ignored)."""
    if batch is not None:
        return
    used = [name for name, value in given.items() if value not in (None, False)]
    if used:
        raise UsageError(f"{', '.join(used)} only apply with --batch FILE")


def check_not_single(**given: Any) -> None:
    """``--batch`` takes its recipients and bodies from the file: single-reply inputs are a usage error."""
    used = [name for name, value in given.items() if value not in (None, False)]
    if "--dry-run" in used:
        raise UsageError("--dry-run does not apply to --batch", hint="kwa validate --batch FILE checks every row and sends nothing.")
    if used:
        raise UsageError(
            f"--batch takes the recipients and bodies from the file: do not combine it with {', '.join(used)}",
            hint="Put per-row values in columns (to, context, body); --ref/--ref1/--ref2/--wa-source/--preview-url "
            "set defaults for every row.",
        )


def _settings(state: Any, settings_input: SettingsInput, *, strict: bool, sandbox_url: str | None, need_key: bool) -> tuple[Any, str | None, list[Problem]]:
    """Resolve settings as a single reply does; returns ``(settings, business number in E.164, problems)``."""
    from ..message import normalize_number
    from ..settings import resolve_settings
    from .reply import use_sandbox_account

    env = state.env
    on_secret = state.renderer.secrets.append if state.renderer is not None else None
    extra = {"on_secret": on_secret} if "on_secret" in inspect.signature(resolve_settings).parameters else {}
    settings = resolve_settings(settings_input, env.environ, stdin=env.stdin, need_key=need_key, **extra)
    if state.renderer is not None and settings.api_key.value:
        state.renderer.secrets.append(settings.api_key.value)
    if sandbox_url is not None:
        use_sandbox_account(settings, sandbox_url)
    problems: list[Problem] = list(settings.warnings)
    wa_number = None
    if settings.wa_number.value:
        wa_number, found = normalize_number(
            str(settings.wa_number.value), "settings.wa_number", label=f"business number (from {settings.wa_number.source})"
        )
        problems += [p.as_error() for p in found] if strict else found
    return settings, wa_number, problems


def _located_warning(rp: Any) -> Problem:
    p = rp.problem
    return Problem(p.path, p.code, f"{rp.where()}: {p.message}", p.hint, "warning")


def _print_warnings(renderer: Any, plan: Any, *, heavy_threshold: int) -> None:
    warnings: list[Problem] = []
    if plan.unknown_columns:
        warnings.append(
            Problem(
                "header",
                "BATCH_UNKNOWN_COLUMNS",
                f"column(s) not used: {', '.join(plan.unknown_columns)}",
                "kwa reads to (or wa_id), body, context, ref, ref1, ref2, preview_url, wa_source, id; other columns are ignored.",
                "warning",
            )
        )
    row_warnings = plan.warnings
    warnings += [_located_warning(rp) for rp in row_warnings[:SHOWN_WARNINGS]]
    renderer.warn(warnings)
    hidden = plan.warning_count - min(len(row_warnings), SHOWN_WARNINGS)
    if hidden > 0 and not renderer.quiet:
        renderer.err(f"kwa: warning: ... and {hidden} more row warnings (kwa validate --batch FILE --json lists them)")
    for to, rows in plan.heavy_recipients[:SHOWN_WARNINGS]:
        renderer.warn(
            [
                Problem(
                    "to",
                    "BATCH_MANY_TO_ONE",
                    f"{rows} rows go to {to}",
                    "WhatsApp limits messages from one business number to one user (pair rate limit, roughly one "
                    "every 6 s): expect 131056 failures in status callbacks. Merge them, or send them later.",
                    "warning",
                )
            ]
        )
    if len(plan.heavy_recipients) > SHOWN_WARNINGS and not renderer.quiet:
        renderer.err(f"kwa: warning: ... and {len(plan.heavy_recipients) - SHOWN_WARNINGS} more recipients with {heavy_threshold} rows or more")


def _validation_failed(state: Any, renderer: Any, error: Any) -> None:
    """Print a batch validation failure (nothing was sent) and exit 2."""
    from ..render import base_document

    dicts = [rp.as_dict() for rp in error.row_problems]
    if renderer.mode == "json":
        renderer.json_out(
            base_document(
                ok=False,
                exit_code=int(ExitCode.USAGE),
                code=error.code,
                message=error.message,
                hint=error.hint,
                rows=error.rows,
                invalid_rows=error.invalid_rows,
                problems=[d for d in dicts if d["severity"] == "error"],
                warnings=[d for d in dicts if d["severity"] == "warning"],
                problems_total=error.error_count,
                warnings_total=error.warning_count,
            )
        )
    else:
        renderer.batch_problems(dicts, total_errors=error.error_count, total_warnings=error.warning_count, shown=SHOWN_PROBLEMS)
        renderer.err(f"kwa: error: {error.message} (hint: {error.hint})")
    _annotate(state, f"{error.message}")
    raise typer.Exit(int(ExitCode.USAGE))


def _annotate(state: Any, message: str) -> None:
    state.renderer.github_error("kwa batch", message)


def _open_source(batch: str, state: Any, fmt: Any, delimiter: str | None) -> Any:
    from ..batch import BatchSource

    return BatchSource(batch, stdin=state.env.stdin, fmt=fmt.value if fmt is not None else None, delimiter=delimiter)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def run_batch(
    state: Any,
    renderer: Any,
    *,
    batch: str,
    fmt: Any,
    delimiter: str | None,
    concurrency: int | None,
    rate: float | None,
    results: Path | None,
    resume: bool,
    retry_unknown: bool,
    force: bool,
    skip_invalid: bool,
    shard: str | None,
    strict: bool,
    preview_url: bool,
    ref: str | None,
    ref1: str | None,
    ref2: str | None,
    wa_source: str | None,
    retries: int,
    retry_unsafe: bool,
    sandbox: bool,
    settings_input: SettingsInput,
    ca_bundle: Path | None = None,
) -> None:
    """``kwa reply --batch``: validate the whole input, then send its rows (DESIGN section 7)."""
    from ..batch import Shard

    if resume and results is None:
        raise UsageError("--resume needs --results PATH: the file that recorded the batch", hint="Pass the same --results as the first run.")
    if retry_unknown and not resume:
        raise UsageError("--retry-unknown applies with --resume", hint="Add --resume --results PATH.")
    if force and resume:
        raise UsageError("--force starts over and --resume continues: give one of them")
    if force and results is None:
        raise UsageError("--force overwrites the --results file: give --results PATH")
    if rate is not None and not math.isfinite(rate):
        raise UsageError(f"--rate {rate} is not a number of messages per second", hint="Use --rate 0 for no limit.")
    if results is not None and batch != "-" and _same_file(Path(batch), results):
        # --force would truncate the input after reading it, --resume would append to it.
        raise UsageError(
            f"--results {results} is the --batch file itself",
            hint="Write the results to another file, e.g. --results orders.results.jsonl.",
        )
    shard_spec = Shard.parse(shard) if shard is not None else None
    o.check_stdin_readers(**{"--batch": batch, "--api-key-file": settings_input.api_key_file})

    if sandbox:
        from ..sandbox import running_sandbox

        emulator: Any = running_sandbox()
    else:
        emulator = nullcontext()
    with emulator as handle:
        _run(
            state,
            renderer,
            sandbox_url=handle.base_url if handle is not None else None,
            batch=batch,
            fmt=fmt,
            delimiter=delimiter,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            rate=DEFAULT_RATE if rate is None else rate,
            results=results,
            resume=resume,
            retry_unknown=retry_unknown,
            force=force,
            skip_invalid=skip_invalid,
            shard=shard_spec,
            strict=strict,
            preview_url=preview_url,
            refs=(ref, ref1, ref2),
            wa_source=wa_source,
            retries=retries,
            retry_unsafe=retry_unsafe,
            settings_input=settings_input,
            ca_bundle=ca_bundle,
        )


def _run(
    state: Any,
    renderer: Any,
    *,
    sandbox_url: str | None,
    batch: str,
    fmt: Any,
    delimiter: str | None,
    concurrency: int,
    rate: float,
    results: Path | None,
    resume: bool,
    retry_unknown: bool,
    force: bool,
    skip_invalid: bool,
    shard: Any,
    strict: bool,
    preview_url: bool,
    refs: tuple[str | None, str | None, str | None],
    wa_source: str | None,
    retries: int,
    retry_unsafe: bool,
    settings_input: SettingsInput,
    ca_bundle: Path | None,
) -> None:
    from ..batch import HEAVY_RECIPIENT_ROWS, BatchSender, BatchValidationError, ResultsJournal, RowDefaults, plan_batch
    from ..client import RetryPolicy, build_headers, reply_url, ssl_context

    verify = ssl_context(ca_bundle, state.env.environ)  # a bad bundle is exit 2 before anything is read
    settings, wa_number, setting_problems = _settings(state, settings_input, strict=strict, sandbox_url=sandbox_url, need_key=True)
    errors = [p for p in setting_problems if p.severity == "error"] + settings.missing()
    if errors:
        raise ValidationError(errors + [p for p in setting_problems if p.severity == "warning"])
    renderer.warn(setting_problems)
    secrets = tuple(s for s in renderer.secrets if s)

    journal = ResultsJournal(results, resume=resume, force=force, secrets=secrets) if results is not None else None
    plan = None
    try:
        previous = None
        if journal is not None:
            journal.open()
            if resume:
                previous = journal.previous()
                if journal.reconciled_unknown:
                    rows = journal.reconciled_unknown
                    shown = ", ".join(map(str, rows[:20])) + (" ..." if len(rows) > 20 else "")
                    renderer.warn(
                        [
                            Problem(
                                "results",
                                "BATCH_IN_FLIGHT_AT_CRASH",
                                f"{len(rows)} row(s) were in flight when the last run stopped; recorded unknown: rows {shown}",
                                "They may have been sent: check kaleyra.io reports; --retry-unknown sends them again.",
                                "warning",
                            )
                        ]
                    )
        defaults = RowDefaults(
            preview_url=preview_url,
            ref=refs[0],
            ref1=refs[1],
            ref2=refs[2],
            wa_source=wa_source if wa_source is not None else settings.wa_source.value,
        )
        with _open_source(batch, state, fmt, delimiter) as source:
            try:
                plan = plan_batch(
                    source,
                    defaults=defaults,
                    strict=strict,
                    shard=shard,
                    previous=previous,
                    retry_unknown=retry_unknown,
                    skip_invalid=skip_invalid,
                )
            except BatchValidationError as error:
                _validation_failed(state, renderer, error)
        _print_warnings(renderer, plan, heavy_threshold=HEAVY_RECIPIENT_ROWS)
        if plan.invalid_to_record:
            renderer.note(f"{plan.invalid_to_record} invalid row(s) will be recorded invalid and not sent (--skip-invalid)")
        if plan.unknown_skipped:
            shown = ", ".join(map(str, plan.unknown_rows)) + (" ..." if plan.unknown_skipped > len(plan.unknown_rows) else "")
            renderer.warn(
                [
                    Problem(
                        "results",
                        "BATCH_UNKNOWN_SKIPPED",
                        f"{plan.unknown_skipped} row(s) of unknown outcome are not sent again: rows {shown}",
                        "They may have been delivered: check kaleyra.io reports, then use --retry-unknown to send them again.",
                        "warning",
                    )
                ]
            )
        if results is None and plan.to_send >= UNRECORDED_NOTE_ROWS:
            renderer.note(
                f"sending {plan.to_send} rows without --results: outcomes are not kept, and an interrupted run "
                "cannot be resumed (pass --results PATH)"
            )
        kept = sum(plan.kept.values())
        if kept and plan.kept.get("accepted"):
            renderer.note(f"resuming: {plan.kept['accepted']} row(s) already accepted are skipped")

        on_line = _stdout_lines(state.env.stdout) if renderer.mode == "json" else None

        sender = BatchSender(
            url=reply_url(settings.base_url.value, settings.sid.value, wa_number or ""),
            headers=build_headers(settings.api_key.value),
            concurrency=concurrency,
            rate=rate,
            policy=RetryPolicy(retries=retries, retry_unsafe=retry_unsafe),
            timeout=settings.timeout.value,
            journal=journal,
            on_line=on_line,
            secrets=secrets,
            verify=verify,
            environ=state.env.environ,
        )
        forced = False
        progress = renderer.batch_progress(plan.to_process)
        restore = _sigterm_as_interrupt()
        try:
            if journal is not None and force and not resume:
                journal.start_over()
            sender.run(plan, progress=lambda stats: progress.update(stats.done, stats.elapsed, stats.counts))
        except KeyboardInterrupt:
            forced = True  # a second Ctrl-C: stop waiting; rows in flight stay in the journal
        finally:
            progress.close()
            restore()
        if journal is not None:
            try:
                journal.finish(clean=not forced and (sender.stopped is None or sender.stopped.code != "RESULTS_UNWRITABLE"))
            except OSError as exc:
                renderer.warn([Problem("results", "RESULTS_UNWRITABLE", f"cannot finish the results file {results}: {exc.strerror or exc}", "Free disk space; --resume reads it as it is.", "warning")])
            journal = None
        _finish(state, renderer, plan, sender, results=results, shard=shard, forced=forced)
    finally:
        if journal is not None:
            try:
                journal.finish(clean=False)
            except OSError:
                pass
        if plan is not None:
            plan.close()


def _stdout_lines(stdout: Any) -> Any:
    """``--json``: each results line on stdout as it is written (JSONL)."""
    from ..render import json_safe

    def write(text: str) -> None:
        text = json_safe(text)  # C1 and U+2028/U+2029 escaped: one line for every line reader
        try:
            stdout.write(text + "\n")
        except UnicodeEncodeError:
            import json

            stdout.write(json.dumps(json.loads(text), ensure_ascii=True) + "\n")
        stdout.flush()

    return write


def _sigterm_as_interrupt() -> Any:
    """SIGTERM (Kubernetes, CI cancel) stops a batch like Ctrl-C; returns the function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


def _finish(state: Any, renderer: Any, plan: Any, sender: Any, *, results: Path | None, shard: Any, forced: bool) -> None:
    from ..batch import STATUSES
    from .reply import write_github_output

    stats = sender.stats
    counts = {status: plan.kept.get(status, 0) + stats.counts.get(status, 0) for status in STATUSES}
    stopped = sender.stopped
    if forced and stopped is None:
        from ..batch import StopReason

        stopped = StopReason("interrupted", "INTERRUPTED", "interrupted twice: rows in flight were left unknown", ExitCode.INTERRUPTED)
    if stopped is not None:
        exit_code = int(stopped.exit_code)
    elif counts["accepted"] == plan.shard_rows:
        exit_code = int(ExitCode.OK)
    else:
        exit_code = int(ExitCode.BATCH_PARTIAL)
    elapsed = stats.elapsed
    summary = {
        "schema_version": 1,
        "summary": True,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "rows": plan.shard_rows,
        **counts,
        "sent": stats.requests,
        "kept": sum(plan.kept.values()),
        "elapsed_s": round(elapsed, 3),
        "rate": round(stats.requests / elapsed, 1) if elapsed > 0 else 0.0,
        "results": str(results) if results is not None else None,
        "shard": str(shard) if shard is not None else None,
        "stopped": None
        if stopped is None
        else {"reason": stopped.kind, "code": stopped.code, "message": stopped.message, "hint": stopped.hint},
    }
    for warning in sender.warnings:
        renderer.warn([Problem("response", "NO_MESSAGE_ID", warning, None, "warning")])
    failures = [f.line() for f in sender.first_failures] if renderer.mode != "json" else []
    renderer.batch_summary(summary, failures)
    if results is None and exit_code != 0 and renderer.mode != "json" and not renderer.quiet:
        renderer.note("rows not accepted were not recorded: pass --results PATH to keep every row's outcome and to --resume")
    write_github_output(
        state.env.environ,
        {name: str(counts[name]) for name in ("accepted", "failed", "unknown", "invalid", "skipped")},
    )
    if exit_code != 0:
        not_accepted = plan.shard_rows - counts["accepted"]
        reason = f" ({stopped.code}: {stopped.message})" if stopped is not None else ""
        _annotate(state, f"{not_accepted} of {plan.shard_rows} rows not accepted{reason}")
        raise typer.Exit(exit_code)


def validate_batch(
    state: Any,
    renderer: Any,
    *,
    batch: str,
    fmt: Any,
    delimiter: str | None,
    strict: bool,
    preview_url: bool,
    ref: str | None,
    ref1: str | None,
    ref2: str | None,
    wa_source: str | None,
    settings_input: SettingsInput,
) -> None:
    """``kwa validate --batch``: every row checked, problems listed by row; nothing is sent."""
    from ..batch import HEAVY_RECIPIENT_ROWS, BatchValidationError, RowDefaults, plan_batch
    from ..render import base_document

    o.check_stdin_readers(**{"--batch": batch})
    settings, _, setting_problems = _settings(state, settings_input, strict=strict, sandbox_url=None, need_key=False)
    setting_errors = [p for p in setting_problems if p.severity == "error"]
    if setting_errors:
        raise ValidationError(setting_problems)
    defaults = RowDefaults(
        preview_url=preview_url,
        ref=ref,
        ref1=ref1,
        ref2=ref2,
        wa_source=wa_source if wa_source is not None else settings.wa_source.value,
    )
    with _open_source(batch, state, fmt, delimiter) as source:
        try:
            plan = plan_batch(source, defaults=defaults, strict=strict)
        except BatchValidationError as error:
            _validation_failed(state, renderer, error)
    try:
        if renderer.mode != "json":
            renderer.warn(setting_problems)
            _print_warnings(renderer, plan, heavy_threshold=HEAVY_RECIPIENT_ROWS)
        renderer.batch_valid(
            base_document(
                ok=True,
                exit_code=0,
                message="valid",
                rows=plan.rows,
                format=plan.fmt,
                delimiter={"\t": "tab"}.get(plan.delimiter or "", plan.delimiter),
                columns=plan.columns,
                unknown_columns=plan.unknown_columns,
                problems=[],
                warnings=[p.as_dict() for p in plan.warnings] + [p.as_dict() for p in setting_problems],
                warnings_total=plan.warning_count,
                heavy_recipients=[{"to": to, "rows": n} for to, n in plan.heavy_recipients],
            )
        )
    finally:
        plan.close()
