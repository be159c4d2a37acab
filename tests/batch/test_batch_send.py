"""Sending batches through the whole stack to loopback: exact requests, results lines, exit codes,
shards, resume, throttling pauses, pacing and the output contract."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kaleyra_cli.batch import RESULT_FIELDS, TokenBucket
from kaleyra_cli.message import build_reply
from kaleyra_cli.sandbox import magic_number

from .conftest import json_lines, number, read_results, write_csv

SUMMARY_KEYS = {
    "schema_version", "summary", "ok", "exit_code", "rows", "accepted", "failed", "unknown", "invalid",
    "skipped", "sent", "kept", "elapsed_s", "rate", "results", "shard", "stopped",
}


def test_exact_request_bodies_and_results_lines(kwa, box_env, tmp_path):
    rows = [
        ["id", "to", "context", "body", "ref", "ref1", "ref2", "preview_url"],
        ["o-1", "+91 98765-43210", "wamid.HBgMOTE5", "Your order shipped: https://t.example/1", "ord-1", "c7", "", "true"],
        ["o-2", number(2), "", "Line 1\nLine 2 \"quoted\"", "ord-2", "", "x", ""],
    ]
    path = write_csv(tmp_path / "orders.csv", rows)
    results = tmp_path / "results.jsonl"
    result = kwa("reply", "--batch", str(path), "--results", str(results), "--json")
    assert result.exit_code == 0, result.output

    # What the sandbox received is exactly what a single reply builds for the same inputs.
    expected = {
        "ord-1": build_reply(to="+919876543210", body="Your order shipped: https://t.example/1", context="wamid.HBgMOTE5", preview_url=True, ref="ord-1", ref1="c7")[0],
        "ord-2": build_reply(to=number(2), body='Line 1\nLine 2 "quoted"', ref="ord-2", ref2="x")[0],
    }
    records = {r["extra_info"]["ref"]: r for r in box_env.state.messages()}
    for ref, request in expected.items():
        payload = request.to_payload()
        record = records[ref]
        assert record["to"] == payload["messaging_object"]["to"]
        assert record["body"] == payload["messaging_object"]["text"]["body"]
        assert record["preview_url"] == payload["messaging_object"]["text"]["preview_url"]
        assert record["context_message_id"] == payload["messaging_object"].get("context", {}).get("message_id")
        assert record["extra_info"] == payload["extra_info"]

    lines = read_results(results)
    assert len(lines) == 2 and all(list(line) == list(RESULT_FIELDS) for line in lines)
    by_id = {line["id"]: line for line in lines}
    assert by_id["o-1"] == {
        "row": 1, "id": "o-1", "to": "+919876543210", "status": "accepted", "message_id": records["ord-1"]["message_id"],
        "code": "WA202", "http_status": 202, "error": None, "attempts": 1,
    }
    assert not (tmp_path / "results.jsonl.inflight").exists()
    # --json: the same lines on stdout, then the summary.
    out_rows, summary = json_lines(result.stdout)
    assert sorted(out_rows, key=lambda r: r["row"]) == sorted(lines, key=lambda r: r["row"])
    assert set(summary) == SUMMARY_KEYS
    assert (summary["ok"], summary["rows"], summary["accepted"], summary["sent"], summary["stopped"]) == (True, 2, 2, 2, None)


def test_partial_failure_exits_10_with_failed_and_unknown_rows(kwa, box_env, tmp_path):
    rows = [["id", "to", "body"], ["ok", number(1), "a"], ["rej", magic_number("bad_payload").number, "b"], ["500", magic_number("server_error").number, "c"], ["ok2", number(2), "d"]]
    path = write_csv(tmp_path / "p.csv", rows)
    results = tmp_path / "r.jsonl"
    result = kwa("reply", "--batch", str(path), "--results", str(results), "-o", "plain")
    assert result.exit_code == 10, result.output
    status = {line["id"]: (line["status"], line["code"], line["http_status"]) for line in read_results(results)}
    # A 4xx refusal is failed (resume retries it); a 500 may have been accepted: unknown.
    assert status == {"ok": ("accepted", "WA202", 202), "ok2": ("accepted", "WA202", 202), "rej": ("failed", "WA400", 400), "500": ("unknown", "WA500", 500)}
    assert "kwa: batch: 4 rows: 2 accepted, 1 failed, 1 unknown, 0 invalid, 0 skipped" in result.stderr
    assert "row 2 id rej" in result.stderr


def test_account_wide_failure_stops_the_batch_with_its_exit_code(kwa, box_env, tmp_path):
    rows = [["to", "body"], [magic_number("wrong_key").number, "a"]] + [[number(i), f"r{i}"] for i in range(30)]
    path = write_csv(tmp_path / "k.csv", rows)
    results = tmp_path / "r.jsonl"
    result = kwa("reply", "--batch", str(path), "--results", str(results), "--concurrency", "1", "--json")
    assert result.exit_code == 3, result.output
    _, summary = json_lines(result.stdout)
    assert summary["stopped"]["code"] == "RBC001" and summary["failed"] == 1 and summary["skipped"] == 30
    lines = read_results(results)
    assert len(lines) == 31 and {line["code"] for line in lines if line["status"] == "skipped"} == {"BATCH_STOPPED"}
    assert box_env.state.count == 0


def test_shards_cover_every_row_exactly_once(kwa, box_env, tmp_path):
    rows = [["id", "to", "body", "ref"]] + [[f"r{i}", number(i), f"row {i}", f"ref-{i}"] for i in range(23)]
    path = write_csv(tmp_path / "s.csv", rows)
    seen: list[int] = []
    for k in (1, 2, 3):
        result = kwa("reply", "--batch", str(path), "--shard", f"{k}/3", "--results", str(tmp_path / f"r{k}.jsonl"), "--json")
        assert result.exit_code == 0, result.output
        out_rows, summary = json_lines(result.stdout)
        assert summary["shard"] == f"{k}/3" and summary["rows"] == len(out_rows)
        assert all((r["row"] - 1) % 3 == k - 1 for r in out_rows)
        seen += [r["row"] for r in out_rows]
    assert sorted(seen) == list(range(1, 24))
    refs = [r["extra_info"]["ref"] for r in box_env.state.messages()]
    assert sorted(refs) == sorted(f"ref-{i}" for i in range(23))


def test_resume_skips_accepted_rows_and_compacts_the_results(kwa, box_env, tmp_path):
    rows = [["id", "to", "body", "ref"]] + [[f"r{i}", number(i), f"row {i}", f"ref-{i}"] for i in range(6)]
    rows[3][1] = ""  # row 3 has no recipient: recorded invalid with --skip-invalid
    path = write_csv(tmp_path / "r.csv", rows)
    results = tmp_path / "results.jsonl"
    first = kwa("reply", "--batch", str(path), "--results", str(results), "--skip-invalid", "-o", "plain")
    assert first.exit_code == 10, first.output
    assert box_env.state.count == 5

    again = kwa("reply", "--batch", str(path), "--results", str(results), "-o", "plain")
    assert again.exit_code == 2 and "already exists" in again.stderr and "--resume" in again.stderr

    rows[3][1] = number(2)  # fixed
    write_csv(path, rows)
    resumed = kwa("reply", "--batch", str(path), "--results", str(results), "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    out_rows, summary = json_lines(resumed.stdout)
    assert [r["row"] for r in out_rows] == [3]
    assert (summary["accepted"], summary["kept"], summary["sent"]) == (6, 5, 1)
    refs = [r["extra_info"]["ref"] for r in box_env.state.messages()]
    assert sorted(refs) == sorted(f"ref-{i}" for i in range(6))  # each exactly once
    lines = read_results(results)
    assert len(lines) == 6 and {line["status"] for line in lines} == {"accepted"}

    forced = kwa("reply", "--batch", str(path), "--results", str(results), "--force", "--json")
    assert forced.exit_code == 0 and len(read_results(results)) == 6 and box_env.state.count == 12


def test_resume_reports_unknown_rows_and_retries_them_only_when_asked(kwa, box_env, tmp_path):
    rows = [["id", "to", "body"]] + [[f"r{i}", number(i), f"row {i}"] for i in range(3)]
    path = write_csv(tmp_path / "u.csv", rows)
    results = tmp_path / "results.jsonl"
    lines = [
        {"row": 1, "id": "r0", "to": number(0), "status": "accepted", "message_id": "wamid.X", "code": "WA202", "http_status": 202, "error": None, "attempts": 1},
        {"row": 2, "id": "r1", "to": number(1), "status": "unknown", "message_id": None, "code": "READ_TIMEOUT", "http_status": None, "error": "no answer", "attempts": 1},
    ]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    resumed = kwa("reply", "--batch", str(path), "--results", str(results), "--resume", "-o", "plain")
    assert resumed.exit_code == 10, resumed.output
    assert "1 row(s) of unknown outcome are not sent again: rows 2" in resumed.stderr
    assert [r["to"] for r in box_env.state.messages()] == [number(2)]

    retried = kwa("reply", "--batch", str(path), "--results", str(results), "--resume", "--retry-unknown", "-o", "plain")
    assert retried.exit_code == 0, retried.output
    assert sorted(r["to"] for r in box_env.state.messages()) == [number(1), number(2)]
    assert {(line["row"], line["status"]) for line in read_results(results)} == {(1, "accepted"), (2, "accepted"), (3, "accepted")}


def test_resume_turns_rows_left_in_flight_into_unknown(kwa, box_env, tmp_path):
    rows = [["id", "to", "body"]] + [[f"r{i}", number(i), f"row {i}"] for i in range(3)]
    path = write_csv(tmp_path / "c.csv", rows)
    results = tmp_path / "results.jsonl"
    done = {"row": 1, "id": "r0", "to": number(0), "status": "accepted", "message_id": "wamid.X", "code": "WA202", "http_status": 202, "error": None, "attempts": 1}
    results.write_text(json.dumps(done) + "\n" + '{"row": 3, "id": "r2", "to"', encoding="utf-8")  # torn last line
    journal = tmp_path / "results.jsonl.inflight"
    journal.write_text(f'kwa-inflight v1 results_offset=0\n1\t"{number(0)}"\t"r0"\n2\t"{number(1)}"\t"r1"\n', encoding="utf-8")
    resumed = kwa("reply", "--batch", str(path), "--results", str(results), "--resume", "--json")
    assert resumed.exit_code == 10, resumed.output
    assert "in flight when the last run stopped; recorded unknown: rows 2" in resumed.stderr
    final = {line["row"]: line for line in read_results(results)}
    assert len(read_results(results)) == 3
    assert final[2]["status"] == "unknown" and final[2]["code"] == "IN_FLIGHT_AT_CRASH" and final[2]["to"] == number(1)
    assert final[3]["status"] == "accepted"  # the torn line was dropped, the row sent
    assert [r["to"] for r in box_env.state.messages()] == [number(2)]
    assert not journal.exists()


def test_resume_refuses_another_batch(kwa, box_env, tmp_path):
    path = write_csv(tmp_path / "a.csv", [["to", "body"], [number(1), "a"]])
    results = tmp_path / "results.jsonl"
    assert kwa("reply", "--batch", str(path), "--results", str(results)).exit_code == 0
    write_csv(path, [["to", "body"], [number(2), "other recipient"]])
    result = kwa("reply", "--batch", str(path), "--results", str(results), "--resume", "-o", "plain")
    assert result.exit_code == 2 and "RESUME_MISMATCH" in result.stderr


class _Recorder(BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 1) to the first request, 202 to every other; records arrival times."""

    arrivals: list[tuple[float, int]] = []
    lock = threading.Lock()
    retry_after = "1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.monotonic()
        with self.lock:
            first = not self.arrivals
            self.arrivals.append((now, json.loads(body)["extra_info"]["ref"]))
        if first:
            payload, status, extra = b'{"code":"WA429","message":"Too many requests","data":{},"error":{}}', 429, [("Retry-After", self.retry_after)]
        else:
            payload, status, extra = b'{"code":"WA202","message":"Request Accepted","data":{"message_id":"wamid.T"},"error":{}}', 202, []
        self.send_response(status)
        for name, value in [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *extra]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_429_pauses_the_whole_queue_for_retry_after(kwa, tmp_path, monkeypatch):
    _Recorder.arrivals = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("KALEYRA_SID", "HXAP16TEST0097IN")
        monkeypatch.setenv("KALEYRA_API_KEY", "Aq7Zx1Sec4etKey9Test0000000000003")
        monkeypatch.setenv("KALEYRA_WA_NUMBER", "+919000012345")
        rows = [["to", "body", "ref"]] + [[number(i), f"row {i}", str(i)] for i in range(40)]
        path = write_csv(tmp_path / "t.csv", rows)
        result = kwa("reply", "--batch", str(path), "--concurrency", "4", "--rate", "0", "--json")
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    out_rows, summary = json_lines(result.stdout)
    assert summary["accepted"] == 40
    arrivals = sorted(_Recorder.arrivals)
    assert len(arrivals) == 41
    t429, throttled_ref = arrivals[0]
    assert next(r for r in out_rows if str(r["row"] - 1) == throttled_ref)["attempts"] == 2
    # Unpaced, all 40 rows would arrive within a few ms. Only what left before kwa read the 429
    # (a few rows: 4 workers) arrives early; then nothing until Retry-After (1 s) has passed.
    offsets = [round(t - t429, 3) for t, _ in arrivals]
    early = [o for o in offsets if o < 0.3]
    assert len(early) <= 8, offsets
    assert not [o for o in offsets if 0.3 <= o < 0.95], offsets
    assert len(offsets) - len(early) >= 33


