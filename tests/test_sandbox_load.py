"""The sandbox as a throughput target: many concurrent keep-alive clients, none refused.

Client threads and the server share one process (and its GIL), so the rate seen here is far
below what the server does for a separate sender process; the test pins correctness under
concurrency (no reset, every request accepted, ids unique), with only a loose time bound.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from kaleyra_cli.sandbox import SANDBOX_API_KEY, SANDBOX_SID, SANDBOX_WA_NUMBER, running_sandbox

CLIENTS = 64
REQUESTS_EACH = 50
PATH = f"/v2/{SANDBOX_SID}/whatsapp/{SANDBOX_WA_NUMBER}/messages"
HEADERS = {"Content-Type": "application/json", "api-key": SANDBOX_API_KEY}


def _body(worker: int, n: int) -> bytes:
    doc = {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": f"+9198765{worker:02d}{n:03d}",
            "type": "text",
            "text": {"preview_url": False, "body": f"row {worker}/{n}"},
        },
        "extra_info": {"ref": f"{worker}-{n}"},
    }
    return json.dumps(doc).encode()


@pytest.mark.slow
def test_64_concurrent_clients_all_accepted():
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    go = threading.Barrier(CLIENTS + 1)

    with running_sandbox() as box:

        def worker(index: int) -> None:
            mine: list[int] = []
            try:
                with httpx.Client(base_url=box.base_url, timeout=30.0, headers=HEADERS) as client:
                    go.wait(timeout=30)
                    for n in range(REQUESTS_EACH):
                        mine.append(client.post(PATH, content=_body(index, n)).status_code)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(exc)
            with lock:
                statuses.extend(mine)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        go.wait(timeout=30)
        started = time.monotonic()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in threads), "clients still running after 120 s"

        records = box.state.messages()

    assert errors == [], errors[:3]
    assert len(statuses) == CLIENTS * REQUESTS_EACH
    assert set(statuses) == {202}
    assert len(records) == CLIENTS * REQUESTS_EACH
    assert len({r["message_id"] for r in records}) == CLIENTS * REQUESTS_EACH
    expected_refs = {f"{w}-{n}" for w in range(CLIENTS) for n in range(REQUESTS_EACH)}
    assert {r["extra_info"]["ref"] for r in records} == expected_refs
    total = CLIENTS * REQUESTS_EACH
    print(f"\n{total} requests in {elapsed:.2f} s: {total / elapsed:.0f} req/s (clients and server in one process)")
