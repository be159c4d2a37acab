"""The reply request model, E.164 normalisation and local validation (DESIGN sections 3 and 4).

Nothing here does I/O. ``phonenumbers`` is imported only when a number is checked, so
importing this module stays cheap.

Lengths are counted in UTF-16 code units (an emoji outside the BMP counts 2): the
strictest of the counts Kaleyra's clients use (``spec/API_NOTES.md``, "Limits").
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from .errors import Problem

BODY_MAX_UTF16 = 4096
REF_MAX_UTF16 = 255
WAMID_PREFIX = "wamid."

# Spec, extra_info table: anything else is silently rewritten to "api" by the API.
WA_SOURCES: tuple[str, ...] = (
    "api",
    "clevertap",
    "zoho",
    "webengage",
    "shopify",
    "leadsquared",
    "responsys",
    "braze",
    "hubspot",
    "salesforce",
    "zapier",
    "eloqua",
    "moengage",
)

MESSAGING_OBJECT = "messaging_object"
PATH_TO = "messaging_object.to"
PATH_BODY = "messaging_object.text.body"
PATH_CONTEXT = "messaging_object.context.message_id"
PATH_PREVIEW = "messaging_object.text.preview_url"

_URL_RE = re.compile(r"https?://\S", re.IGNORECASE)

# Characters people paste around the digits of a phone number; dropping them never
# changes which number it is. U+2212 is the minus sign, U+00B7/U+2027/U+30FB middle dots.
_DROPPABLE_PUNCT = frozenset("-.()[]{}/\u2212\u00b7\u2027\u30fb\u2022")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what the 4096 and 255 limits count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _describe_char(ch: str) -> str:
    name = unicodedata.name(ch, None)
    code = f"U+{ord(ch):04X}"
    shown = repr(ch) if ch.isprintable() else code
    return f"{shown} ({name}, {code})" if name and shown != code else f"{code}" if not name else f"{code} {name}"


def _is_droppable(ch: str) -> bool:
    if ch.isspace() or ch in _DROPPABLE_PUNCT:
        return True
    category = unicodedata.category(ch)
    # Zs: every Unicode space; Pd: every dash; Cf: direction marks, zero-width
    # spaces/joiners, BOM, which copy-paste from chats and spreadsheets carries along.
    return category in ("Zs", "Pd", "Cf")


def normalize_number(raw: str, path: str = PATH_TO, *, label: str = "number") -> tuple[str | None, list[Problem]]:
    """Normalise a phone number typed or pasted by a person to E.164 (DESIGN section 4).

    Drops spaces, dashes, dots, brackets and invisible marks; turns non-ASCII digits
    into ASCII; never adds or drops a digit and never guesses a country code.

    Returns ``(e164 or None, problems)``; ``None`` when any problem is an error.
    Problem codes: ``NUMBER_EMPTY``, ``NUMBER_BAD_CHARACTER``, ``NUMBER_INTERNATIONAL_PREFIX``
    (``00``), ``NUMBER_NATIONAL`` (leading ``0``), ``NUMBER_NO_PLUS`` (bare digits),
    ``NUMBER_UNKNOWN_COUNTRY``, ``NUMBER_IMPOSSIBLE`` (errors) and ``NUMBER_NOT_VALID``
    (a warning: possible but not a dialable number, as some WhatsApp ids are).
    """
    digits: list[str] = []
    plus_seen = False
    for index, ch in enumerate(raw):
        if ch in "+\uff0b":  # ASCII or full-width plus
            if plus_seen or digits:
                return None, [
                    Problem(
                        path,
                        "NUMBER_BAD_CHARACTER",
                        f"{label} has a '+' at position {index + 1}; only a leading '+' is allowed",
                        "Write the number in E.164: '+', country code, number (e.g. +919876543210).",
                    )
                ]
            plus_seen = True
            continue
        if ch.isdecimal():
            digits.append(str(unicodedata.decimal(ch)))
            continue
        if _is_droppable(ch):
            continue
        return None, [
            Problem(
                path,
                "NUMBER_BAD_CHARACTER",
                f"{label} has {_describe_char(ch)} at position {index + 1}",
                "A phone number holds only '+', digits, spaces, dashes, dots and brackets.",
            )
        ]
    number = "".join(digits)
    if not number:
        return None, [
            Problem(path, "NUMBER_EMPTY", f"{label} is empty", "Give the number in E.164, e.g. +919876543210.")
        ]
    if not plus_seen:
        if number.startswith("00"):
            return None, [
                Problem(
                    path,
                    "NUMBER_INTERNATIONAL_PREFIX",
                    f"{label} starts with the international prefix 00 instead of '+'",
                    f"Did you mean +{number[2:]}? kwa never guesses: pass the number in E.164.",
                )
            ]
        if number.startswith("0"):
            return None, [
                Problem(
                    path,
                    "NUMBER_NATIONAL",
                    f"{label} is in national format (leading 0, no country code)",
                    f"Did you mean +<country code>{number[1:]} (e.g. +91{number[1:]} for India)? "
                    "kwa never guesses the country.",
                )
            ]
        # --to-wa-id exists only for the recipient; for the business number, just the '+'.
        webhook = " If these are a webhook's wa_id digits, pass them with --to-wa-id." if path == PATH_TO else ""
        return None, [
            Problem(path, "NUMBER_NO_PLUS", f"{label} has no '+' and country code", f"Did you mean +{number}?{webhook}")
        ]
    return _checked("+" + number, path, label)


def _checked(e164: str, path: str, label: str) -> tuple[str | None, list[Problem]]:
    problems = check_e164(e164, path, label=label)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return e164, problems


def check_e164(e164: str, path: str = PATH_TO, *, label: str = "number") -> list[Problem]:
    """Check a ``+digits`` string with ``phonenumbers`` (possible: error if not; valid: warning if not)."""
    import phonenumbers  # lazy: ~30 ms and several MB, only paid when a number is checked

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [
            Problem(
                path,
                "NUMBER_UNKNOWN_COUNTRY",
                f"{label} {e164} does not start with a known country code",
                "Check the digits after '+': they must begin with the country code (e.g. +91, +1, +44).",
            )
        ]
    digits = e164[1:]
    # Mexico's WhatsApp ids keep the old mobile '1' after +52: 13 digits, impossible
    # to phonenumbers, yet the right `to` for those users (DESIGN section 4).
    mexico_wa_id = digits.startswith("521") and len(digits) == 13
    # A number dialable only inside its area (phonenumbers' IS_POSSIBLE_LOCAL_ONLY, e.g. +43000)
    # is no WhatsApp id; nor is anything under 7 digits (the shortest plans, +290/+683, have 7).
    local_only = phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY
    if (local_only or len(digits) < 7 or not phonenumbers.is_possible_number(parsed)) and not mexico_wa_id:
        region = phonenumbers.region_code_for_number(parsed) or "its country"
        why = "is too short: a local number without its area code" if local_only or len(digits) < 7 else "has the wrong length"
        return [
            Problem(
                path,
                "NUMBER_IMPOSSIBLE",
                f"{label} {e164} {why} for {region} (+{parsed.country_code})",
                "Check for a missing or extra digit; kwa never adds or drops digits.",
            )
        ]
    if mexico_wa_id or not phonenumbers.is_valid_number(parsed):
        return [
            Problem(
                path,
                "NUMBER_NOT_VALID",
                f"{label} {e164} is not a valid number for its country",
                "Some WhatsApp ids are not dialable numbers (Mexico +52 1, older Brazilian mobiles); "
                "use --strict to refuse them.",
                severity="warning",
            )
        ]
    return []


def normalize_wa_id(raw: str, path: str = PATH_TO) -> tuple[str | None, list[Problem]]:
    """A webhook ``wa_id`` (ASCII digits, no '+') as E.164: kwa adds the '+' and checks the rest."""
    value = raw.strip()
    if not value or not value.isascii() or not value.isdigit():
        return None, [
            Problem(
                path,
                "WA_ID_NOT_DIGITS",
                "--to-wa-id takes the wa_id digits exactly as the webhook gives them (no '+', spaces or dashes)",
                "For a number typed by a person use --to +<country code><number>.",
            )
        ]
    return _checked("+" + value, path, "wa_id")


@dataclass(frozen=True)
class ReplyRequest:
    """One reply as Kaleyra's "Send Reply to Messages" body expects it (DESIGN section 3).

    ``to`` is E.164 (``+919876543210``); ``context_message_id`` the wamid replied to;
    ``ref``/``ref1``/``ref2``/``wa_source`` go to ``extra_info`` only when set.
    Build one with :func:`build_reply` so that it is validated.
    """

    to: str
    body: str
    context_message_id: str | None = None
    preview_url: bool = False
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str | None = None

    def extra_info(self) -> dict[str, str]:
        fields = {"ref": self.ref, "ref1": self.ref1, "ref2": self.ref2, "wa_source": self.wa_source}
        return {k: v for k, v in fields.items() if v is not None}

    def to_payload(self) -> dict[str, Any]:
        """The JSON body as a dict: ``{"messaging_object": {...}, "extra_info": {...}?}``."""
        messaging_object: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": self.to,
            "type": "text",
        }
        if self.context_message_id is not None:
            messaging_object["context"] = {"message_id": self.context_message_id}
        messaging_object["text"] = {"preview_url": self.preview_url, "body": self.body}
        payload: dict[str, Any] = {"messaging_object": messaging_object}
        extra = self.extra_info()
        if extra:
            payload["extra_info"] = extra
        return payload

    def to_json_bytes(self) -> bytes:
        """The exact body bytes sent: compact JSON, UTF-8, non-ASCII kept as is."""
        return json.dumps(self.to_payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _check_text(value: str, path: str, label: str) -> Problem | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return Problem(
            path,
            "TEXT_NOT_UNICODE",
            f"{label} holds bytes that are not valid Unicode text (a lone surrogate)",
            "Save the text as UTF-8.",
        )
    return None


def check_body(body: str | None, path: str = PATH_BODY) -> list[Problem]:
    """``text.body``: required, not blank, at most 4096 UTF-16 code units."""
    if body is None or body == "":
        return [Problem(path, "BODY_MISSING", "the message body is empty", "Pass the text as an argument, --body, --body-file or '-' for stdin.")]
    bad = _check_text(body, path, "the body")
    if bad:
        return [bad]
    if not body.strip():
        return [Problem(path, "BODY_BLANK", "the message body is only whitespace", "WhatsApp rejects blank messages: give some text.")]
    units = utf16_len(body)
    if units > BODY_MAX_UTF16:
        return [
            Problem(
                path,
                "BODY_TOO_LONG",
                f"the body is {units} UTF-16 units, limit {BODY_MAX_UTF16}",
                f"Shorten it by {units - BODY_MAX_UTF16} units (emoji count 2) or split it into several replies.",
            )
        ]
    return []


def check_context(message_id: str, path: str = PATH_CONTEXT) -> tuple[str | None, list[Problem]]:
    """``context.message_id``: trimmed; inner whitespace is an error; no ``wamid.`` prefix is a warning."""
    value = message_id.strip()
    if not value:
        return None, [Problem(path, "CONTEXT_EMPTY", "the context message id is empty", "Pass the wamid of the message you reply to, or leave --context out.")]
    bad = _check_text(value, path, "the context message id")
    if bad:
        return None, [bad]
    for index, ch in enumerate(value):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            return None, [
                Problem(
                    path,
                    "CONTEXT_WHITESPACE",
                    f"the context message id has {_describe_char(ch)} at position {index + 1}",
                    "Copy the wamid exactly from the incoming webhook's messages[].id.",
                )
            ]
    if not value.startswith(WAMID_PREFIX):
        return value, [
            Problem(
                path,
                "CONTEXT_NOT_WAMID",
                f"the context message id does not start with '{WAMID_PREFIX}'",
                "Cloud API ids look like wamid.HBgM...; older on-premises ids have no prefix.",
                severity="warning",
            )
        ]
    return value, []


def check_ref(value: str, name: str) -> list[Problem]:
    """``extra_info.ref``/``ref1``/``ref2``: at most 255 UTF-16 code units (the API would truncate silently)."""
    path = f"extra_info.{name}"
    bad = _check_text(value, path, name)
    if bad:
        return [bad]
    units = utf16_len(value)
    if units > REF_MAX_UTF16:
        return [
            Problem(
                path,
                "REF_TOO_LONG",
                f"{name} is {units} characters, limit {REF_MAX_UTF16}",
                "Kaleyra would cut it silently: shorten it.",
            )
        ]
    return []


def check_wa_source(value: str) -> list[Problem]:
    """``extra_info.wa_source``: one of :data:`WA_SOURCES`, else a warning (the API rewrites it to ``api``);
    text that is not valid Unicode (a lone surrogate) is an error, as in every other field."""
    if value in WA_SOURCES:
        return []
    bad = _check_text(value, "extra_info.wa_source", "wa_source")
    if bad:
        return [bad]
    close = difflib.get_close_matches(value.lower(), WA_SOURCES, n=1)
    hint = f"Did you mean '{close[0]}'?" if close else f"Use one of: {', '.join(WA_SOURCES)}."
    return [
        Problem(
            "extra_info.wa_source",
            "WA_SOURCE_UNKNOWN",
            f"wa_source '{value}' is not a documented value; Kaleyra will record it as 'api'",
            hint,
            severity="warning",
        )
    ]


def build_reply(
    *,
    to: str | None = None,
    to_wa_id: str | None = None,
    body: str | None = None,
    context: str | None = None,
    preview_url: bool = False,
    ref: str | None = None,
    ref1: str | None = None,
    ref2: str | None = None,
    wa_source: str | None = None,
    strict: bool = False,
    to_label: str = "--to",
) -> tuple[ReplyRequest | None, list[Problem]]:
    """Validate the parts of a reply and build it (DESIGN section 4).

    Returns ``(request, problems)``: ``request`` is ``None`` when any problem is an
    error; warnings are returned beside a built request. With ``strict`` every
    warning is promoted to an error.
    """
    problems: list[Problem] = []
    number: str | None = None
    if to is not None and to_wa_id is not None:
        problems.append(Problem(PATH_TO, "TO_TWICE", "give either --to or --to-wa-id, not both"))
    elif to_wa_id is not None:
        number, found = normalize_wa_id(to_wa_id)
        problems += found
    elif to is not None:
        number, found = normalize_number(to, label=to_label)
        problems += found
    else:
        problems.append(
            Problem(PATH_TO, "TO_MISSING", "no recipient", "Pass --to +<country code><number> (or --to-wa-id DIGITS).")
        )

    problems += check_body(body)

    context_id: str | None = None
    if context is not None:
        context_id, found = check_context(context)
        problems += found

    if preview_url and body and not _URL_RE.search(body):
        problems.append(
            Problem(
                PATH_PREVIEW,
                "PREVIEW_WITHOUT_URL",
                "--preview-url is set but the body has no http:// or https:// URL",
                "Add the URL to the body or drop --preview-url.",
                severity="warning",
            )
        )
    for name, value in (("ref", ref), ("ref1", ref1), ("ref2", ref2)):
        if value is not None:
            problems += check_ref(value, name)
    if wa_source is not None:
        problems += check_wa_source(wa_source)

    if strict:
        problems = [p.as_error() for p in problems]
    if any(p.severity == "error" for p in problems) or number is None or body is None:
        return None, problems
    return (
        ReplyRequest(
            to=number,
            body=body,
            context_message_id=context_id,
            preview_url=preview_url,
            ref=ref,
            ref1=ref1,
            ref2=ref2,
            wa_source=wa_source,
        ),
        problems,
    )


_KNOWN_TOP = {"messaging_object", "extra_info"}
_KNOWN_MO = {"messaging_product", "recipient_type", "to", "type", "context", "text"}
_KNOWN_EXTRA = {"ref", "ref1", "ref2", "wa_source"}


def build_reply_from_payload(payload: Any, *, strict: bool = False) -> tuple[ReplyRequest | None, list[Problem]]:
    """Validate a whole request body as in the spec's curl example (``--payload FILE.json``).

    ``payload`` is the parsed JSON. Structure problems carry their JSON path
    (``messaging_object.messaging_product``); the fields then go through the same
    rules as :func:`build_reply`, so the request that is sent is the canonical one.
    """
    problems: list[Problem] = []

    def err(path: str, code: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(path, code, message, hint))

    def unknown(obj: dict[str, Any], known: set[str], prefix: str) -> None:
        for key in obj:
            if key not in known:
                problems.append(
                    Problem(
                        f"{prefix}{key}",
                        "PAYLOAD_UNKNOWN_FIELD",
                        f"unknown field '{prefix}{key}' is not part of a text reply and will not be sent",
                        severity="warning",
                    )
                )

    if not isinstance(payload, dict):
        err("$", "PAYLOAD_NOT_OBJECT", "the payload must be a JSON object with messaging_object")
        return None, problems
    unknown(payload, _KNOWN_TOP, "")
    mo = payload.get("messaging_object")
    if not isinstance(mo, dict):
        err(MESSAGING_OBJECT, "PAYLOAD_MISSING_FIELD" if mo is None else "PAYLOAD_WRONG_TYPE", "messaging_object must be an object")
        return None, problems
    unknown(mo, _KNOWN_MO, "messaging_object.")
    if "messaging_product" not in mo:
        err("messaging_object.messaging_product", "PAYLOAD_MISSING_FIELD", "messaging_product is missing; it must be \"whatsapp\"")
    elif mo.get("messaging_product") != "whatsapp":
        err("messaging_object.messaging_product", "PAYLOAD_BAD_VALUE", "messaging_product must be \"whatsapp\"")
    if mo.get("recipient_type", "individual") != "individual":
        err("messaging_object.recipient_type", "PAYLOAD_BAD_VALUE", "recipient_type must be \"individual\"")
    if mo.get("type", "text") != "text":
        err("messaging_object.type", "PAYLOAD_BAD_VALUE", "type must be \"text\" for a text reply")

    to = mo.get("to")
    if not isinstance(to, str):
        err(PATH_TO, "PAYLOAD_WRONG_TYPE" if to is not None else "TO_MISSING", "messaging_object.to must be a string in E.164")
        to = None

    text = mo.get("text")
    body: str | None = None
    preview = False
    if not isinstance(text, dict):
        err("messaging_object.text", "PAYLOAD_WRONG_TYPE" if text is not None else "BODY_MISSING", "messaging_object.text must be an object with a body")
    else:
        unknown(text, {"preview_url", "body"}, "messaging_object.text.")
        raw_body = text.get("body")
        if raw_body is not None and not isinstance(raw_body, str):
            err(PATH_BODY, "PAYLOAD_WRONG_TYPE", "text.body must be a string")
        else:
            body = raw_body
        raw_preview = text.get("preview_url", False)
        if not isinstance(raw_preview, bool):
            err(PATH_PREVIEW, "PAYLOAD_WRONG_TYPE", "text.preview_url must be true or false")
        else:
            preview = raw_preview

    context_id: str | None = None
    ctx = mo.get("context")
    if ctx is not None:
        if not isinstance(ctx, dict) or not isinstance(ctx.get("message_id"), str):
            err(PATH_CONTEXT, "PAYLOAD_WRONG_TYPE", "context must be an object with a message_id string")
        else:
            unknown(ctx, {"message_id"}, "messaging_object.context.")
            context_id = ctx["message_id"]

    refs: dict[str, str | None] = {"ref": None, "ref1": None, "ref2": None, "wa_source": None}
    extra = payload.get("extra_info")
    if extra is not None:
        if not isinstance(extra, dict):
            err("extra_info", "PAYLOAD_WRONG_TYPE", "extra_info must be an object")
        else:
            unknown(extra, _KNOWN_EXTRA, "extra_info.")
            for key in refs:
                value = extra.get(key)
                if value is not None and not isinstance(value, str):
                    err(f"extra_info.{key}", "PAYLOAD_WRONG_TYPE", f"extra_info.{key} must be a string")
                else:
                    refs[key] = value

    request, found = build_reply(
        to=to,
        body=body,
        context=context_id,
        preview_url=preview,
        ref=refs["ref"],
        ref1=refs["ref1"],
        ref2=refs["ref2"],
        wa_source=refs["wa_source"],
        strict=strict,
        to_label="messaging_object.to",
    )
    if to is None:
        found = [p for p in found if p.code != "TO_MISSING"]
    if strict:
        problems = [p.as_error() for p in problems]
    problems += found
    if any(p.severity == "error" for p in problems):
        return None, problems
    return request, problems
