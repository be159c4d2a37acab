"""Error types, Kaleyra's API codes, hints and the ``ExitCode`` enum (DESIGN section 5).

This module is the one place that maps a failure to an exit code. It imports
neither Typer nor Rich nor httpx, so the core stays a library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal


class ExitCode(IntEnum):
    """Process exit codes, DESIGN section 5. Stable: scripts branch on them."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    AUTH = 3
    REJECTED = 4
    ACCOUNT = 5
    RATE_LIMITED = 6
    SERVER = 7
    NETWORK = 8
    OUTCOME_UNKNOWN = 9
    BATCH_PARTIAL = 10
    INTERRUPTED = 130


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One local validation finding (DESIGN section 4).

    ``path`` is a JSON path into the request body (``messaging_object.text.body``)
    or a setting name (``settings.sid``); ``code`` is a stable identifier
    (``BODY_TOO_LONG``) that is part of the JSON output contract.
    """

    path: str
    code: str
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }

    def as_error(self) -> Problem:
        """The same problem promoted to an error (``--strict``)."""
        return Problem(self.path, self.code, self.message, self.hint, "error")


class KwaError(Exception):
    """Base of every error kwa raises on purpose.

    Attributes: ``message`` (what is wrong), ``hint`` (what to do), ``code``
    (Kaleyra's code such as ``WA401``, or kwa's own such as ``TIMEOUT``),
    ``exit_code`` (an :class:`ExitCode`).
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    default_code = "INTERNAL"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.message


class UsageError(KwaError):
    """Bad arguments or settings: nothing was sent (exit 2)."""

    exit_code = ExitCode.USAGE
    default_code = "USAGE"


class ConfigError(UsageError):
    """A config file or ``.env`` file that cannot be used (exit 2)."""

    default_code = "CONFIG"


class ValidationError(UsageError):
    """Local validation found errors (exit 2). ``problems`` holds every finding, warnings too."""

    default_code = "VALIDATION"

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        errors = [p for p in problems if p.severity == "error"]
        if message is None:
            first = errors[0] if errors else None
            message = (
                f"{first.path}: {first.message}" if len(errors) == 1 and first else f"{len(errors)} problems found"
            )
        hint = errors[0].hint if len(errors) == 1 else None
        super().__init__(message, hint=hint)
        self.problems = problems


class SendError(KwaError):
    """A failure after local validation: the request was attempted.

    ``attempts`` counts the HTTP requests made (0 when none left the machine).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.attempts = attempts


class NetworkError(SendError):
    """The request provably never reached the server (DNS, connect, TLS, connect/pool timeout): exit 8."""

    exit_code = ExitCode.NETWORK
    default_code = "NETWORK"


class OutcomeUnknownError(SendError):
    """The request may have reached the server but no answer came (exit 9): check before re-sending."""

    exit_code = ExitCode.OUTCOME_UNKNOWN
    default_code = "OUTCOME_UNKNOWN"


class ApiError(SendError):
    """The server answered with a non-2xx status.

    ``http_status`` is the HTTP status, ``code`` Kaleyra's code when the body had one
    (else ``HTTP_<status>``), ``error`` Kaleyra's ``error`` object, ``retry_after``
    the parsed ``Retry-After`` in seconds (or ``None``), ``snippet`` the start of a
    body that was not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: str,
        hint: str | None = None,
        error: dict[str, Any] | None = None,
        retry_after: float | None = None,
        snippet: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, hint=hint, code=code, attempts=attempts)
        self.http_status = http_status
        self.error = error or {}
        self.retry_after = retry_after
        self.snippet = snippet

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]
        return exit_code_for(self.code, self.http_status)


class Interrupted(KwaError):
    """Ctrl-C (exit 130)."""

    exit_code = ExitCode.INTERRUPTED
    default_code = "INTERRUPTED"