@pytest.mark.parametrize(("retry_after", "exit_code"), [("1", 10), ("120", 6)])
def test_throttling_pauses_or_stops_the_queue_even_with_retries_0(kwa, tmp_path, monkeypatch, retry_after, exit_code):
    """--retries 0 gives up on the throttled row, yet the queue still pauses (or stops on a long wait)."""
    _Recorder.arrivals = []
    monkeypatch.setattr(_Recorder, "retry_after", retry_after)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("KALEYRA_SID", "HXAP16TEST0097IN")
        monkeypatch.setenv("KALEYRA_API_KEY", "Aq7Zx1Sec4etKey9Test0000000000003")
        monkeypatch.setenv("KALEYRA_WA_NUMBER", "+919000012345")
        rows = [["to", "body", "ref"]] + [[number(i), f"row {i}", str(i)] for i in range(20)]
        path = write_csv(tmp_path / "t.csv", rows)
        result = kwa("reply", "--batch", str(path), "--concurrency", "1", "--rate", "0", "--retries", "0", "--json")
    finally:
        server.shutdown()
    assert result.exit_code == exit_code, result.output
    _, summary = json_lines(result.stdout)
    offsets = [t - _Recorder.arrivals[0][0] for t, _ in sorted(_Recorder.arrivals)]
    if exit_code == 6:
        assert summary["stopped"]["code"] == "WA429" and len(offsets) == 1
    else:
        assert summary["failed"] == 1 and summary["accepted"] == 19
        assert offsets[1] >= 0.95, offsets  # nothing left while Retry-After ran


