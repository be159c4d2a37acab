"""Crash safety: ``kill -9`` mid-batch then ``--resume``; Ctrl-C / SIGTERM stop cleanly and resume.

kwa runs in a subprocess against a sandbox in this process (loopback), so the sandbox's record
proves what reached the API, whatever happened to kwa.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kaleyra_cli.sandbox import running_sandbox

from .conftest import number, read_results, write_csv

KWA = [sys.executable, "-m", "kaleyra_cli"]


def _rows(path: Path, n: int) -> Path:
    return write_csv(path, [["id", "to", "body", "ref"]] + [[f"id-{i}", number(i % 10_000), f"row {i}", f"ref-{i}"] for i in range(n)])


def _env(box) -> dict[str, str]:
    env = dict(os.environ)
    env.update(box.env)
    env["CI"] = "true"
    return env


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def _wait_for_lines(path: Path, proc: subprocess.Popen, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _lines(path) < at_least:
        assert proc.poll() is None, f"kwa ended before {at_least} rows: {proc.returncode}"
        assert time.monotonic() < deadline, "kwa did not progress"
        time.sleep(0.01)


@pytest.mark.slow
def test_kill_9_then_resume_sends_every_row_exactly_once(tmp_path):
    n = 5_000
    rows = _rows(tmp_path / "rows.csv", n)
    results = tmp_path / "results.jsonl"
    args = [*KWA, "reply", "--batch", str(rows), "--rate", "0", "--concurrency", "32", "--results", str(results), "-q", "-o", "plain"]
    with running_sandbox() as box:
        proc = subprocess.Popen(args, env=_env(box), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_for_lines(results, proc, 1_000)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        assert (tmp_path / "results.jsonl.inflight").exists()
        done_before = _lines(results)
        assert done_before < n, "the batch finished before the kill: nothing was tested"

        resumed = subprocess.run([*args[:-3], "--resume", "-o", "plain"], env=_env(box), capture_output=True, text=True, timeout=120)
        records = box.state.messages()

    final = read_results(results)
    assert len(final) == n and sorted(line["row"] for line in final) == list(range(1, n + 1))
    status = Counter(line["status"] for line in final)
    unknown = sorted(line["row"] for line in final if line["status"] == "unknown")
    print(f"\nkill -9 after {done_before} rows; final {dict(status)}; unknown rows {unknown[:10]}")
    assert set(status) <= {"accepted", "unknown"}, status
    assert all(line["code"] == "IN_FLIGHT_AT_CRASH" for line in final if line["status"] == "unknown")
    assert resumed.returncode == (10 if unknown else 0), resumed.stderr
    if unknown:
        # Reported by row number (the first ones) when the resume starts.
        assert "recorded unknown: rows " + ", ".join(map(str, unknown[:5])) in resumed.stderr
    assert len(unknown) <= 32  # at most one per worker was in flight

    sent = Counter(r["extra_info"]["ref"] for r in records)
    assert max(sent.values()) == 1, [ref for ref, count in sent.items() if count > 1][:5]
    by_ref = {r["extra_info"]["ref"]: r["message_id"] for r in records}
    for line in final:
        ref = f"ref-{line['row'] - 1}"
        if line["status"] == "accepted":
            assert by_ref.get(ref) == line["message_id"], line
    assert len(records) == status["accepted"] + sum(1 for row in unknown if f"ref-{row - 1}" in by_ref)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_finishes_in_flight_writes_the_summary_and_exits_130(tmp_path, sig):
    n = 400
    rows = _rows(tmp_path / "rows.csv", n)
    results = tmp_path / "results.jsonl"
    args = [*KWA, "reply", "--batch", str(rows), "--rate", "0", "--concurrency", "4", "--results", str(results), "--json"]
    with running_sandbox(latency_ms=20) as box:
        proc = subprocess.Popen(args, env=_env(box), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_lines(results, proc, 40)
            proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, stderr
        summary = json.loads(stdout.splitlines()[-1])
        assert summary["summary"] and summary["stopped"]["reason"] == "interrupted" and summary["exit_code"] == 130
        assert summary["skipped"] > 0 and summary["accepted"] + summary["skipped"] == n
        lines = read_results(results)
        assert len(lines) == n and not (tmp_path / "results.jsonl.inflight").exists()
        assert {line["code"] for line in lines if line["status"] == "skipped"} == {"INTERRUPTED"}

        resumed = subprocess.run([*args, "--resume"], env=_env(box), capture_output=True, text=True, timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        refs = Counter(r["extra_info"]["ref"] for r in box.state.messages())
    assert len(refs) == n and set(refs.values()) == {1}
    assert {line["status"] for line in read_results(results)} == {"accepted"} and len(read_results(results)) == n
