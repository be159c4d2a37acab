"""``KaleyraClient``: URL, headers, send, retry policy and response parsing (DESIGN sections 3 and 5).

The pure parts (:func:`reply_url`, :func:`build_headers`, :func:`parse_response`,
:class:`RetryPolicy`, :func:`classify_transport_error`) are shared by the sync client
here and the async sender of batches, so both make the same decisions.

No idempotency key exists in Kaleyra's API (``spec/API_NOTES.md``): a retried POST whose
first attempt reached the server can deliver the message twice. So only requests that
provably never left (connect failures) and explicit "not processed" answers (429, 503 with
``Retry-After``) are retried by default.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ApiError,
    KwaError,
    NetworkError,
    OutcomeUnknownError,
    SendError,
    UsageError,
    hint_for,
    mask_secret,
)
from .message import ReplyRequest

if TYPE_CHECKING:
    import ssl

    import httpx

USER_AGENT = f"kwa/{__version__}"
MAX_RESPONSE_BYTES = 1024 * 1024  # a gateway's error page is small; never buffer a runaway body
RETRY_AFTER_CAP = 60.0  # seconds: a longer wait stops retrying, so a CI step never hangs for long
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0


def reply_url(base_url: str, sid: str, wa_number: str) -> str:
    """``{base}/v2/{sid}/whatsapp/{wa_number}/messages``; the business number keeps a literal ``+`` (spec example)."""
    return f"{base_url.rstrip('/')}/v2/{sid}/whatsapp/{wa_number}/messages"


def build_headers(api_key: str) -> dict[str, str]:
    """The request headers of DESIGN section 3 (the only place the real key is put)."""
    return {
        "api-key": api_key,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` safe to print: ``api-key`` masked."""
    return {k: (mask_secret(v) if k.lower() == "api-key" else v) for k, v in headers.items()}


@dataclass
class SendResult:
    """An accepted reply. ``message_id`` may be ``None`` when a 2xx came without one (then ``warnings`` says so)."""

    message_id: str | None
    http_status: int
    code: str | None
    message: str | None
    attempts: int = 1
    warnings: list[str] = field(default_factory=list)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date form, RFC 9110 10.2.3), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")


def body_snippet(content: bytes, limit: int = 160) -> str:
    """The start of a non-JSON body as one line of text (HTML tags dropped), for error messages."""
    text = content[:4096].decode("utf-8", "replace")
    text = _TAG_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# Kaleyra's codes look like WA400, RBC001, E110, WA-401: anything else in ``code`` (a newline, an