def test_token_bucket_holds_the_rate_and_bounds_bursts():
    now = [100.0]
    bucket = TokenBucket(80, clock=lambda: now[0])
    assert bucket.burst == 8
    # At one instant: a burst of 8 free tokens, then one every 1/80 s.
    waits = [bucket.reserve() for _ in range(20)]
    assert waits[:8] == [0.0] * 8
    assert waits[8:] == pytest.approx([(i + 1) / 80 for i in range(12)])
    # Workers that always sleep exactly what they are told: 80 per second over 20 s, ± the burst.
    bucket = TokenBucket(80, clock=lambda: now[0])
    start = now[0]
    sent = 0
    while now[0] < start + 20.0:
        wait = bucket.reserve()
        now[0] += wait
        if now[0] < start + 20.0:
            sent += 1
    assert 80 * 20 <= sent <= 80 * 20 + 8
    # After idling, the burst is bounded again.
    now[0] += 60.0
    assert sum(1 for _ in range(50) if bucket.reserve() == 0.0) == 8
    # A pause holds everyone; the bucket restarts with at most a burst.
    now[0] += 60.0
    bucket.pause(2.0)
    waits = [bucket.reserve() for _ in range(10)]
    assert min(waits) == pytest.approx(2.0) and waits[8] == pytest.approx(2.0 + 1 / 80)
    unlimited = TokenBucket(0, clock=lambda: now[0])
    assert {unlimited.reserve() for _ in range(100)} == {0.0}


