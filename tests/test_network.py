"""Real loopback servers for what a mock cannot show: timeouts, refused connections, local errors."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conftest import TO


class SilentServer:
    """Accepts connections, reads the request, never answers. Counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.settimeout(0.5)
            try:
                conn.recv(65536)
            except OSError:
                pass
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def loopback_creds(creds, monkeypatch):
    def use(port: int) -> None:
        monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{port}")

    return use


def test_server_that_never_answers_is_outcome_unknown_and_not_retried(kwa, loopback_creds, silent_server):
    loopback_creds(silent_server.port)
    started = time.monotonic()
    result = kwa("reply", "--to", TO, "--timeout", "2", "--json", "hi")
    elapsed = time.monotonic() - started
    assert result.exit_code == 9, result.output
    doc = result.json()
    assert doc["code"] == "READ_TIMEOUT" and "2 s" in doc["message"]
    assert silent_server.connections == 1
    assert elapsed < 10


def test_connection_refused_is_network_error_and_retried(kwa, loopback_creds, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("kaleyra_cli.client.time.sleep", waits.append)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connect is refused
    loopback_creds(port)
    result = kwa("reply", "--to", TO, "--retries", "2", "--json", "hi")
    assert result.exit_code == 8, result.output
    assert result.json()["attempts"] == 3 and len(waits) == 2
    assert "safe to retry" in result.json()["hint"]


def test_illegal_header_value_is_exit_2_never_9(kwa, creds, monkeypatch, silent_server):
    """A key httpx cannot put in a header fails before any byte leaves: a usage error."""
    monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{silent_server.port}")
    monkeypatch.setenv("KALEYRA_API_KEY", "ключ-не-ascii-0000")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code in (2, 8), result.output
    assert "Traceback" not in result.stderr
    assert silent_server.connections == 0


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1", "http://"])
def test_bad_base_url_is_exit_2(kwa, creds, url):
    result = kwa("reply", "--base-url", url, "--to", TO, "hi")
    assert result.exit_code == 2, result.output
    assert "base URL" in result.stderr


def test_unresolvable_host_is_network_error(kwa, creds, monkeypatch):
    """DNS failure for a .invalid host; getaddrinfo is stubbed so no query leaves the machine."""

    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    monkeypatch.setattr("kaleyra_cli.client.time.sleep", lambda s: None)
    monkeypatch.setenv("KALEYRA_BASE_URL", "https://kaleyra.invalid")
    result = kwa("reply", "--to", TO, "--retries", "0", "--json", "hi")
    assert result.exit_code == 8, result.output
    assert result.json()["code"] == "DNS_ERROR"
