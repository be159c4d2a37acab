"""A local emulator of Kaleyra's WhatsApp v2 "Send Reply to Messages" endpoint (DESIGN section 6).

The emulator is a pure ASGI app (no framework) served by uvicorn. It answers
``POST /v2/{sid}/whatsapp/{number}/messages`` the way the real API does
(``spec/000_f582ff87d1067479.txt`` and ``spec/API_NOTES.md``):

1. the SID in the path and the ``api-key`` header must be the sandbox pair
   (:data:`SANDBOX_SID`, :data:`SANDBOX_API_KEY`), else 401 ``RBC001`` (``data: []``);
2. the business number in the path must be :data:`SANDBOX_WA_NUMBER` (a literal ``+``
   or ``%2B``), else 401 ``WA401`` (``data: {}``);
3. the body must be a valid request, else 400 ``WA400`` whose ``error`` names the field:
   ``{"payload": "Incorrect payload format: ...", "field": "messaging_object.to"}``;
4. a magic recipient (``messaging_object.to`` in :data:`MAGIC_NUMBERS`) gets the error it
   stands for; otherwise, with probability ``fail_rate``, a ``WA500``;
5. else 202 ``{"code": "WA202", "message": "Request Accepted", "data": {"message_id":
   "wamid...."}, "error": {}}`` and the message is recorded in a :class:`SandboxState`.

Control endpoints (not part of Kaleyra's API): ``GET /_sandbox/messages[?to=+E164]`` lists the
recorded messages (oldest first), ``DELETE /_sandbox/messages`` clears them (``{"deleted": N}``),
``GET /_sandbox`` describes the sandbox account and its magic numbers.

Entry points: :func:`create_app` (the ASGI app; ``uvicorn --factory
kaleyra_cli.sandbox:create_app`` serves it too), :func:`running_sandbox` (in-process, on a free
loopback port, for ``kwa reply --sandbox`` and tests) and :func:`serve` (blocking, for
``kwa sandbox serve``).

Importing this module is cheap: uvicorn and asyncio are imported only when a server starts or
a request is served, and phonenumbers never (the server-side number check is the API's coarse
``+`` and 8 to 15 digits, not kwa's local validation).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qs

from kaleyra_cli.errors import ExitCode, KwaError

__all__ = [
    "MAGIC_NUMBERS",
    "SANDBOX_API_KEY",
    "SANDBOX_SID",
    "SANDBOX_WA_NUMBER",
    "MagicNumber",
    "SandboxApp",
    "SandboxError",
    "SandboxHandle",
    "SandboxState",
    "create_app",
    "magic_number",
    "running_sandbox",
    "serve",
]

# --------------------------------------------------------------------------- account

#: Account SID of the sandbox account. Shaped like a real SID (``HXAP16XXXXXX97IN``:
#: ``HX``, four characters, letters and digits, pod suffix ``IN``). Public, not a secret.
SANDBOX_SID = "HXSB16SANDBX97IN"

#: API key of the sandbox account: 33 printable ASCII characters, shaped like a real key
#: (``A`` ... ``3``). Public and documented, so printing it is fine; it works nowhere else.
SANDBOX_API_KEY = "Akwa0sandbox0public0key0not0secr3"

#: The sandbox account's WhatsApp business number (the URL's ``{number}``), E.164. It lies in
#: the NANP range reserved for fiction (555-0100 to 555-0199), so it reaches nobody, yet
#: ``phonenumbers.is_valid_number`` accepts it.
SANDBOX_WA_NUMBER = "+12025550100"

#: Seconds the ``slow`` magic number waits before answering (a gateway's idle timeout).
SLOW_SECONDS = 60.0

#: Largest request body read, in bytes; larger gets nginx's 413 (its default
#: ``client_max_body_size`` is 1 MiB), as a gateway in front of the API would answer.
MAX_BODY_BYTES = 1024 * 1024

#: Longest ``text.body``, in UTF-16 code units (DESIGN section 4: the strictest count in use).
MAX_BODY_UTF16 = 4096

#: Longest ``extra_info.ref``/``ref1``/``ref2``; longer is truncated silently, as the API does.
MAX_REF_CHARS = 255

#: ``extra_info.wa_source`` values the API keeps; any other string is rewritten to ``"api"``.
WA_SOURCES = frozenset(
    "api clevertap zoho webengage shopify leadsquared responsys braze hubspot salesforce zapier eloqua moengage".split()
)


class SandboxError(KwaError):
    """The sandbox server could not start (port taken, start-up timeout).

    ``exit_code`` is :attr:`ExitCode.USAGE` when the address cannot be used (a bad ``--host``
    or ``--port``), else :attr:`ExitCode.INTERNAL`.
    """

    default_code = "SANDBOX"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        exit_code: ExitCode = ExitCode.INTERNAL,
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- magic numbers


@dataclass(frozen=True)
class MagicNumber:
    """A recipient number that makes the sandbox answer with one documented failure.

    ``number``: E.164, possible and valid per ``phonenumbers`` (so kwa's local validation lets
    it through) and in the fictional NANP range 555-01xx (so it reaches nobody).
    ``http_status``: the HTTP status of the answer, ``None`` when no answer ever comes.
    ``code``: Kaleyra's ``code`` in the JSON body, ``None`` when the body has none (HTML,
    no body). ``simulates``: one line for humans. ``exit_code``: the exit code kwa must end
    with (DESIGN section 5), after its default retries. ``name``: a short stable key for
    :func:`magic_number`.

    Magic numbers are checked after authentication and body validation, and are never recorded.
    """

    number: str
    http_status: int | None
    code: str | None
    simulates: str
    exit_code: ExitCode
    name: str


#: Every magic recipient number (the README lists them in this order).
MAGIC_NUMBERS: tuple[MagicNumber, ...] = tuple(
    MagicNumber(number, status, code, simulates, exit_code, name)
    for number, status, code, exit_code, name, simulates in (
        ("+12025550141", 401, "RBC001", ExitCode.AUTH, "wrong_key", "wrong SID or API key (401 RBC001, data [])"),
        ("+12025550142", 401, "WA401", ExitCode.AUTH, "wrong_number", "business number not on the account (401 WA401)"),
        ("+12025550143", 401, "WA-401", ExitCode.AUTH, "not_enabled", "API not available for the account (401 WA-401)"),
        ("+12025550140", 400, "WA400", ExitCode.REJECTED, "bad_payload", "payload rejected by the API (400 WA400)"),
        ("+12025550110", 400, "E110", ExitCode.ACCOUNT, "low_balance", "low balance (400 E110)"),
        ("+12025550121", 400, "WAV2101", ExitCode.ACCOUNT, "daily_limit", "account daily limit reached (400 WAV2101)"),
        (
            "+12025550129", 429, "WA429", ExitCode.RATE_LIMITED, "rate_limited",
            "rate limited (429 WA429, Retry-After: 1), on every attempt",
        ),
        ("+12025550150", 500, "WA500", ExitCode.SERVER, "server_error", "internal server error (500 WA500)"),
        (
            "+12025550152", 502, None, ExitCode.SERVER, "gateway_html_502",
            "a gateway's HTML 502 Bad Gateway page (text/html, no JSON)",
        ),
        (
            "+12025550153", 503, None, ExitCode.SERVER, "unavailable",
            "service unavailable (503, Retry-After: 1, JSON without a code), on every attempt",
        ),
        (
            "+12025550154", 504, None, ExitCode.OUTCOME_UNKNOWN, "slow",
            "no answer for 60 s, then a gateway's HTML 504; a client timing out first cannot know the outcome",
        ),
        (
            "+12025550199", None, None, ExitCode.OUTCOME_UNKNOWN, "dropped",
            "connection closed after the request was read, without any response",
        ),
    )
)

_MAGIC_BY_NUMBER = {m.number: m for m in MAGIC_NUMBERS}
_MAGIC_BY_NAME = {m.name: m for m in MAGIC_NUMBERS}


def magic_number(name: str) -> MagicNumber:
    """The magic number called ``name`` (``"low_balance"``, ``"slow"``, ...); ``KeyError`` if none."""
    return _MAGIC_BY_NAME[name]


# --------------------------------------------------------------------------- records


class SandboxState:
    """Thread-safe store of the messages the sandbox accepted, oldest first.

    The app records from its event-loop thread while tests or the CLI read from others, so
    every access takes one lock. Each record is a dict: ``message_id`` (wamid), ``sid``,
    ``wa_number`` (business number from the URL), ``to``, ``body``, ``context_message_id``
    (or ``None``), ``preview_url`` (bool, ``False`` when absent), ``extra_info`` (as the API
    stores it: refs cut to 255 characters, unknown ``wa_source`` rewritten to ``"api"``) and
    ``received_at`` (ISO 8601 UTC with milliseconds, ``2024-05-01T12:00:00.123Z``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def record(self, message: dict[str, Any]) -> None:
        """Append one accepted message (``received_at`` as a float of Unix seconds)."""
        with self._lock:
            self._records.append(message)

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded messages, oldest first; only those sent to ``to`` (E.164) when given."""
        with self._lock:
            records = list(self._records)
        if to is not None:
            records = [r for r in records if r["to"] == to]
        return [_public_record(r) for r in records]

    def clear(self) -> int:
        """Forget every recorded message; returns how many there were."""
        with self._lock:
            n = len(self._records)
            self._records = []
        return n

    @property
    def count(self) -> int:
        """How many messages are recorded."""
        with self._lock:
            return len(self._records)

    def __len__(self) -> int:
        return self.count


def _public_record(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["extra_info"] = dict(r["extra_info"])
    out["received_at"] = _iso_utc(r["received_at"])
    return out


def _iso_utc(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- responses

_JSON = b"application/json"
_HTML = b"text/html"


def _api_body(code: str, message: str, data: Any, error: dict[str, Any]) -> bytes:
    return json.dumps({"code": code, "message": message, "data": data, "error": error}).encode()


# Bodies as the spec's "Sample Failure Response" section gives them.
_RBC001 = _api_body("RBC001", "Incorrect SID or API key.", [], {"error": "Incorrect SID or API key."})
_WA401_TEXT = "Phone number is not present or does not belong to the account."
_WA401 = _api_body("WA401", _WA401_TEXT, {}, {"phone_number": _WA401_TEXT})
_WA_401_TEXT = "API is not available for given customer.Please contact support for more info"
_WA_401 = _api_body("WA-401", _WA_401_TEXT, {}, {"account": _WA_401_TEXT})
_WA500 = _api_body("WA500", "Please try again later", {}, {"error": "Internal server error"})
_E110_TEXT = "Please check your balance, You have a low balance!"
_E110 = _api_body("E110", _E110_TEXT, {}, {"balance": _E110_TEXT})
_WAV2101 = _api_body("WAV2101", "Account daily limit reached", {}, {"error": "Account daily limit reached"})
_WA429 = _api_body("WA429", "Too many requests", {}, {"error": "Too many requests"})
_WA400_MESSAGE = "Refer to correct payload format"
_MAGIC_WA400 = _api_body("WA400", _WA400_MESSAGE, {}, {"payload": "Incorrect payload format"})
_UNAVAILABLE = json.dumps({"message": "Service temporarily unavailable, try again later"}).encode()


def _nginx_page(status: int, reason: str) -> bytes:
    # The page nginx serves for its own errors: what a client gets from a gateway, not the API.
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


_HTML_502 = _nginx_page(502, "Bad Gateway")
_HTML_504 = _nginx_page(504, "Gateway Time-out")
_HTML_413 = _nginx_page(413, "Request Entity Too Large")

_RETRY_AFTER_1 = ((b"retry-after", b"1"),)

# name -> (status, body, content type, extra headers) for the magic numbers answered at once.
_MAGIC_ANSWERS: dict[str, tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]]] = {
    "wrong_key": (401, _RBC001, _JSON, ()),
    "wrong_number": (401, _WA401, _JSON, ()),
    "not_enabled": (401, _WA_401, _JSON, ()),
    "bad_payload": (400, _MAGIC_WA400, _JSON, ()),
    "low_balance": (400, _E110, _JSON, ()),
    "daily_limit": (400, _WAV2101, _JSON, ()),
    "rate_limited": (429, _WA429, _JSON, _RETRY_AFTER_1),
    "server_error": (500, _WA500, _JSON, ()),
    "gateway_html_502": (502, _HTML_502, _HTML, ()),
    "unavailable": (503, _UNAVAILABLE, _JSON, _RETRY_AFTER_1),
}


def _wa400(field: str, reason: str) -> bytes:
    return _api_body("WA400", _WA400_MESSAGE, {}, {"payload": f"Incorrect payload format: {reason}", "field": field})


class _ConnectionDropped(Exception):
    """Raised on purpose so uvicorn closes the connection without a response (``dropped``)."""


class _QuietDrops(logging.Filter):
    # uvicorn logs every exception that leaves the app with a traceback; the intended drop is
    # not an error, so its record is filtered out and real failures still show.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _ConnectionDropped)


def _install_log_filter() -> None:
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in log.filters):
        log.addFilter(_QuietDrops())


# --------------------------------------------------------------------------- validation

_TO_RE = re.compile(r"\+[0-9]{8,15}")


class _Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and the API's parser) does not.
    raise ValueError(f"{name} is not valid JSON")


def _content_type_ok(value: bytes | None) -> bool:
    if value is None:
        return False
    return value.split(b";", 1)[0].strip().lower() == b"application/json"


def _utf16_units(text: str) -> int:
    if len(text) * 2 <= MAX_BODY_UTF16:  # no string this short can exceed the limit
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _parse_request(raw: bytes, content_type: bytes | None) -> dict[str, Any]:
    """The validated request as a record (without id and time); raises ``_Invalid``."""
    if not _content_type_ok(content_type):
        shown = content_type.decode("latin-1") if content_type is not None else "missing"
        raise _Invalid("Content-Type", f"Content-Type must be application/json, got {shown}")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise _Invalid("payload", "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _Invalid("payload", f"body is not valid JSON ({exc.msg} at {where})") from None
    except ValueError as exc:
        raise _Invalid("payload", str(exc)) from None
    if not isinstance(doc, dict):
        raise _Invalid("payload", "body must be a JSON object")

    mo = doc.get("messaging_object")
    if not isinstance(mo, dict):
        raise _Invalid("messaging_object", "messaging_object is required and must be an object")
    if mo.get("messaging_product") != "whatsapp":
        raise _Invalid("messaging_object.messaging_product", 'messaging_product must be "whatsapp"')
    if "recipient_type" in mo and mo["recipient_type"] != "individual":
        raise _Invalid("messaging_object.recipient_type", 'recipient_type must be "individual"')
    if "type" in mo and mo["type"] != "text":
        raise _Invalid("messaging_object.type", 'type must be "text"')
    to = mo.get("to")
    if not isinstance(to, str):
        raise _Invalid("messaging_object.to", "to is required and must be a string")
    if _TO_RE.fullmatch(to) is None:
        raise _Invalid("messaging_object.to", "to must be E.164: + and 8 to 15 digits")

    text = mo.get("text")
    if not isinstance(text, dict):
        raise _Invalid("messaging_object.text", "text is required and must be an object")
    if "body" not in text:
        raise _Invalid("messaging_object.text.body", "text.body is required")
    body = text["body"]
    if not isinstance(body, str):
        raise _Invalid("messaging_object.text.body", "text.body must be a string")
    if not body.strip():
        raise _Invalid("messaging_object.text.body", "text.body must not be blank")
    units = _utf16_units(body)
    if units > MAX_BODY_UTF16:
        raise _Invalid(
            "messaging_object.text.body", f"text.body is {units} UTF-16 code units long, at most {MAX_BODY_UTF16}"
        )
    preview_url = text.get("preview_url", False)
    if not isinstance(preview_url, bool):
        raise _Invalid("messaging_object.text.preview_url", "text.preview_url must be true or false")

    context_id = None
    if "context" in mo:
        context = mo["context"]
        if not isinstance(context, dict):
            raise _Invalid("messaging_object.context", "context must be an object")
        context_id = context.get("message_id")
        if not isinstance(context_id, str) or not context_id:
            raise _Invalid("messaging_object.context.message_id", "context.message_id must be a non-empty string")

    stored_extra: dict[str, str] = {}
    if "extra_info" in doc:
        extra = doc["extra_info"]
        if not isinstance(extra, dict):
            raise _Invalid("extra_info", "extra_info must be an object")
        for key in ("ref", "ref1", "ref2", "wa_source"):
            if key in extra:
                value = extra[key]
                if not isinstance(value, str):
                    raise _Invalid(f"extra_info.{key}", f"extra_info.{key} must be a string")
                if key == "wa_source":
                    stored_extra[key] = value if value in WA_SOURCES else "api"
                else:
                    stored_extra[key] = value[:MAX_REF_CHARS]

    return {
        "to": to,
        "body": body,
        "context_message_id": context_id,
        "preview_url": preview_url,
        "extra_info": stored_extra,
    }


# --------------------------------------------------------------------------- the app

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_WAMID_MIDDLE = b"\x15\x02\x00\x11\x18\x12"


class SandboxApp:
    """The emulator as an ASGI 3 application; build it with :func:`create_app`.

    Attributes: ``state`` (the :class:`SandboxState`), ``latency_ms``, ``fail_rate``,
    ``slow_seconds``. The app serves HTTP only; lifespan events are acknowledged.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        state: SandboxState | None = None,
        slow_seconds: float = SLOW_SECONDS,
    ) -> None:
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0 milliseconds, got {latency_ms!r}")
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0 and 1, got {fail_rate!r}")
        if not slow_seconds >= 0:
            raise ValueError(f"slow_seconds must be >= 0 seconds, got {slow_seconds!r}")
        self.state = state if state is not None else SandboxState()
        self.latency_ms = float(latency_ms)
        self.fail_rate = float(fail_rate)
        self.slow_seconds = float(slow_seconds)
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        _install_log_filter()

    def release_waiters(self) -> None:
        """Make waiting answers (``slow``, long latency) end now: the server is stopping.

        Thread-safe; :func:`running_sandbox` and :func:`serve` call it on shutdown so that an
        in-flight slow request does not hold the process for a minute.
        """
        self._stopping.set()

    def new_message_id(self, to: str) -> str:
        """A wamid shaped like Meta's: ``wamid.`` + standard base64 of the recipient's digits and a
        random 18-hex-digit id (58 characters for an 11-digit number). Drawn from the seeded RNG."""
        digits = to.lstrip("+").encode()
        raw = b"\x1c\x18" + bytes((len(digits),)) + digits + _WAMID_MIDDLE + b"%018X\x00" % self._rng.getrandbits(72)
        return "wamid." + base64.b64encode(raw).decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v2/") and path.endswith("/messages"):
            parts = path.split("/")  # ['', 'v2', sid, 'whatsapp', number, 'messages']
            if len(parts) == 6 and parts[3] == "whatsapp":
                if method != "POST":
                    await _not_allowed(send, path, b"POST")
                else:
                    await self._send_reply(scope, receive, send, parts[2], parts[4])
                return
        if path == "/_sandbox/messages":
            if method == "GET":
                await self._list(scope, send)
            elif method == "DELETE":
                await _respond(send, 200, json.dumps({"deleted": self.state.clear()}).encode())
            else:
                await _not_allowed(send, path, b"GET, DELETE")
            return
        if path in ("/_sandbox", "/_sandbox/"):
            if method == "GET":
                await _respond(send, 200, self._describe())
            else:
                await _not_allowed(send, path, b"GET")
            return
        await _respond(
            send,
            404,
            _api_body("NOT_FOUND", "No such endpoint", {}, {"path": f"{method} {path} is not served by the sandbox"}),
        )

    async def _send_reply(self, scope: Scope, receive: Receive, send: Send, sid: str, number: str) -> None:
        content_type = None
        api_key = None
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"api-key":
                api_key = value
            elif name == b"content-length":
                declared = value
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _respond(send, 413, _HTML_413, _HTML, ((b"connection", b"close"),))
            return

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _respond(send, 413, _HTML_413, _HTML, ((b"connection", b"close"),))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)

        if self.latency_ms:
            if await self._wait(self.latency_ms / 1000.0, receive) == "disconnected":
                return

        if sid != SANDBOX_SID or api_key is None or api_key != _SANDBOX_KEY_BYTES:
            await _respond(send, 401, _RBC001)
            return
        if number != SANDBOX_WA_NUMBER:
            await _respond(send, 401, _WA401)
            return
        try:
            record = _parse_request(raw, content_type)
        except _Invalid as exc:
            await _respond(send, 400, _wa400(exc.field, exc.reason))
            return

        magic = _MAGIC_BY_NUMBER.get(record["to"])
        if magic is not None:
            await self._answer_magic(magic, receive, send)
            return
        if self.fail_rate and self._rng.random() < self.fail_rate:
            await _respond(send, 500, _WA500)
            return

        message_id = self.new_message_id(record["to"])
        record["message_id"] = message_id
        record["sid"] = sid
        record["wa_number"] = number
        record["received_at"] = time.time()
        self.state.record(record)
        await _respond(
            send,
            202,
            b'{"code":"WA202","message":"Request Accepted","data":{"message_id":"%s"},"error":{}}'
            % message_id.encode(),
        )

    async def _answer_magic(self, magic: MagicNumber, receive: Receive, send: Send) -> None:
        answer = _MAGIC_ANSWERS.get(magic.name)
        if answer is not None:
            status, body, content_type, headers = answer
            await _respond(send, status, body, content_type, headers)
            return
        if magic.name == "slow":
            outcome = await self._wait(self.slow_seconds, receive)
            if outcome == "disconnected":
                return  # the client gave up: nobody to answer
            if outcome == "elapsed":
                await _respond(send, 504, _HTML_504, _HTML)
                return
            # The server is stopping: end like a restarted backend would, without an answer.
        await _drop(send)

    async def _wait(self, seconds: float, receive: Receive) -> str:
        """Wait ``seconds``; returns ``"elapsed"``, ``"disconnected"`` (client gone) or ``"stopping"``."""
        import asyncio

        if seconds <= 0.25 and not self._stopping.is_set():
            await asyncio.sleep(seconds)  # short pauses (latency) need no watching
            return "elapsed"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        # Once the body is read, receive() only returns when the client disconnects.
        watcher = asyncio.ensure_future(receive())
        try:
            while True:
                if self._stopping.is_set():
                    return "stopping"
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return "elapsed"
                # Polling the stop flag (set from another thread) keeps shutdown within ~50 ms.
                done, _ = await asyncio.wait((watcher,), timeout=min(remaining, 0.05))
                if done:
                    if watcher.result()["type"] == "http.disconnect":
                        return "disconnected"
                    watcher = asyncio.ensure_future(receive())
        finally:
            watcher.cancel()

    async def _list(self, scope: Scope, send: Send) -> None:
        to = None
        query = scope.get("query_string", b"")
        if query:
            values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get("to")
            if values:
                # An unencoded "+" arrives as a space; bare digits (a webhook's wa_id) get their "+".
                to = "+" + values[-1].strip().lstrip("+")
        body = json.dumps(self.state.messages(to), ensure_ascii=False).encode()
        await _respond(send, 200, body)

    def _describe(self) -> bytes:
        info = {
            "emulates": "Kaleyra WhatsApp API v2: POST /v2/{sid}/whatsapp/{number}/messages",
            "sid": SANDBOX_SID,
            "api_key": SANDBOX_API_KEY,
            "wa_number": SANDBOX_WA_NUMBER,
            "messages_recorded": self.state.count,
            "latency_ms": self.latency_ms,
            "fail_rate": self.fail_rate,
            "magic_numbers": [
                {
                    "number": m.number,
                    "name": m.name,
                    "http_status": m.http_status,
                    "code": m.code,
                    "simulates": m.simulates,
                    "exit_code": int(m.exit_code),
                }
                for m in MAGIC_NUMBERS
            ],
        }
        return json.dumps(info, ensure_ascii=False).encode()


