"""``kwa validate``: the same inputs as ``reply``, checked locally; nothing is sent (DESIGN sections 1, 4)."""

from __future__ import annotations

import typer

from ..errors import ValidationError
from ..settings import SettingsInput
from . import _options as o

HELP = "Check a reply (or a --payload file) locally and list every problem; nothing is sent."
EPILOG = (
    "Examples:\n\n"
    "  kwa validate --to +919876543210 -c wamid.ABC \"hello\"\n\n"
    "  kwa validate --payload request.json --json\n\n"
    "Exit codes: 0 valid (warnings allowed unless --strict), 2 problems found."
)


def validate_command(
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
    pod: o.Pod = None,
    base_url: o.BaseUrl = None,
    profile: o.Profile = None,
    config: o.Config = None,
    env_file: o.EnvFile = None,
    no_env_file: o.NoEnvFile = False,
    batch: o.Batch = None,
    batch_format: o.BatchFormatOpt = None,
    delimiter: o.Delimiter = None,
    output: o.Output = o.OutputMode.auto,
    as_json: o.JsonFlag = False,
    quiet: o.Quiet = False,
) -> None:
    from ..cli import get_state
    from ..message import utf16_len
    from .reply import prepare

    state = get_state(ctx)
    renderer = state.make_renderer(o.output_mode(output, as_json), quiet=quiet)
    settings_input = SettingsInput(
        sid=sid, wa_number=from_number, pod=pod, base_url=base_url, wa_source=wa_source, profile=profile,
        config=config, env_file=env_file, no_env_file=no_env_file,
    )
    if batch is not None or batch_format is not None or delimiter is not None:
        from .batch_cmd import check_batch_only, check_not_single, validate_batch

        check_batch_only(batch, **{"--format": batch_format, "--delimiter": delimiter})
        check_not_single(
            **{"the BODY argument": body_argument, "--to": to, "--to-wa-id": to_wa_id, "--context": context, "--body": body,
               "--body-file": body_file, "--payload": payload}
        )
        return validate_batch(
            state, renderer, batch=batch, fmt=batch_format, delimiter=delimiter, strict=strict, preview_url=preview_url,
            ref=ref, ref1=ref1, ref2=ref2, wa_source=wa_source, settings_input=settings_input,
        )
    prepared = prepare(
        state,
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
        need_key=False,
    )
    warnings = [p for p in prepared.problems if p.severity == "warning"]
    state.warnings = warnings
    if prepared.request is None:
        raise ValidationError(prepared.problems)
    request = prepared.request
    summary = {
        "request": {
            "to": request.to,
            "context": request.context_message_id or "",
            "body_utf16_units": str(utf16_len(request.body)),
            "preview_url": str(request.preview_url).lower(),
            **request.extra_info(),
        }
    }
    renderer.valid(warnings, summary)
