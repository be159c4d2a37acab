"""Small loopback servers for fault injection: each connection is handed to a behaviour function,
and the server counts connections and complete requests. They listen on 127.0.0.x only and
never forward anything anywhere.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Behaviour = Callable[["Server", socket.socket], None]


@dataclass
class Server:
    """A threaded TCP server on ``host`` (127.0.0.1 by default); ``tls`` wraps each connection."""

    behaviour: Behaviour
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    handshake_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_server((self.host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.handshake_errors.append(str(exc))
                    return
            self.behaviour(self, conn)
        except OSError:
            pass  # the client went away: what these servers are for
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def read_request(self, conn: socket.socket) -> bytes | None:
        """Read one whole request (headers and ``Content-Length`` body) and record it; ``None`` if cut."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        request = head + b"\r\n\r\n" + body
        with self._lock:
            self.requests.append(request)
        return request

    def close(self) -> None:
        self._stop.set()
        self._accept.join(2)
        self.sock.close()
        for thread in self._threads:
            thread.join(2)


@contextlib.contextmanager
def serving(behaviour: Behaviour, **options: object) -> Iterator[Server]:
    server = Server(behaviour, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


def response(status: int, body: bytes = b"", *, reason: str = "X", headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """The bytes of an HTTP/1.1 response; ``length`` overrides ``Content-Length`` (to promise more than is sent)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    all_headers = {"Content-Length": str(len(body) if length is None else length), "Connection": "close"}
    all_headers.update(headers or {})
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def answer(status: int, body: bytes = b"", **kwargs: object) -> Behaviour:
    """Read the request, then answer ``status`` with ``body``."""

    def behave(server: Server, conn: socket.socket) -> None:
        if server.read_request(conn) is not None:
            conn.sendall(response(status, body, **kwargs))  # type: ignore[arg-type]

    return behave


def sleep(seconds: float) -> None:
    """Wait for real: the tests record ``time.sleep`` (it is one function for every module)."""
    threading.Event().wait(seconds)


def closed_port() -> int:
    """A loopback port nothing listens on (connect is refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


ACCEPTED_BODY = (
    b'{"code":"WA202","message":"Request Accepted","data":{"message_id":"wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA="},"error":{}}'
)


def accept_all(server: Server, conn: socket.socket) -> None:
    """Answer 202 to every request on the connection (keep-alive), recording each."""
    while server.read_request(conn) is not None:
        conn.sendall(response(202, ACCEPTED_BODY, headers={"Connection": "keep-alive", "Content-Type": "application/json"}))
