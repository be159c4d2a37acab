"""``kwa reply``: build, validate and send one reply (DESIGN sections 1, 3-5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ApiError, ExitCode, Problem, ValidationError
from ..settings import Settings, SettingsInput
from . import _options as o

HELP = "Send one WhatsApp reply through Kaleyra and print the accepted message_id."
EPILOG = (
    "Examples:\n\n"
    "  kwa reply --sandbox --to +919876543210 --context wamid.TEST \"hi\"\n\n"
    "  kwa reply --to +919876543210 -c \"$WAMID\" --json \"Your order shipped\" | jq -r .message_id\n\n"
    "  echo \"multi-line text\" | kwa reply --to +919876543210 -\n\n"
    "  kwa reply --to +919876543210 -- \"-1 item left\"\n\n"
    "Exit codes: 0 accepted, 2 usage/validation (nothing sent), 3 auth, 4 rejected, 5 account, "
    "6 rate limited, 7 server error, 8 network (not sent), 9 outcome unknown."
)


@dataclass
class Prepared:
    """The outcome of reading and checking every input, before anything is sent."""

    request: Any  # ReplyRequest | None
    problems: list[Problem]
    settings: Settings
    wa_number: str | None
    verify: Any = True  # the TLS context to send with (ssl_context: --ca-bundle, SSL_CERT_FILE, certifi)


def prepare(
    state: Any,
    *,
    argument: str | None,
    to: str | None,
    to_wa_id: str | None,
    context: str | None,
    body: str | None,
    body_file: str | None,
    payload: Any,
    preview_url: bool,
    ref: str | None,
    ref1: str | None,
    ref2: str | None,
    wa_source: str | None,
    strict: bool,
    settings_input: SettingsInput,
    need_key: bool,
    sandbox_url: str | None = None,
) -> Prepared:
    """Resolve settings and build + validate the request. Raises only for unusable input files."""
    from ..message import build_reply, build_reply_from_payload, normalize_number
    from ..settings import resolve_settings

    env = state.env
    o.check_stdin_readers(
        **{
            "the BODY argument": argument,
            "--body-file": body_file,
            "--api-key-file": settings_input.api_key_file if need_key else None,
            "--payload": str(payload) if payload is not None else None,
        }
    )
    on_secret = state.renderer.secrets.append if state.renderer is not None else None
    # on_secret registers every key found (in use and overridden) before anything can print.
    settings = resolve_settings(settings_input, env.environ, stdin=env.stdin, need_key=need_key, on_secret=on_secret)
    if sandbox_url is not None:
        use_sandbox_account(settings, sandbox_url)
    problems: list[Problem] = list(settings.warnings)

    if payload is not None:
        given = [n for n, v in (("--to", to), ("--to-wa-id", to_wa_id), ("--context", context), ("a body", argument or body or body_file)) if v]
        if given:
            raise o.UsageError(f"--payload is a whole request: do not combine it with {', '.join(given)}")
        request, found = build_reply_from_payload(o.read_payload(payload, env.stdin), strict=strict)
    else:
        text = o.resolve_body(argument=argument, body=body, body_file=body_file, stdin=env.stdin)
        request, found = build_reply(
            to=to,
            to_wa_id=to_wa_id,
            body=text,
            context=context,
            preview_url=preview_url,
            ref=ref,
            ref1=ref1,
            ref2=ref2,
            wa_source=wa_source if wa_source is not None else settings.wa_source.value,
            strict=strict,
        )
    problems += found

    wa_number = None
    if settings.wa_number.value:
        wa_number, number_problems = normalize_number(
            str(settings.wa_number.value), "settings.wa_number", label=f"business number (from {settings.wa_number.source})"
        )
        problems += number_problems
    if strict:
        problems = [p.as_error() for p in problems]
    if any(p.severity == "error" for p in problems):
        request = None
    return Prepared(request, problems, settings, wa_number)


def use_sandbox_account(settings: Settings, base_url: str) -> None:
    """Point ``settings`` at the embedded sandbox and its fixed, non-secret account (DESIGN section 6)."""
    from ..sandbox import SANDBOX_API_KEY, SANDBOX_SID, SANDBOX_WA_NUMBER
    from ..settings import Resolved, Source

    source = Source("sandbox", "--sandbox")
    settings.sid = Resolved(SANDBOX_SID, source)
    settings.api_key = Resolved(SANDBOX_API_KEY, source)
    settings.wa_number = Resolved(SANDBOX_WA_NUMBER, source)
    settings.base_url = Resolved(base_url, source)


def dry_run_request(prepared: Prepared) -> dict[str, Any]:
    """The exact request as ``--dry-run`` shows it: missing credentials as placeholders, key masked."""
    from ..client import build_headers, masked_headers, reply_url

    s = prepared.settings
    url = reply_url(s.base_url.value, s.sid.value or "<KALEYRA_SID>", prepared.wa_number or "<KALEYRA_WA_NUMBER>")
    headers = masked_headers(build_headers(s.api_key.value or ""))
    if not s.api_key.value:
        headers["api-key"] = "<KALEYRA_API_KEY>"
    return {"method": "POST", "url": url, "headers": headers, "body": prepared.request.to_json_bytes().decode("utf-8")}


def write_github_output(environ: Any, values: dict[str, str]) -> None:
    """Append ``key=value`` lines to ``$GITHUB_OUTPUT`` in GitHub Actions (DESIGN section 8)."""
    path = environ.get("GITHUB_OUTPUT")
    if environ.get("GITHUB_ACTIONS") != "true" or not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            for key, value in values.items():
                handle.write(f"{key}={value}\n")
    except OSError:
        pass  # a broken runner file must not turn an accepted send into a failure


def reply_command(
    ctx: typer.Context,
    body_argument: o.BodyArg = None,
    to: o.To = None,
    to_wa_id: o.ToWaId = None,
    context: o.Context = None,
    body: o.Body = None,
    body_file: o.BodyFile = None,
    payload: o.Payload = None,
    preview_url: o.PreviewUrl = False,
    ref: o.Ref = None,
    ref1: o.Ref1 = None,
    ref2: o.Ref2 = None,
    wa_source: o.WaSource = None,
    strict: o.Strict = False,
    from_number: o.From = None,
    sid: o.Sid = None,
    api_key_file: o.ApiKeyFile = None,
    pod: o.Pod = None,
    base_url: o.BaseUrl = None,
    profile: o.Profile = None,
    config: o.Config = None,
    env_file: o.EnvFile = None,
    no_env_file: o.NoEnvFile = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Seconds per attempt (connect at most 10). Config key timeout. Default: 30.", rich_help_panel=o.SENDING, show_default=False),
    ] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, max=10, help="Extra attempts for what is safe to retry.", rich_help_panel=o.SENDING)] = 3,
    retry_unsafe: Annotated[
        bool,
        typer.Option("--retry-unsafe", help="Also retry what may have reached Kaleyra (5xx, timeouts): may send twice.", rich_help_panel=o.SENDING),
    ] = False,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="Trust the CA certificates in this PEM file instead of the default store (e.g. a corporate proxy's CA). Env SSL_CERT_FILE.",
            metavar="PATH",
            rich_help_panel=o.SENDING,
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the exact request; send nothing.", rich_help_panel=o.SENDING)] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Send at most once per KEY (e.g. the incoming message's wamid): a repeat prints the recorded message_id and sends nothing. Journal in KWA_STATE_DIR.",
            metavar="KEY",
            rich_help_panel=o.SENDING,
            show_default=False,
        ),
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="Send to a local emulator started for this command, with its own account (no Kaleyra account needed).", rich_help_panel=o.SENDING),
    ] = False,
    batch: o.Batch = None,
    batch_format: o.BatchFormatOpt = None,
    delimiter: o.Delimiter = None,
    concurrency: o.Concurrency = None,
    rate: o.Rate = None,
    results: o.Results = None,
    resume: o.Resume = False,
    retry_unknown: o.RetryUnknown = False,
    force: o.Force = False,
    skip_invalid: o.SkipInvalid = False,
    shard: o.ShardOpt = None,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
) -> None:
    from contextlib import nullcontext

    from ..cli import get_state

    state = get_state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json), quiet=quiet, verbose=verbose)
    settings_input = SettingsInput(
        sid=sid, wa_number=from_number, pod=pod, base_url=base_url, wa_source=wa_source, timeout=timeout,
        profile=profile, config=config, env_file=env_file, no_env_file=no_env_file, api_key_file=api_key_file,
    )
    if batch is not None or any((batch_format, delimiter, concurrency, rate is not None, results, resume, retry_unknown, force, skip_invalid, shard)):
        from .batch_cmd import check_batch_only, check_not_single, run_batch

        check_batch_only(
            batch, **{"--format": batch_format, "--delimiter": delimiter, "--concurrency": concurrency, "--rate": rate,
                      "--results": results, "--resume": resume, "--retry-unknown": retry_unknown, "--force": force,
                      "--skip-invalid": skip_invalid, "--shard": shard}
        )
        check_not_single(
            **{"the BODY argument": body_argument, "--to": to, "--to-wa-id": to_wa_id, "--context": context, "--body": body,
               "--body-file": body_file, "--payload": payload, "--dry-run": dry_run, "--idempotency-key": idempotency_key}
        )
        return run_batch(
            state, renderer, batch=batch, fmt=batch_format, delimiter=delimiter, concurrency=concurrency, rate=rate,
            results=results, resume=resume, retry_unknown=retry_unknown, force=force, skip_invalid=skip_invalid, shard=shard,
            strict=strict, preview_url=preview_url, ref=ref, ref1=ref1, ref2=ref2, wa_source=wa_source, retries=retries,
            retry_unsafe=retry_unsafe, sandbox=sandbox, ca_bundle=ca_bundle, settings_input=settings_input,
        )
    if sandbox and not dry_run:
        from ..sandbox import running_sandbox

        emulator = running_sandbox()
    else:
        emulator = nullcontext()
    with emulator as handle:
        _reply(
            state,
            renderer,
            sandbox_url=(handle.base_url if handle is not None else "http://127.0.0.1:8181") if sandbox else None,
            dry_run=dry_run,
            idempotency_key=idempotency_key,
            retries=retries,
            retry_unsafe=retry_unsafe,
            ca_bundle=ca_bundle,
            argument=body_argument,
            to=to,
            to_wa_id=to_wa_id,
            context=context,
            body=body,
            body_file=body_file,
            payload=payload,
            preview_url=preview_url,
            ref=ref,
            ref1=ref1,
            ref2=ref2,
            wa_source=wa_source,
            strict=strict,
            settings_input=settings_input,
        )


def _reply(
    state: Any,
    renderer: Any,
    *,
    sandbox_url: str | None,
    dry_run: bool,
    idempotency_key: str | None,
    retries: int,
    retry_unsafe: bool,
    ca_bundle: Path | None = None,
    **inputs: Any,
) -> None:
    from ..client import ssl_context

    prepared = prepare(state, need_key=True, sandbox_url=sandbox_url, **inputs)
    # A bad bundle is exit 2 even in a dry run; the default store (~30 ms) only when sending.
    prepared.verify = ssl_context(ca_bundle, state.env.environ, default=not dry_run) or True
    warnings = [p for p in prepared.problems if p.severity == "warning"]
    state.warnings = warnings
    if prepared.request is None:
        raise ValidationError(prepared.problems)
    if renderer.mode != "json":
        renderer.warn(warnings)
    if dry_run:
        renderer.dry_run(dry_run_request(prepared), warnings)
        missing = prepared.settings.missing()
        if missing:
            names = ", ".join(p.path.removeprefix("settings.") for p in missing)
            renderer.note(f"a real send would stop here: no {names} (see 'kwa config show')")
        return
    missing = prepared.settings.missing()
    if missing:
        raise ValidationError(missing + warnings)

    repeat = False
    if idempotency_key is not None:
        result, repeat = _send_once(
            state, prepared, idempotency_key, retries=retries, retry_unsafe=retry_unsafe, sandbox=sandbox_url is not None
        )
    else:
        result = _send(state, prepared, retries=retries, retry_unsafe=retry_unsafe)
    renderer.accepted(result, to=prepared.request.to, warnings=warnings, repeat=repeat)
    if result.message_id:
        write_github_output(state.env.environ, {"message_id": result.message_id})


def _send(state: Any, prepared: Prepared, *, retries: int, retry_unsafe: bool) -> Any:
    from ..client import KaleyraClient

    s = prepared.settings
    renderer = state.renderer
    try:
        with KaleyraClient(
            base_url=s.base_url.value,
            sid=s.sid.value,
            api_key=s.api_key.value,
            wa_number=prepared.wa_number,
            timeout=s.timeout.value,
            retries=retries,
            retry_unsafe=retry_unsafe,
            on_event=renderer.event,
            verify=prepared.verify,
        ) as client:
            return client.send_reply(prepared.request)
    except ApiError as error:
        if error.exit_code == ExitCode.AUTH:
            state.hint_extra = f"Used: {s.describe_credentials()}."
        raise


def _send_once(
    state: Any, prepared: Prepared, key: str, *, retries: int, retry_unsafe: bool, sandbox: bool = False
) -> tuple[Any, bool]:
    """Send unless ``key`` was accepted before (DESIGN section 8). Returns ``(result, repeat)``.

    The key is claimed in the journal before the request leaves; a request that provably sent
    nothing (network failure before sending, a 4xx rejection, 429, 503 with Retry-After)
    releases it, anything that may have reached Kaleyra marks it ``unknown``.
    """
    import tempfile
    from contextlib import ExitStack
    from pathlib import Path

    from ..errors import UsageError
    from ..journal import Journal, fingerprint
    from ..settings import state_dir

    key = key.strip()
    if not key:
        raise UsageError("--idempotency-key is empty", hint="Pass a stable key, e.g. the incoming message's wamid.")
    s = prepared.settings
    body = prepared.request.to_json_bytes()
    # A key counts per account and endpoint: a key tried against the sandbox (or another account)
    # must not turn a later real send into a "repeat" that sends nothing.
    scope = fingerprint(f"{s.base_url.value}|{s.sid.value}|{prepared.wa_number}".encode())[:16]
    scoped_key = f"{scope}:{key}"
    with ExitStack() as stack:
        if sandbox:
            # The embedded sandbox lives for one command: keep its keys out of the user's journal.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kwa-sandbox-")))
        else:
            folder = state_dir(state.env.environ)
        journal = stack.enter_context(Journal(folder))
        return _claim_and_send(state, prepared, journal, key, scoped_key, body, retries=retries, retry_unsafe=retry_unsafe)


def _claim_and_send(
    state: Any, prepared: Prepared, journal: Any, key: str, scoped_key: str, body: bytes, *, retries: int, retry_unsafe: bool
) -> tuple[Any, bool]:
    from ..client import SendResult
    from ..errors import NetworkError, OutcomeUnknownError, UsageError
    from ..journal import fingerprint

    s = prepared.settings
    # Wait for a concurrent owner at most as long as its own attempts could take.
    wait = s.timeout.value * (retries + 1) + 10
    claim = journal.claim(scoped_key, fingerprint(body), wait=wait, retry_unknown=retry_unsafe)
    if not claim.owned:
        entry = claim.entry
        if entry is not None and entry.status == "accepted":
            if entry.fingerprint != fingerprint(body):
                # As Stripe does: a key reused for another message is a caller's bug, not a repeat.
                raise UsageError(
                    f"idempotency key {key!r} was used before for a different message "
                    f"(accepted as {entry.message_id}); nothing was sent",
                    hint="Use a new key for a new message; the same key must always carry the same recipient and text.",
                    code="IDEMPOTENCY_KEY_REUSED",
                )
            state.renderer.note(f"repeat: key {key!r} was accepted before; nothing sent")
            return SendResult(entry.message_id, 0, None, "accepted before (repeat)", attempts=0), True
        if entry is not None and entry.status == "in_flight":
            raise OutcomeUnknownError(
                f"another kwa process is still sending with idempotency key {key!r}",
                hint="Wait for it to finish, then run again to get its message_id.",
                code="IDEMPOTENCY_IN_FLIGHT",
            )
        raise OutcomeUnknownError(
            f"an earlier send with idempotency key {key!r} has an unknown outcome",
            hint="Check kaleyra.io reports; to send again anyway (it may arrive twice) add --retry-unsafe.",
            code="IDEMPOTENCY_UNKNOWN",
        )
    try:
        result = _send(state, prepared, retries=retries, retry_unsafe=retry_unsafe)
    except ApiError as error:
        not_processed = error.http_status < 500 or (error.http_status == 503 and error.retry_after is not None)
        (journal.release if not_processed else journal.mark_unknown)(scoped_key)
        raise
    except (NetworkError, UsageError):
        journal.release(scoped_key)
        raise
    except BaseException:  # outcome unknown, Ctrl-C mid-request, or a bug: it may have been sent
        journal.mark_unknown(scoped_key)
        raise
    try:
        journal.accept(scoped_key, result.message_id)
    except UsageError as error:  # sent and accepted: report it, never turn it into a failure
        state.renderer.note(f"warning: {error.message} ({error.hint})")
    return result, False