_SANDBOX_KEY_BYTES = SANDBOX_API_KEY.encode()


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _not_allowed(send: Send, path: str, allow: bytes) -> None:
    body = _api_body(
        "METHOD_NOT_ALLOWED", "Method not allowed", {}, {"method": f"{path} accepts {allow.decode()} only"}
    )
    await _respond(send, 405, body, _JSON, ((b"allow", allow),))


async def _drop(send: Send) -> None:
    # A header value with CR LF is refused by the server before it writes a byte (h11 and
    # httptools both validate first), so the client sees the connection close with no response
    # at all, like a crashed backend. Should a server write it anyway, raising still cuts the
    # response short; either way the client cannot know whether the message went out. 444 is
    # nginx's "closed without a response", so an access log line reads right.
    try:
        await send({"type": "http.response.start", "status": 444, "headers": [(b"x-sandbox", b"drop\r\n")]})
    except Exception:  # noqa: BLE001 - the refusal is the point
        pass
    raise _ConnectionDropped("sandbox: connection dropped on purpose (magic number 'dropped')")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    *,
    latency_ms: float = 0,
    fail_rate: float = 0.0,
    seed: int | None = None,
    state: SandboxState | None = None,
    slow_seconds: float = SLOW_SECONDS,
) -> SandboxApp:
    """Build the emulator's ASGI app (see the module docstring for the endpoints).

    ``latency_ms``: milliseconds to wait before answering each ``POST`` to the messages
    endpoint. ``fail_rate``: probability (0 to 1) that a valid, non-magic request gets a 500
    ``WA500`` instead of being accepted (and is not recorded). ``seed``: seeds the RNG behind
    ``fail_rate`` and the message ids, so a run can be repeated exactly (``None``: random).
    ``state``: where accepted messages are recorded (a new :class:`SandboxState` by default),
    available as ``app.state``. ``slow_seconds``: how long the ``slow`` magic number waits
    (seconds). Raises ``ValueError`` for values out of range.
    """
    return SandboxApp(latency_ms=latency_ms, fail_rate=fail_rate, seed=seed, state=state, slow_seconds=slow_seconds)