# escape, "::" that GitHub Actions would read as a workflow command) is not a code.
_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def parse_response(
    status: int, headers: Mapping[str, str], content: bytes, reason: str = "", *, cut: str | None = None
) -> SendResult:
    """Turn an HTTP answer into a :class:`SendResult` or raise :class:`ApiError` (DESIGN section 5).

    Defensive: the body may not be JSON (a gateway's HTML), ``data`` may be ``[]`` or ``{}``,
    ``code``/``message`` may be missing or of the wrong type, ``code`` may not look like a code
    (then it is ignored). ``cut`` says why ``content`` is incomplete (too large, the connection
    broke, it stalled), or ``None``: the status line decided the outcome, so a cut answer keeps
    its status's meaning and the reason is added to the warning or error message.
    """
    document: Any = None
    try:
        document = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        document = None
    doc = document if isinstance(document, dict) else {}
    code = doc.get("code") if isinstance(doc.get("code"), str) and _CODE_RE.fullmatch(doc["code"]) else None
    message = doc.get("message") if isinstance(doc.get("message"), str) else None
    data = doc.get("data")
    if 200 <= status < 300:
        warnings = []
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if not isinstance(message_id, str) or not message_id:
            message_id = None
            why = f" ({cut})" if cut else ""
            warnings.append(
                f"the API accepted the request (HTTP {status}) but sent no message_id{why}; "
                "find the message in kaleyra.io reports"
            )
        return SendResult(message_id, status, code, message, warnings=warnings)
    error = doc.get("error") if isinstance(doc.get("error"), dict) else {}
    snippet = None
    if document is None and content:
        snippet = body_snippet(content)
    if not message:
        message = reason or f"HTTP {status}"
        if snippet:
            message = f"{message}: {snippet}"
    if cut:
        message = f"{message} ({cut})"
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    return_code = code or f"HTTP_{status}"
    hint = hint_for(code, status)
    if status == 503 and retry_after is not None:
        # With Retry-After the server says it did not process the request (DESIGN section 5).
        hint = "Kaleyra is unavailable and did not process the request: nothing was sent. Try again later."
    raise ApiError(
        message,
        http_status=status,
        code=return_code,
        hint=hint,
        error=error,
        retry_after=retry_after,
        snippet=snippet,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def classify_transport_error(exc: Exception, *, timeout: float, connect_timeout: float) -> KwaError:
    """Map an httpx exception to a kwa error by whether the request may have left (DESIGN section 5).

    Connect, DNS, TLS, proxy and pool failures → :class:`NetworkError` (exit 8, safe to retry).
    Errors raised before any byte was sent (bad URL, illegal header) → :class:`UsageError` (exit 2).
    Write/read timeouts and errors, dropped connections → :class:`OutcomeUnknownError` (exit 9).
    """
    import httpx

    detail = str(exc) or exc.__class__.__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return NetworkError(
            f"connecting timed out after {connect_timeout:g} s",
            hint="Check the network, proxy settings (HTTPS_PROXY) and the base URL or pod; safe to retry.",
            code="CONNECT_TIMEOUT",
        )
    if isinstance(exc, httpx.PoolTimeout):
        return NetworkError("no free connection in the pool in time", hint="Lower --concurrency; safe to retry.", code="POOL_TIMEOUT")
    if isinstance(exc, httpx.ProxyError):
        return NetworkError(f"the proxy failed: {detail}", hint="Check HTTPS_PROXY / NO_PROXY; safe to retry.", code="PROXY_ERROR")
    if isinstance(exc, httpx.ConnectError):
        lowered = detail.lower()
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            return NetworkError(
                f"TLS failed: {detail}",
                hint="The server's certificate is not trusted: set SSL_CERT_FILE (or --ca-bundle) to your "
                "CA bundle, e.g. behind a corporate proxy. kwa never turns verification off.",
                code="TLS_ERROR",
            )
        if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered or "name resolution" in lowered:
            return NetworkError(f"the host name could not be resolved: {detail}", hint="Check --base-url / --pod and DNS.", code="DNS_ERROR")
        return NetworkError(f"could not connect: {detail}", hint="Check the network and the base URL or pod; safe to retry.", code="CONNECT_ERROR")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)):
        return UsageError(f"the request could not be built: {detail}", hint="Check --base-url, the SID and the business number.", code="REQUEST_INVALID")
    if isinstance(exc, httpx.WriteTimeout):
        return OutcomeUnknownError(
            f"sending the request timed out after {timeout:g} s; it may have reached Kaleyra",
            hint="Outcome unknown: check kaleyra.io reports before sending again (or use --retry-unsafe).",
            code="WRITE_TIMEOUT",
        )
    if isinstance(exc, httpx.ReadTimeout):
        return OutcomeUnknownError(
            f"no answer within {timeout:g} s after the request was sent",
            hint="Outcome unknown: the message may have been accepted. Check kaleyra.io reports before sending again.",
            code="READ_TIMEOUT",
        )
    if isinstance(exc, httpx.TransportError):
        return OutcomeUnknownError(
            f"the connection failed after the request was sent: {detail}",
            hint="Outcome unknown: the message may have been accepted. Check kaleyra.io reports before sending again.",
            code="CONNECTION_DROPPED",
        )
    return OutcomeUnknownError(f"the request failed: {detail}", code="TRANSPORT_ERROR")


