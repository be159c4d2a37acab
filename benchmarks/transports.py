"""Which HTTP client shape sends fastest to the sandbox: the measurement behind ``BatchSender``.

Loopback only: starts ``kwa sandbox serve --port 0`` in a subprocess and sends the same valid
request bodies through each client shape with 32 requests in flight, printing requests per second
and the CPU used by the sender and by the sandbox.

    python benchmarks/transports.py [--requests 6000] [--concurrency 32] [--only NAME,NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch import start_sandbox  # noqa: E402 - benchmarks/batch.py

from kaleyra_cli.client import build_headers, reply_url  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body(i: int) -> bytes:
    doc = {
        "messaging_object": {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": f"+9198{i:08d}", "type": "text",
            "text": {"preview_url": False, "body": f"Benchmark row {i}: your order has shipped"},
        },
        "extra_info": {"ref": f"t-{i}"},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def threaded(make: Callable[[], Any], send: Callable[[Any, bytes], int], bodies: list[bytes], concurrency: int) -> None:
    items = iter(bodies)
    lock = threading.Lock()

    def work() -> None:
        client = make()
        while True:
            with lock:
                b = next(items, None)
            if b is None:
                break
            status = send(client, b)
            assert status == 202, status
        close = getattr(client, "close", None)
        if close:
            close()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    n = min(args.requests, 50_000)
    c = args.concurrency

    import http.client

    import httpcore
    import httpx

    from kaleyra_cli.batch import _Connection

    server, env = start_sandbox()
    url = reply_url(env["KALEYRA_BASE_URL"], env["KALEYRA_SID"], env["KALEYRA_WA_NUMBER"])
    headers = build_headers(env["KALEYRA_API_KEY"])
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    parts = urlsplit(url)
    bodies = [body(i) for i in range(n)]

    def async_httpx(clients: int) -> Callable[[], None]:
        def run() -> None:
            async def go() -> None:
                queue = list(reversed(bodies))
                pool = [httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=c)) for _ in range(clients)]

                async def work(k: int) -> None:
                    client = pool[k % clients]
                    while queue:
                        response = await client.post(url, content=queue.pop())
                        assert response.status_code == 202

                await asyncio.gather(*(work(k) for k in range(c)))
                for client in pool:
                    await client.aclose()

            asyncio.run(go())

        return run

    def async_httpcore() -> None:
        async def go() -> None:
            queue = list(reversed(bodies))

            async def work() -> None:
                async with httpcore.AsyncConnectionPool(max_connections=1) as pool:
                    while queue:
                        b = queue.pop()
                        response = await pool.request("POST", url, headers=[*raw_headers, (b"Content-Length", b"%d" % len(b))], content=b)
                        assert response.status == 202

            await asyncio.gather(*(work() for _ in range(c)))

        asyncio.run(go())

    def via_transport(t: Any, b: bytes) -> int:
        response = t.handle_request(httpx.Request("POST", url, headers=headers, content=b))
        response.read()
        response.close()
        return response.status_code

    def via_http_client(conn: Any, b: bytes) -> int:
        conn.request("POST", parts.path, body=b, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    variants: dict[str, Callable[[], None]] = {
        "async: 1 httpx.AsyncClient": async_httpx(1),
        f"async: {c} httpx.AsyncClients": async_httpx(c),
        "async: httpcore pools": async_httpcore,
        "threads: httpx.Client each": lambda: threaded(lambda: httpx.Client(headers=headers), lambda cl, b: cl.post(url, content=b).status_code, bodies, c),
        "threads: httpx.HTTPTransport each": lambda: threaded(httpx.HTTPTransport, via_transport, bodies, c),
        "threads: httpcore each": lambda: threaded(
            lambda: httpcore.ConnectionPool(max_connections=1),
            lambda p, b: p.request("POST", url, headers=[*raw_headers, (b"Content-Length", b"%d" % len(b))], content=b).status,
            bodies, c,
        ),
        "threads: kwa _Connection (httpcore, writes coalesced)": lambda: threaded(
            lambda: _Connection(url, timeout=30, connect_timeout=10, ssl_context=None, proxy=None),
            lambda conn, b: conn.post(raw_headers, b)[0],
            bodies, c,
        ),
        "threads: stdlib http.client each (reference)": lambda: threaded(lambda: http.client.HTTPConnection(parts.hostname, parts.port), via_http_client, bodies, c),
    }
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    try:
        print(f"{n} requests, {c} in flight, {os.cpu_count()} CPUs; sandbox at {env['KALEYRA_BASE_URL']}")
        for name, run in variants.items():
            if only and not any(o in name for o in only):
                continue
            server_cpu, own_cpu, started = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
            print(
                f"{name:<55} {n / elapsed:7.0f} req/s   sender CPU {100 * (time.process_time() - own_cpu) / elapsed:3.0f} %"
                f"   sandbox CPU {100 * (cpu_seconds(server.pid) - server_cpu) / elapsed:3.0f} %",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