def test_rate_paces_real_sends(kwa, box_env, tmp_path):
    rows = [["to", "body"]] + [[number(i), f"row {i}"] for i in range(40)]
    path = write_csv(tmp_path / "r.csv", rows)
    result = kwa("reply", "--batch", str(path), "--rate", "40", "--json")
    assert result.exit_code == 0, result.output
    from datetime import datetime

    times = sorted(datetime.fromisoformat(r["received_at"].replace("Z", "+00:00")).timestamp() for r in box_env.state.messages())
    # 40 rows at 40/s with a burst of 4: the last goes out no earlier than (40 - 4) / 40 s after the first.
    assert times[-1] - times[0] >= 0.85
    assert times[-1] - times[0] < 6.0  # generous: a loaded 2-core CI machine, yet far from unpaced


def test_github_output_and_sandbox_flag(kwa, tmp_path, monkeypatch):
    out = tmp_path / "gh_output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    rows = [["to", "body"], [number(1), "a"], [magic_number("bad_payload").number, "b"]]
    path = write_csv(tmp_path / "g.csv", rows)
    result = kwa("reply", "--batch", str(path), "--sandbox", "-o", "plain")
    assert result.exit_code == 10, result.output
    assert out.read_text().splitlines() == ["accepted=1", "failed=1", "unknown=0", "invalid=0", "skipped=0"]
    assert "::error title=kwa batch::1 of 2 rows not accepted" in result.stderr