def ssl_context(
    ca_bundle: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    default: bool = True,
) -> ssl.SSLContext | None:
    """The TLS context kwa verifies servers with; verification is never turned off.

    Trusted CAs, first found: ``ca_bundle`` (``--ca-bundle PATH``, a PEM file; it replaces the
    default store, like curl's ``--cacert``), ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` (from
    ``environ``, default ``os.environ``), else certifi's bundle. With ``default=False`` and no
    bundle configured, returns ``None`` instead of loading certifi's (~30 ms): for a dry run,
    which needs no context but should still refuse a bad bundle.
    Raises :class:`UsageError` (exit 2, ``CA_BUNDLE_INVALID``) for a bundle that is missing,
    unreadable or holds no certificate.
    """
    import ssl

    env = os.environ if environ is None else environ
    if ca_bundle is not None:
        origin, path, folder = "--ca-bundle", str(ca_bundle), False
    elif env.get("SSL_CERT_FILE"):
        origin, path, folder = "SSL_CERT_FILE", env["SSL_CERT_FILE"], False
    elif env.get("SSL_CERT_DIR"):
        origin, path, folder = "SSL_CERT_DIR", env["SSL_CERT_DIR"], True
    elif not default:
        return None
    else:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    hint = (
        "Give a PEM file of the CA certificates to trust (e.g. your company's root CA bundle)"
        + (", or unset SSL_CERT_FILE / SSL_CERT_DIR." if origin != "--ca-bundle" else ".")
    )
    where = Path(path)
    if folder and not where.is_dir():
        raise UsageError(f"SSL_CERT_DIR {path} is not a folder", hint=hint, code="CA_BUNDLE_INVALID")
    if not folder and not where.is_file():
        what = "does not exist" if not where.exists() else "is not a file"
        raise UsageError(f"the CA bundle {path} ({origin}) {what}", hint=hint, code="CA_BUNDLE_INVALID")
    try:
        return ssl.create_default_context(capath=path) if folder else ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (getattr(exc, "reason", None) or str(exc))
        raise UsageError(f"cannot use the CA bundle {path} ({origin}): {reason}", hint=hint, code="CA_BUNDLE_INVALID") from None


#: Loopback is always reached directly: a proxy's own loopback is another machine's.
LOOPBACK_PATTERNS = ("all://127.0.0.1", "all://localhost", "all://[::1]")
_PROXY_VARIABLES = {"http://": "HTTP_PROXY", "https://": "HTTPS_PROXY", "all://": "ALL_PROXY"}
_USERINFO_RE = re.compile(r"(?<=://)[^/@]*@")