# Kaleyra's documented codes (spec "Sample Failure Response" and API_NOTES.md), each
# with the exit code it maps to and the next step for the user.
API_CODES: dict[str, tuple[ExitCode, str]] = {
    "RBC001": (
        ExitCode.AUTH,
        "Check the account SID and API key pair (KALEYRA_SID, KALEYRA_API_KEY); "
        "they must come from the same kaleyra.io account and pod.",
    ),
    "WA401": (
        ExitCode.AUTH,
        "The business number (--from, KALEYRA_WA_NUMBER) is not on this account: "
        "use the WhatsApp business number shown in kaleyra.io, not the customer's number (--to).",
    ),
    "WA-401": (
        ExitCode.AUTH,
        "The account or business number cannot use this API version: contact Kaleyra support "
        "or use the endpoint your number is registered for.",
    ),
    "WA400": (
        ExitCode.REJECTED,
        "The API rejected the request body: run 'kwa validate' with the same inputs, "
        "or '--dry-run' to see the exact request.",
    ),
    "E110": (ExitCode.ACCOUNT, "Top up the account balance in kaleyra.io, then send again."),
    "WAV2101": (ExitCode.ACCOUNT, "The account's daily limit is reached: wait for the reset or ask Kaleyra to raise it."),
    "WA429": (ExitCode.RATE_LIMITED, "Slow down (--rate in batches) or try again later."),
    "WA500": (
        ExitCode.SERVER,
        "Kaleyra had an internal error; the message may or may not have been accepted. "
        "Check the reports before sending again.",
    ),
}


def exit_code_for(api_code: str | None, http_status: int) -> ExitCode:
    """Exit code for an HTTP answer: Kaleyra's ``code`` first, then the HTTP status (DESIGN section 5).

    A 3xx is never Kaleyra's answer (the API does not redirect): whatever code its body holds,
    it is exit 4 (check the base URL), never retried.
    """
    if 300 <= http_status < 400:
        return ExitCode.REJECTED
    if api_code and api_code in API_CODES:
        return API_CODES[api_code][0]
    if 200 <= http_status < 300:
        return ExitCode.OK
    if http_status in (401, 403):
        return ExitCode.AUTH
    if http_status == 429:
        return ExitCode.RATE_LIMITED
    if http_status >= 500:
        return ExitCode.SERVER
    # 3xx (never followed), 404 and every other 4xx: the request was rejected.
    return ExitCode.REJECTED


def hint_for(api_code: str | None, http_status: int) -> str | None:
    """The next step for an API answer, or ``None``."""
    if 300 <= http_status < 400:
        return (
            "The server answered with a redirect, which kwa never follows (the API key must not "
            "travel to another host): check --base-url / KALEYRA_BASE_URL / --pod."
        )
    if api_code and api_code in API_CODES:
        return API_CODES[api_code][1]
    if http_status == 404:
        return "No such endpoint: check --base-url / KALEYRA_BASE_URL / --pod and the account SID."
    if http_status in (401, 403):
        return "Check the account SID, API key and business number."
    if http_status == 429:
        return "Rate limited: slow down or try again later."
    if http_status in (502, 504):
        return "A gateway in front of Kaleyra failed; the message may or may not have been accepted."
    if http_status >= 500:
        return "Server error; the message may or may not have been accepted. Check before sending again."
    return None


def mask_secret(secret: str) -> str:
    """Mask a secret for display: first two and last character (``Ax…3``); under 8 characters ``…``."""
    if len(secret) < 8:
        return "\u2026"
    return f"{secret[:2]}\u2026{secret[-1]}"


def redact(text: str, secrets: "list[str] | tuple[str, ...]") -> str:
    """Replace every occurrence of each secret in ``text`` by its mask (servers may echo a key back).

    Also the forms an echo takes inside a JSON body (``\\"``, ``\\\\``, ``\\uXXXX``) and a URL
    (percent-encoded), so a raw response dump under ``--verbose`` cannot show the key either.
    """
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for form in _secret_forms(secret):
            if form in text:
                text = text.replace(form, mask_secret(secret))
    return text


def _secret_forms(secret: str) -> list[str]:
    import json
    from urllib.parse import quote

    forms = [secret]
    for form in (
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret, ensure_ascii=True)[1:-1],
        quote(secret, safe=""),
        quote(secret, safe="/:@+=~"),
    ):
        if form not in forms:
            forms.append(form)
    return forms