# --------------------------------------------------------------------------- serving


def _uvicorn_config(app: SandboxApp, *, access_log: bool, log_config: dict[str, Any] | None) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        # h11: the only parser sure to be installed ("auto" is h11 unless httptools is), the one
        # these tests exercise (the drop trick depends on the parser), and measured at about
        # 6,000 requests/s on one core: the HTTP client, not the sandbox, limits a batch run.
        http="h11",
        ws="none",
        lifespan="off",
        interface="asgi3",
        # A batch sender opens many connections at once; a short backlog would reset them.
        backlog=2048,
        # No X-Forwarded-* rewriting: one middleware less per request, and nothing to trust.
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        log_config=log_config,
        access_log=access_log,
        use_colors=False if os.environ.get("NO_COLOR") else None,
        # Longer than httpx's 5 s keep-alive expiry, so the client always closes an idle
        # connection first: a server closing it while a POST is being written would look like a
        # dropped request (outcome unknown) when the sandbox did nothing wrong.
        timeout_keep_alive=30,
        # Bounds shutdown if a client holds a half-sent request open.
        timeout_graceful_shutdown=3,
    )


def _server(config: Any, app: SandboxApp) -> Any:
    import uvicorn

    class _SandboxServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.release_waiters()  # a slow answer must not hold Ctrl-C for a minute
            super().handle_exit(sig, frame)

    return _SandboxServer(config)


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket bound to ``host:port`` (0 = any free port); ``SandboxError`` if not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise SandboxError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="use an address of this machine, such as 127.0.0.1",
            code="SANDBOX_BIND",
            exit_code=ExitCode.USAGE,
        ) from None
    try:
        if sys.platform != "win32":
            # Restarting right after a stop must not fail on TIME_WAIT connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise SandboxError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another port (--port), or 0 for any free port",
            code="SANDBOX_BIND",
            exit_code=ExitCode.USAGE,
        ) from None
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, port: int) -> str:
    # A wildcard address is not something to connect to: point clients at loopback.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class SandboxHandle:
    """A running sandbox: where it listens and what it recorded.

    ``base_url`` (``http://127.0.0.1:54321``, no trailing slash), ``host``, ``port``, ``state``
    (:class:`SandboxState`), ``app``, and the sandbox account ``sid``, ``api_key``, ``wa_number``.
    """

    base_url: str
    host: str
    port: int
    state: SandboxState
    app: SandboxApp
    sid: str = SANDBOX_SID
    api_key: str = SANDBOX_API_KEY
    wa_number: str = SANDBOX_WA_NUMBER

    @property
    def messages_url(self) -> str:
        """The full URL of the emulated endpoint for the sandbox account."""
        return f"{self.base_url}/v2/{self.sid}/whatsapp/{self.wa_number}/messages"

    @property
    def env(self) -> dict[str, str]:
        """``KALEYRA_BASE_URL``, ``KALEYRA_SID``, ``KALEYRA_API_KEY``, ``KALEYRA_WA_NUMBER`` for a child kwa."""
        return {
            "KALEYRA_BASE_URL": self.base_url,
            "KALEYRA_SID": self.sid,
            "KALEYRA_API_KEY": self.api_key,
            "KALEYRA_WA_NUMBER": self.wa_number,
        }