def environment_proxies() -> dict[str, str | None]:
    """The proxies the environment names, as httpx mount patterns (``"https://": "http://proxy:3128"``;
    ``None`` = direct for ``NO_PROXY`` entries). ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` in either
    case (``urllib.request.getproxies``, as httpx reads them, CGI's ``HTTP_PROXY`` guard included)."""
    from urllib.request import getproxies

    info = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if info.get(scheme):
            url = info[scheme]
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for host in (h.strip() for h in info.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        try:
            address = ipaddress.ip_address(host.split("/")[0].strip("[]"))
        except ValueError:
            address = None
        if "://" in host:
            mounts[host] = None
        elif address is not None and address.version == 6:
            mounts[f"all://[{host.strip('[]')}]"] = None
        elif address is not None or host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            # curl's rules: "example.com" is the domain and its subdomains, ".example.com" subdomains only.
            mounts[f"all://*{host}"] = None
    return mounts


def proxy_error(url: str, pattern: str, exc: Exception) -> UsageError:
    """The exit-2 ``PROXY_INVALID`` error for a proxy URL that cannot be used, credentials masked;
    ``pattern`` is the mount pattern (``"https://"``) that names the variable to fix."""
    variable = _PROXY_VARIABLES.get(pattern, "HTTPS_PROXY")
    return UsageError(
        f"the proxy {_USERINFO_RE.sub('***@', url)} ({variable}) cannot be used: {exc}",
        hint=f"Fix {variable} (e.g. http://proxy.example.com:3128), or list the host in NO_PROXY.",
        code="PROXY_INVALID",
    )


def proxy_mounts(verify: Any = True, *, trust_env: bool = True, asynchronous: bool = False, **transport_options: Any) -> dict[str, Any]:
    """httpx ``mounts`` that send each request through the proxy the environment names for it.

    httpx reads ``HTTPS_PROXY``/``NO_PROXY`` itself only when it builds its own transport; kwa
    builds its transports (and a caller may pass a custom one), so it mounts the proxies itself,
    each an ``HTTPTransport`` (``AsyncHTTPTransport`` when ``asynchronous``) with the same
    ``verify`` and ``transport_options``. Loopback hosts are always direct (``--sandbox``
    behind a corporate proxy). Raises :class:`UsageError` (exit 2, ``PROXY_INVALID``) for a
    proxy URL httpx cannot use (a typo, ``socks5://`` without socksio).
    """
    import httpx

    factory = httpx.AsyncHTTPTransport if asynchronous else httpx.HTTPTransport
    mounts: dict[str, Any] = {}
    if trust_env:
        for pattern, url in environment_proxies().items():
            if url is None:
                mounts[pattern] = None
                continue
            try:
                mounts[pattern] = factory(proxy=httpx.Proxy(url), verify=verify, **transport_options)
            except (ValueError, TypeError, ImportError, httpx.InvalidURL) as exc:
                raise proxy_error(url, pattern, exc) from None
    for pattern in LOOPBACK_PATTERNS:
        mounts[pattern] = None
    return mounts


@dataclass
class RetryPolicy:
    """Which failures are retried and after how long (DESIGN section 5).

    ``retries`` is the number of extra attempts; ``retry_unsafe`` also retries what may
    have reached the server (5xx other than 503-with-Retry-After, timeouts after sending).
    Delays are in seconds: ``Retry-After`` when given, else exponential backoff with full
    jitter (base 0.5 s, cap 20 s).
    """

    retries: int = 3
    retry_unsafe: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, error: KwaError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to stop. ``attempt`` starts at 1."""
        if attempt > self.retries:
            return None
        if isinstance(error, ApiError):
            retry_after = error.retry_after
            if 300 <= error.http_status < 400:
                return None  # a redirect: the base URL is wrong, and trying again will not fix it
            if error.http_status == 429 or error.code == "WA429":
                pass
            elif error.http_status == 503 and retry_after is not None:
                pass  # the server said it did not process the request
            elif error.http_status >= 500 and self.retry_unsafe:
                pass
            else:
                return None
            if retry_after is not None:
                return retry_after if retry_after <= RETRY_AFTER_CAP else None
            return self.backoff(attempt)
        if isinstance(error, NetworkError):
            return self.backoff(attempt)
        if isinstance(error, OutcomeUnknownError) and self.retry_unsafe:
            return self.backoff(attempt)
        return None

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


AttemptHook = Callable[[str, dict[str, Any]], None]


class KaleyraClient:
    """Send replies to Kaleyra's WhatsApp API v2 (spec "Send Reply to Messages").

    ``base_url`` like ``https://api.in.kaleyra.io``; ``sid`` the account SID; ``wa_number``
    the business number in E.164 (the URL's ``<phone_number>``); ``timeout`` seconds per
    attempt for write/read, ``connect_timeout`` seconds for connecting. ``on_event`` is
    called with ``("request", {...})`` and ``("response", {...})`` per attempt, key masked
    (for ``--verbose``). ``verify``: ``True`` (see :func:`ssl_context`: ``SSL_CERT_FILE``,
    ``SSL_CERT_DIR``, certifi) or an ``ssl.SSLContext`` (``--ca-bundle``). ``transport``: a custom
    transport for direct connections (tests, or transport settings such as ``retries``); the
    environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``) apply whether or not one is given,
    unless ``trust_env`` is false. Use as a context manager.

    :meth:`send_reply` returns a :class:`SendResult` or raises :class:`ApiError`,
    :class:`NetworkError`, :class:`OutcomeUnknownError` or :class:`UsageError`; every
    raised error carries ``attempts``.
    """

    def __init__(
        self,
        *,
        base_url: str,
        sid: str,
        api_key: str,
        wa_number: str,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        retry_unsafe: bool = False,
        on_event: AttemptHook | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: Any = True,
        trust_env: bool = True,
    ) -> None:
        import httpx

        if verify is True:
            verify = ssl_context()
        mounts = proxy_mounts(verify, trust_env=trust_env)
        if transport is None:
            transport = httpx.HTTPTransport(verify=verify)
        self.base_url = base_url
        self.sid = sid
        self.wa_number = wa_number
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.policy = RetryPolicy(retries=retries, retry_unsafe=retry_unsafe)
        self._api_key = api_key
        self._on_event = on_event
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=self.connect_timeout),
            follow_redirects=False,  # the key must never travel to another host
            transport=transport,
            mounts=mounts,
            verify=verify,
            trust_env=False,  # proxies and CAs from the environment are applied above, once
            headers={"User-Agent": USER_AGENT},
        )

    def __enter__(self) -> KaleyraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def url(self) -> str:
        return reply_url(self.base_url, self.sid, self.wa_number)

    def send_reply(self, request: ReplyRequest) -> SendResult:
        """POST one reply, retrying only what DESIGN section 5 allows. See the class docstring."""
        body = request.to_json_bytes()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._attempt(body)
                result.attempts = attempt
                return result
            except SendError as error:
                error.attempts = attempt
                wait = self.policy.delay(error, attempt)
                if wait is None:
                    raise
                self._emit("retry", {"attempt": attempt, "wait": wait, "reason": error.message})
                (self._sleep or time.sleep)(wait)
            except UsageError:
                raise

    def _attempt(self, body: bytes) -> SendResult:
        import httpx

        headers = build_headers(self._api_key)
        self._emit("request", {"method": "POST", "url": self.url, "headers": masked_headers(headers), "body": body})
        try:
            request = self._http.build_request("POST", self.url, content=body, headers=headers)
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc, timeout=self.timeout, connect_timeout=self.connect_timeout) from None
        except (ValueError, TypeError) as exc:
            # httpx/h11 refuse some inputs before any byte is sent (e.g. an illegal header value).
            raise UsageError(f"the request could not be built: {exc}", code="REQUEST_INVALID") from None
        # The status line has arrived: it decides the outcome, whatever happens to the body.
        try:
            content, cut = read_answer(response.iter_bytes(), MAX_RESPONSE_BYTES, self.timeout)
        finally:
            _close_quietly(response)
        self._emit(
            "response",
            {"status": response.status_code, "headers": dict(response.headers), "body": content},
        )
        return parse_response(response.status_code, response.headers, content, response.reason_phrase, cut=cut)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, data)


def read_answer(chunks: Iterable[bytes], limit: int, timeout: float) -> tuple[bytes, str | None]:
    """Read a response body: at most ``limit`` bytes, within ``timeout`` seconds in all.

    Returns ``(content, cut)``: ``cut`` says why the body is incomplete (larger than ``limit``,
    still trickling in after ``timeout`` s, stalled, the connection broke), else ``None``.
    Never raises for a transport failure: the status line already arrived.
    """
    import httpx

    buffer = bytearray()
    deadline = time.monotonic() + timeout
    try:
        for chunk in chunks:
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), f"the answer is larger than {limit // 1024} KiB and was cut"
            if time.monotonic() > deadline:
                return bytes(buffer), f"the answer was still arriving after {timeout:g} s and was cut"
    except httpx.TimeoutException:
        return bytes(buffer), f"the answer stalled for {timeout:g} s and was cut"
    except httpx.HTTPError as exc:
        return bytes(buffer), f"the connection broke before the answer was complete: {exc or exc.__class__.__name__}"
    return bytes(buffer), None


def _close_quietly(response: Any) -> None:
    import httpx

    try:
        response.close()
    except httpx.HTTPError:
        pass  # a broken connection: it is discarded either way