def test_table_summary_and_validate_table(kwa, box_env, tmp_path):
    path = write_csv(tmp_path / "t.csv", [["to", "body"], [number(1), "[bold]not markup[/bold]"], [magic_number("bad_payload").number, "x"]])
    result = kwa("reply", "--batch", str(path), "-o", "table")
    assert result.exit_code == 10, result.output
    assert "Batch finished" in result.stdout and "accepted" in result.stdout and "WA400" in result.stdout
    assert box_env.state.messages()[0]["body"] == "[bold]not markup[/bold]"
    valid = kwa("validate", "--batch", str(path), "-o", "table")
    assert valid.exit_code == 0 and "valid: nothing was sent" in valid.stdout


def test_batch_engine_imports_neither_typer_nor_rich():
    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('typer', 'rich', 'click'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, B())\n"
        "import kaleyra_cli.batch as b\n"
        "print(b.TokenBucket(80).burst)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "8", result.stderr


def test_progress_bar_only_on_a_terminal_and_never_in_ci():
    import io

    from kaleyra_cli.render import Environment, Renderer

    def renderer(environ: dict[str, str], tty: bool) -> tuple[Renderer, io.StringIO]:
        err = io.StringIO()
        env = Environment(stdout=io.StringIO(), stderr=err, stdin=io.StringIO(), stdout_isatty=False, stderr_isatty=tty, stdin_isatty=False, environ=environ)
        return Renderer(env, "plain"), err

    shown, err = renderer({"NO_COLOR": "1"}, tty=True)
    bar = shown.batch_progress(10)
    bar.update(5, 1.0, {"accepted": 4, "failed": 1, "unknown": 0})
    bar.close()
    text = err.getvalue()
    assert "5/10" in text and "5 msg/s" in text and "accepted 4" in text and "failed 1" in text
    for environ, tty in (({"CI": "true"}, True), ({}, False)):
        hidden, err = renderer(environ, tty)
        bar = hidden.batch_progress(10)
        bar.update(5, 1.0, {"accepted": 5})
        bar.close()
        assert err.getvalue() == ""


