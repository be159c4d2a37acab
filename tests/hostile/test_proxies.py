"""Proxies (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) are honoured with kwa's own transports
and with a custom one; loopback never goes through a proxy; a bad proxy URL is exit 2 (issue 6).

The proxy here is a loopback server that records what it is asked and answers itself: it never
connects anywhere. The API host name (``api.kwa-test.example``) is never resolved: DNS is
stubbed to refuse every name, so a request that did not go through the proxy fails loudly.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.conftest import API_KEY, MESSAGE_ID, SID, TO, WA_NUMBER
from tests.hostile.servers import Server, answer, closed_port, response, serving

HOST = "api.kwa-test.example"
ACCEPTED = json.dumps({"code": "WA202", "message": "Request Accepted", "data": {"message_id": MESSAGE_ID}, "error": {}}).encode()


def proxy_behaviour(server: Server, conn: socket.socket) -> None:
    """Absolute-form requests get a 202 from the proxy itself; CONNECT is refused (403)."""
    request = server.read_request(conn)
    if request is None:
        return
    if request.startswith(b"CONNECT "):
        conn.sendall(response(403, b"no tunnels here", reason="Forbidden"))
    else:
        conn.sendall(response(202, ACCEPTED, headers={"Content-Type": "application/json"}))


@pytest.fixture
def proxy():
    with serving(proxy_behaviour) as server:
        yield server


@pytest.fixture
def no_dns(monkeypatch):
    """Resolve only 127.0.0.1 (and names mapped in the returned dict); record every other lookup."""
    real = socket.getaddrinfo
    mapped: dict[str, str] = {}
    refused: list[str] = []

    def lookup(host, *args, **kwargs):
        if host in ("127.0.0.1", "127.0.0.2"):
            return real(host, *args, **kwargs)
        if host in mapped:
            return real(mapped[host], *args, **kwargs)
        refused.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    for name in ("NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    return mapped, refused


def request_lines(server: Server) -> list[str]:
    return [r.split(b"\r\n", 1)[0].decode() for r in server.requests]


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_http_proxy_carries_the_request(kwa, creds, monkeypatch, proxy, no_dns, variable, waits):
    monkeypatch.setenv(variable, proxy.url)
    result = kwa("reply", "--base-url", f"http://{HOST}", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == MESSAGE_ID
    assert request_lines(proxy) == [f"POST http://{HOST}/v2/{SID}/whatsapp/{WA_NUMBER}/messages HTTP/1.1"]
    assert f"api-key: {API_KEY}".encode() in proxy.requests[0]
    assert no_dns[1] == []  # the API host was never looked up: the proxy was asked


def test_https_proxy_gets_a_connect_and_a_refusal_is_exit_8(kwa, creds, monkeypatch, proxy, no_dns, waits):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    result = kwa("reply", "--base-url", f"https://{HOST}", "--to", TO, "--json", "--retries", "1", "hi")
    assert result.exit_code == 8, result.output
    doc = result.json()
    assert doc["code"] == "PROXY_ERROR" and "HTTPS_PROXY" in doc["hint"]
    assert request_lines(proxy) == [f"CONNECT {HOST}:443 HTTP/1.1"] * 2  # retried: nothing was sent
    assert API_KEY.encode() not in b"".join(proxy.requests)  # the key stays inside the tunnel
    assert no_dns[1] == []


def test_proxy_is_used_with_a_custom_transport(monkeypatch, proxy, no_dns):
    """httpx ignores HTTPS_PROXY when given a transport; KaleyraClient mounts the proxies itself."""
    from kaleyra_cli import KaleyraClient
    from kaleyra_cli.message import build_reply

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    request, _ = build_reply(to=TO, body="hi")
    with KaleyraClient(
        base_url=f"http://{HOST}", sid=SID, api_key=API_KEY, wa_number=WA_NUMBER, transport=httpx.HTTPTransport(retries=1)
    ) as client:
        result = client.send_reply(request)
    assert result.message_id == MESSAGE_ID
    assert request_lines(proxy) == [f"POST http://{HOST}/v2/{SID}/whatsapp/{WA_NUMBER}/messages HTTP/1.1"]
    assert no_dns[1] == []


def test_custom_transport_without_trust_env_goes_direct(monkeypatch, proxy, no_dns):
    from kaleyra_cli import KaleyraClient
    from kaleyra_cli.message import build_reply

    mapped, refused = no_dns
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with serving(answer(202, ACCEPTED)) as direct:
        mapped[HOST] = "127.0.0.1"
        request, _ = build_reply(to=TO, body="hi")
        with KaleyraClient(
            base_url=f"http://{HOST}:{direct.port}", sid=SID, api_key=API_KEY, wa_number=WA_NUMBER,
            transport=httpx.HTTPTransport(), trust_env=False,
        ) as client:
            client.send_reply(request)
    assert len(direct.requests) == 1 and proxy.connections == 0


@pytest.mark.parametrize("no_proxy", [HOST, "kwa-test.example", ".kwa-test.example", f"other.example, {HOST}"])
def test_no_proxy_goes_direct(kwa, creds, monkeypatch, proxy, no_dns, no_proxy):
    mapped, refused = no_dns
    with serving(answer(202, ACCEPTED)) as direct:
        mapped[HOST] = "127.0.0.1"
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        result = kwa("reply", "--base-url", f"http://{HOST}:{direct.port}", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert len(direct.requests) == 1 and proxy.connections == 0


def test_loopback_never_goes_through_a_proxy(kwa, monkeypatch, no_dns):
    """``kwa reply --sandbox`` behind a corporate proxy: the emulator is on this machine."""
    dead = f"http://127.0.0.1:{closed_port()}"
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(variable, dead)
    result = kwa("reply", "--sandbox", "--to", TO, "--context", "wamid.TEST", "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wamid.")


@pytest.mark.parametrize("url", ["http://user:s3cr3tpass@proxy.example:notaport", "ftp://proxy.example:21", "socks5://proxy.example:1080"])
def test_unusable_proxy_url_is_exit_2(kwa, creds, monkeypatch, no_dns, url):
    if url.startswith("socks5"):
        pytest.importorskip("pytest")  # keeps the parametrisation readable
        try:
            import socksio  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("socksio is installed: socks5:// is a usable proxy")
    monkeypatch.setenv("HTTPS_PROXY", url)
    result = kwa("reply", "--to", TO, "--json", "hi")  # was an internal error (exit 1) from httpx
    assert result.exit_code == 2, result.output
    doc = result.json()
    assert doc["code"] == "PROXY_INVALID" and "HTTPS_PROXY" in doc["message"] + doc["hint"]
    assert "s3cr3tpass" not in result.stdout + result.stderr


def test_batch_goes_through_the_proxy_too(kwa, creds, monkeypatch, proxy, no_dns, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    rows = tmp_path / "rows.csv"
    rows.write_text(f"to,body\n{TO},one\n+919876543211,two\n")
    result = kwa("reply", "--batch", str(rows), "--base-url", f"http://{HOST}", "--rate", "0", "-o", "plain")
    assert result.exit_code == 0, result.output
    assert request_lines(proxy) == [f"POST http://{HOST}/v2/{SID}/whatsapp/{WA_NUMBER}/messages HTTP/1.1"] * 2
    assert no_dns[1] == []


@pytest.mark.parametrize("batch", [False, True], ids=["reply", "batch"])
def test_cgi_proxy_header_is_not_a_proxy(kwa, creds, monkeypatch, proxy, no_dns, tmp_path, batch):
    """httpoxy (CVE-2016-1000110): under CGI, HTTP_PROXY may come from a client's 'Proxy:' header;
    the key must not be sent to it. Without a proxy the API host is looked up (and refused here)."""
    monkeypatch.setenv("REQUEST_METHOD", "POST")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    if batch:
        rows = tmp_path / "rows.csv"
        rows.write_text(f"to,body\n{TO},one\n")
        args = ["--batch", str(rows), "--rate", "0"]
    else:
        args = ["--to", TO, "hi"]
    result = kwa("reply", "--base-url", f"http://{HOST}", "--retries", "0", "-o", "plain", *args)
    assert result.exit_code in (8, 10), result.output
    assert proxy.connections == 0
    assert HOST in no_dns[1]