@contextmanager
def running_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency_ms: float = 0,
    fail_rate: float = 0.0,
    seed: int | None = None,
    state: SandboxState | None = None,
    slow_seconds: float = SLOW_SECONDS,
    access_log: bool = False,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
) -> Iterator[SandboxHandle]:
    """Run the sandbox in a daemon thread for the duration of a ``with`` block.

    Binds ``host:port`` first (``port=0``: a free port chosen by the OS), so a taken port
    raises :class:`SandboxError` at once; then waits at most ``startup_timeout`` seconds for
    uvicorn to serve (:class:`SandboxError` otherwise) and yields a :class:`SandboxHandle`.
    On exit, slow answers are released and the server stops within ``shutdown_timeout``
    seconds (normally well under one). The process's logging configuration is left alone
    (uvicorn's records propagate to the root logger, warnings and above only). The other
    options are those of :func:`create_app`.
    """
    app = create_app(latency_ms=latency_ms, fail_rate=fail_rate, seed=seed, state=state, slow_seconds=slow_seconds)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    try:
        server = _server(_uvicorn_config(app, access_log=access_log, log_config=None), app)
    except BaseException:
        sock.close()
        raise
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"kwa-sandbox-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(shutdown_timeout)
            sock.close()
            reason = f": {failure[0]!r}" if failure else (" in time" if thread.is_alive() else "")
            raise SandboxError(f"the sandbox server did not start{reason}")
        time.sleep(0.005)

    handle = SandboxHandle(
        base_url=_base_url(host, bound_port), host=host, port=bound_port, state=app.state, app=app
    )
    try:
        yield handle
    finally:
        app.release_waiters()
        server.should_exit = True
        thread.join(shutdown_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(1.0)
        sock.close()


def startup_note(base_url: str) -> str:
    """The lines :func:`serve` announces: where the sandbox listens, its account, and the
    ``export`` commands that point kwa (or a CI script) at it."""
    return "\n".join(
        [
            f"kwa sandbox: emulating Kaleyra's WhatsApp API on {base_url} (Ctrl-C to stop)",
            f"  account SID      {SANDBOX_SID}",
            f"  API key          {SANDBOX_API_KEY}   (public sandbox key, not a secret)",
            f"  business number  {SANDBOX_WA_NUMBER}",
            f"  received         GET {base_url}/_sandbox/messages   (DELETE to clear)",
            f"  magic numbers    GET {base_url}/_sandbox",
            "Point kwa at it:",
            f"  export KALEYRA_BASE_URL={base_url}",
            f"  export KALEYRA_SID={SANDBOX_SID}",
            f"  export KALEYRA_API_KEY={SANDBOX_API_KEY}",
            f"  export KALEYRA_WA_NUMBER={SANDBOX_WA_NUMBER}",
        ]
    )


_EXPORT_RE = re.compile(r"export (KALEYRA_\w+)=(\S+)")


def read_exports(stream: TextIO) -> dict[str, str]:
    """Read the ``export KALEYRA_*=...`` lines that ``kwa sandbox serve`` prints at start-up.

    For scripts and tests that start the server with ``--port 0`` and need its address and
    account: reads lines from ``stream`` (its stderr) until ``KALEYRA_WA_NUMBER`` or end of
    stream, and returns ``{"KALEYRA_BASE_URL": ..., "KALEYRA_SID": ..., ...}`` (possibly
    incomplete if the server failed to start).
    """
    exports: dict[str, str] = {}
    for line in iter(stream.readline, ""):
        match = _EXPORT_RE.search(line)
        if match:
            exports[match.group(1)] = match.group(2).strip("'\"")
        if "KALEYRA_WA_NUMBER" in exports:
            break
    return exports


def serve(
    host: str = "127.0.0.1",
    port: int = 8181,
    latency_ms: float = 0,
    fail_rate: float = 0.0,
    seed: int | None = None,
    announce: Callable[[str], object] | None = print,
    access_log: bool = False,
    *,
    state: SandboxState | None = None,
) -> None:
    """Serve the sandbox in the foreground until Ctrl-C or SIGTERM, then return normally.

    For ``kwa sandbox serve``. Binds first (:class:`SandboxError` if ``host:port`` cannot be
    used; ``port=0`` picks a free port), then calls ``announce`` once with the multi-line
    :func:`startup_note` (base URL, SID, key, business number, ``export KALEYRA_BASE_URL=...``).
    uvicorn logs warnings and errors to stderr; ``access_log=True`` adds one stderr line per
    request. On a signal, in-flight requests finish (slow ones are cut) and the function
    returns; the caller exits 0. Options as in :func:`create_app`.
    """
    import copy
    import signal

    from uvicorn.config import LOGGING_CONFIG

    app = create_app(latency_ms=latency_ms, fail_rate=fail_rate, seed=seed, state=state)
    sock = _bind(host, port)
    log_config = copy.deepcopy(LOGGING_CONFIG)
    # Logs are not data: keep stdout for what the caller prints.
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    try:
        server = _server(_uvicorn_config(app, access_log=access_log, log_config=log_config), app)
        if access_log:
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)

        # uvicorn re-raises the signal it caught once it has stopped, to the handler it found
        # installed; with Python's defaults that is a KeyboardInterrupt, or death by SIGTERM.
        # Installing the server's own handler first makes that re-raise harmless (and a Ctrl-C
        # during start-up still stops the server), so a signal ends in a normal return.
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, server.handle_exit)
        try:
            if announce is not None:
                announce(startup_note(_base_url(host, sock.getsockname()[1])))
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        sock.close()