def test_endpoint_down_stops_the_batch_with_exit_8(kwa, tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KALEYRA_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KALEYRA_SID", "HXAP16TEST0097IN")
    monkeypatch.setenv("KALEYRA_API_KEY", "Aq7Zx1Sec4etKey9Test0000000000003")
    monkeypatch.setenv("KALEYRA_WA_NUMBER", "+919000012345")
    path = write_csv(tmp_path / "down.csv", [["to", "body"]] + [[number(i), f"r{i}"] for i in range(60)])
    result = kwa("reply", "--batch", str(path), "--retries", "0", "--concurrency", "2", "--json")
    assert result.exit_code == 8, result.output
    rows, summary = json_lines(result.stdout)
    assert summary["stopped"]["code"] == "CONNECT_ERROR"
    assert 16 <= summary["failed"] <= 20 and summary["failed"] + summary["skipped"] == 60
    assert {r["status"] for r in rows} == {"failed", "skipped"}  # never sent: safe to resume


def test_proxies_follow_the_single_reply_rules(monkeypatch, kwa, box_env, tmp_path):
    from kaleyra_cli.batch import proxy_for

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,.corp.example")
    assert proxy_for("https://api.in.kaleyra.io/v2/x") == "http://proxy.example:3128"
    assert proxy_for("https://internal.example/v2/x") is None
    assert proxy_for("https://api.internal.example/v2/x") is None
    assert proxy_for("https://a.corp.example/v2/x") is None
    assert proxy_for("http://127.0.0.1:8181/v2/x") is None  # loopback: always direct
    # The sandbox on loopback is reached directly even with a proxy set.
    path = write_csv(tmp_path / "p.csv", [["to", "body"], [number(1), "through no proxy"]])
    assert kwa("reply", "--batch", str(path)).exit_code == 0
    assert box_env.state.count == 1
    bad = kwa("reply", "--batch", str(path), "--ca-bundle", str(tmp_path / "missing.pem"), "-o", "plain")
    assert bad.exit_code == 2 and "CA_BUNDLE_INVALID" in bad.stderr and box_env.state.count == 1


class _Accepting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = b'{"code":"WA202","message":"Request Accepted","data":{"message_id":"wamid.TLS"},"error":{}}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_tls_with_ca_bundle(kwa, tmp_path, monkeypatch):
    import shutil
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KALEYRA_BASE_URL", f"https://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("KALEYRA_SID", "HXAP16TEST0097IN")
        monkeypatch.setenv("KALEYRA_API_KEY", "Aq7Zx1Sec4etKey9Test0000000000003")
        monkeypatch.setenv("KALEYRA_WA_NUMBER", "+919000012345")
        path = write_csv(tmp_path / "t.csv", [["to", "body"]] + [[number(i), "over TLS"] for i in range(5)])
        trusted = kwa("reply", "--batch", str(path), "--ca-bundle", str(cert), "--json")
        assert trusted.exit_code == 0, trusted.output
        assert {r["message_id"] for r in json_lines(trusted.stdout)[0]} == {"wamid.TLS"}
        # An untrusted certificate fails every row alike: the batch stops (exit 8) with nothing sent.
        untrusted = kwa("reply", "--batch", str(path), "--concurrency", "1", "--json")
        assert untrusted.exit_code == 8, untrusted.output
        rows, summary = json_lines(untrusted.stdout)
        assert summary["stopped"]["code"] == "TLS_ERROR" and "--ca-bundle" in summary["stopped"]["hint"]
        assert [(r["status"], r["code"]) for r in rows] == [("failed", "TLS_ERROR")] + [("skipped", "BATCH_STOPPED")] * 4
    finally:
        server.shutdown()


def test_a_full_disk_stops_the_batch_and_says_so(box, tmp_path):
    from kaleyra_cli.batch import BatchSender, BatchSource, ResultsJournal, plan_batch
    from kaleyra_cli.client import build_headers, reply_url

    class FullDisk(ResultsJournal):
        def record(self, line):
            if line["row"] > 3:
                raise OSError(28, "No space left on device")
            return super().record(line)

    path = write_csv(tmp_path / "f.csv", [["to", "body"]] + [[number(i), f"r{i}"] for i in range(50)])
    with BatchSource(str(path)) as source:
        plan = plan_batch(source)
    journal = FullDisk(tmp_path / "r.jsonl")
    journal.open()
    sender = BatchSender(url=reply_url(box.base_url, box.sid, box.wa_number), headers=build_headers(box.api_key), concurrency=1, rate=0, journal=journal)
    stats = sender.run(plan)
    journal.finish(clean=False)
    plan.close()
    assert sender.stopped is not None and sender.stopped.code == "RESULTS_UNWRITABLE" and int(sender.stopped.exit_code) == 10
    assert "No space left on device" in sender.stopped.message
    assert stats.done == 50 and stats.counts["accepted"] <= 5 and stats.counts["skipped"] >= 45
    assert (tmp_path / "r.jsonl.inflight").exists()  # --resume will know which rows were in flight
