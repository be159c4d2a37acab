"""Fault injection against loopback servers: each fault ends with DESIGN section 5's exit code, a
message that says what happened, and exactly the requests DESIGN allows (issue 6).

Every server here listens on 127.0.0.x and answers itself; DNS is stubbed, so nothing leaves
the machine. Retry waits are recorded instead of slept (fixture ``waits``).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.conftest import API_KEY, MESSAGE_ID, TO
from tests.hostile.servers import Server, answer, closed_port, response, serving, sleep

ACCEPTED = json.dumps({"code": "WA202", "message": "Request Accepted", "data": {"message_id": MESSAGE_ID}, "error": {}}).encode()


@pytest.fixture
def send(kwa, creds, monkeypatch, waits):
    """``send(base_url, *args)``: ``kwa reply --json`` to ``base_url`` → (result, JSON document)."""

    def run(base_url: str, *args: str, mode: str = "--json"):
        monkeypatch.setenv("KALEYRA_BASE_URL", base_url)
        result = kwa("reply", "--to", TO, *mode.split(), *args, "hi")
        assert "Traceback" not in result.stdout + result.stderr, result.output
        assert API_KEY not in result.stdout + result.stderr
        doc = result.json() if mode == "--json" else None
        return result, doc

    return run


# --------------------------------------------------------------------------- before sending: exit 8, retried


def test_connect_refused_is_exit_8_and_retried(send, waits):
    result, doc = send(f"http://127.0.0.1:{closed_port()}", "--retries", "2")
    assert result.exit_code == 8, result.output
    assert doc["code"] == "CONNECT_ERROR" and "safe to retry" in doc["hint"]
    assert doc["attempts"] == 3 and len(waits) == 2


def test_dns_failure_is_exit_8_and_no_query_leaves(send, waits, monkeypatch):
    asked: list[str] = []

    def no_such_host(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    result, doc = send("https://api.kaleyra.invalid", "--retries", "1")
    assert result.exit_code == 8, result.output
    assert doc["code"] == "DNS_ERROR" and "resolved" in doc["message"]
    assert asked == ["api.kaleyra.invalid"] * 2  # one attempt and one retry, nothing else looked up


def test_tls_failure_is_exit_8_says_how_to_fix_and_never_sends_unverified(send, certificate, waits):
    with serving(answer(202, ACCEPTED), tls=certificate.server_context()) as server:
        result, doc = send(server.url, "--retries", "1")
    assert result.exit_code == 8, result.output
    assert doc["code"] == "TLS_ERROR" and "certificate" in doc["message"].lower()
    assert "SSL_CERT_FILE" in doc["hint"] and "--ca-bundle" in doc["hint"] and "never" in doc["hint"]
    assert server.connections == 2 and server.requests == []  # handshakes only: no request, verified or not


def test_tls_with_ca_bundle_or_ssl_cert_file_is_accepted(send, certificate, monkeypatch):
    with serving(answer(202, ACCEPTED), tls=certificate.server_context()) as server:
        result, doc = send(server.url, "--ca-bundle", str(certificate.cert))
        assert result.exit_code == 0, result.output
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
        result2, doc2 = send(server.url)
        assert result2.exit_code == 0, result2.output
    assert doc["message_id"] == doc2["message_id"] == MESSAGE_ID
    assert len(server.requests) == 2


@pytest.mark.parametrize("where", ["flag", "env"])
@pytest.mark.parametrize("problem", ["missing", "not_pem", "folder"])
def test_unusable_ca_bundle_is_exit_2_and_sends_nothing(send, tmp_path, monkeypatch, where, problem):
    path = tmp_path / "ca.pem"
    if problem == "not_pem":
        path.write_text("this is not a certificate\n")
    elif problem == "folder":
        path.mkdir()
    with serving(answer(202, ACCEPTED)) as server:
        if where == "flag":
            result, doc = send(server.url, "--ca-bundle", str(path))
        else:
            monkeypatch.setenv("SSL_CERT_FILE", str(path))  # was an internal error (exit 1) from httpx
            result, doc = send(server.url)
    assert result.exit_code == 2, result.output
    assert doc["code"] == "CA_BUNDLE_INVALID" and str(path) in doc["message"]
    assert ("--ca-bundle" if where == "flag" else "SSL_CERT_FILE") in doc["message"]
    assert server.connections == 0


def test_unusable_ca_bundle_is_refused_in_a_dry_run_too(kwa, creds, tmp_path):
    result = kwa("reply", "--to", TO, "--dry-run", "--ca-bundle", str(tmp_path / "nope.pem"), "hi")
    assert result.exit_code == 2 and "CA bundle" in result.stderr, result.output


# --------------------------------------------------------------------------- after sending: exit 9, not retried


def test_slow_headers_is_exit_9_and_not_retried(send, waits):
    def silent(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        sleep(1.6)

    with serving(silent) as server:
        started = time.monotonic()
        result, doc = send(server.url, "--timeout", "0.5")
        elapsed = time.monotonic() - started
    assert result.exit_code == 9, result.output
    assert doc["code"] == "READ_TIMEOUT" and "0.5 s" in doc["message"] and "check" in doc["hint"].lower()
    assert len(server.requests) == 1 and waits == [] and elapsed < 5


def test_slow_headers_retried_only_with_retry_unsafe(send, waits):
    def silent(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        sleep(1.0)

    with serving(silent) as server:
        result, doc = send(server.url, "--timeout", "0.3", "--retries", "1", "--retry-unsafe")
    assert result.exit_code == 9, result.output
    assert doc["attempts"] == 2 and len(server.requests) == 2 and len(waits) == 1


def test_slow_body_of_an_accepted_answer_is_exit_0_with_a_warning(send, waits):
    """The status line decides: a 202 whose body stalls is accepted, with no message_id (DESIGN 5)."""

    def stall(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(response(202, ACCEPTED[:20], length=len(ACCEPTED)))
        sleep(1.6)

    with serving(stall) as server:
        result, doc = send(server.url, "--timeout", "0.5")
    assert result.exit_code == 0, result.output
    assert doc["ok"] is True and doc["message_id"] is None
    assert "stalled" in result.stderr and "no message_id" in result.stderr
    assert len(server.requests) == 1 and waits == []


def test_trickling_body_is_cut_at_the_attempt_timeout(send):
    """One byte at a time, each within the read timeout: the attempt still ends after --timeout."""

    def trickle(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(response(500, b"", length=10_000))
        for _ in range(200):
            conn.sendall(b"x")
            sleep(0.05)

    with serving(trickle) as server:
        started = time.monotonic()
        result, doc = send(server.url, "--timeout", "0.6")
        elapsed = time.monotonic() - started
    assert result.exit_code == 7, result.output
    assert "still arriving" in doc["message"] and doc["http_status"] == 500
    assert elapsed < 4 and len(server.requests) == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_connection_dropped_before_the_request_is_read(send, waits, how):
    def drop(server: Server, conn: socket.socket) -> None:
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with serving(drop) as server:
        result, doc = send(server.url)
    assert server.requests == []
    # Each attempt ends one of two ways. A reset seen while connecting (httpcore sets socket
    # options right after connect) provably wrote nothing: exit 8, retried. Seen after writing,
    # the client cannot tell "dropped before reading" from "after": exit 9, never retried.
    assert server.connections == doc["attempts"] == len(waits) + 1, result.output
    if result.exit_code == 8:
        assert how == "reset" and doc["code"] == "CONNECT_ERROR" and doc["attempts"] == 4, result.output
    else:
        assert result.exit_code == 9, result.output
        assert doc["code"] == "CONNECTION_DROPPED" and "check" in doc["hint"].lower()
        if how == "close":
            assert doc["attempts"] == 1


def test_connection_dropped_after_the_request_is_read(send, waits):
    def drop(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)

    with serving(drop) as server:
        result, doc = send(server.url)
        assert result.exit_code == 9, result.output
        assert doc["code"] == "CONNECTION_DROPPED" and "may have been accepted" in doc["hint"]
        assert len(server.requests) == 1 and waits == []
        retried, doc2 = send(server.url, "--retries", "2", "--retry-unsafe")
    assert retried.exit_code == 9 and doc2["attempts"] == 3
    assert len(server.requests) == 1 + 3


# --------------------------------------------------------------------------- odd answers


def test_truncated_json_promised_longer_is_accepted_with_a_warning(send):
    def cut(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(response(202, ACCEPTED[:40], length=len(ACCEPTED)))  # then close: fewer bytes than promised

    with serving(cut) as server:
        result, doc = send(server.url)
    assert result.exit_code == 0, result.output
    assert doc["message_id"] is None and "connection broke" in result.stderr
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "exit_code"), [(202, 0), (400, 4), (401, 3), (500, 7)]
)
def test_truncated_json_body(send, status, exit_code):
    with serving(answer(status, ACCEPTED[:33])) as server:
        result, doc = send(server.url)
    assert result.exit_code == exit_code, result.output
    assert len(server.requests) == 1
    if status == 202:
        assert "no message_id" in result.stderr
    else:
        assert doc["code"] == f"HTTP_{status}" and doc["http_status"] == status


@pytest.mark.parametrize(("status", "exit_code"), [(202, 0), (200, 0), (500, 7), (404, 4)])
def test_empty_body(send, status, exit_code):
    with serving(answer(status, b"")) as server:
        result, doc = send(server.url)
    assert result.exit_code == exit_code, result.output
    assert len(server.requests) == 1
    if status >= 400:
        assert doc["http_status"] == status and doc["message"]


@pytest.mark.parametrize("mode", ["--json", "-o plain", "-o table"])
def test_non_utf8_body(send, mode):
    body = b"\xff\xfe\xfa <b>\x1b[31mgateway \xc3(</b>"
    with serving(answer(502, body, headers={"Content-Type": "text/html; charset=utf-8"})) as server:
        result, doc = send(server.url, mode=mode)
    assert result.exit_code == 7, result.output
    assert "\x1b" not in result.stdout + result.stderr
    assert "gateway" in result.stdout + result.stderr
    assert len(server.requests) == 1


def test_ten_megabyte_body_is_cut_at_one_mebibyte(send):
    sent = threading.Event()
    big = b"<html>" + b"x" * (10 * 1024 * 1024) + b"</html>"

    def flood(server: Server, conn: socket.socket) -> None:
        server.read_request(conn)
        try:
            conn.sendall(response(502, big, headers={"Content-Type": "text/html"}))
        finally:
            sent.set()

    with serving(flood) as server:
        started = time.monotonic()
        result, doc = send(server.url)
        elapsed = time.monotonic() - started
    assert result.exit_code == 7, result.output
    assert "1024 KiB" in doc["message"] and doc["http_status"] == 502
    assert len(doc["message"]) < 1000  # a snippet, not the page
    assert len(server.requests) == 1 and elapsed < 10


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_exit_4_and_never_followed_to_the_other_host(send, waits, status):
    host = "127.0.0.2" if _can_bind("127.0.0.2") else "127.0.0.1"
    with serving(answer(202, ACCEPTED), host=host) as other:
        location = f"{other.url}/v2/steal"
        with serving(answer(status, b"", headers={"Location": location})) as server:
            result, doc = send(server.url, "--retries", "3")
    assert result.exit_code == 4, result.output
    assert doc["http_status"] == status and "redirect" in doc["hint"] and "never follows" in doc["hint"]
    assert len(server.requests) == 1 and waits == []  # not retried
    assert other.connections == 0  # the key never travelled


def test_redirect_with_a_rate_limit_code_is_still_not_retried(send, waits):
    body = json.dumps({"code": "WA429", "message": "Too many requests"}).encode()
    with serving(answer(302, body, headers={"Location": "http://127.0.0.1:1/x", "Retry-After": "1"})) as server:
        result, doc = send(server.url)
    assert result.exit_code == 4, result.output  # was exit 6 after 4 requests
    assert len(server.requests) == 1 and waits == []


def _can_bind(host: str) -> bool:
    try:
        with socket.create_server((host, 0)):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- the sandbox's own fault numbers


@pytest.mark.parametrize(("name", "exit_code"), [("dropped", 9), ("gateway_html_502", 7), ("slow", 9)])
def test_sandbox_fault_numbers(kwa, name, exit_code):
    from kaleyra_cli.sandbox import magic_number

    result = kwa("reply", "--sandbox", "--json", "--timeout", "0.5", "--to", magic_number(name).number, "hi")
    assert result.exit_code == exit_code, result.output
    assert result.json()["attempts"] == 1  # none of these is retried by default


def test_batch_tls_failure_then_ca_bundle(kwa, creds, certificate, monkeypatch, tmp_path, waits):
    from tests.hostile.servers import accept_all

    rows = tmp_path / "rows.csv"
    rows.write_text(f"to,body\n{TO},one\n+919876543211,two\n")
    with serving(accept_all, tls=certificate.server_context()) as server:
        monkeypatch.setenv("KALEYRA_BASE_URL", server.url)
        failed = kwa("reply", "--batch", str(rows), "--rate", "0", "--retries", "0", "-o", "plain")
        assert failed.exit_code in (8, 10), failed.output
        assert "SSL_CERT_FILE" in failed.stderr and "--ca-bundle" in failed.stderr  # was only per-row "failed TLS_ERROR"
        assert server.requests == []  # never sent unverified
        ok = kwa("reply", "--batch", str(rows), "--rate", "0", "--ca-bundle", str(certificate.cert), "-o", "plain")
    assert ok.exit_code == 0, ok.output
    assert len(server.requests) == 2
