"""Batch throughput, memory and pacing against the sandbox, beside an ``xargs -P 16 curl`` loop.

Loopback only: starts ``kwa sandbox serve --port 0`` in a subprocess, generates rows with unique
recipients and refs, runs ``kwa reply --batch`` in a subprocess, and checks that the sandbox
recorded every row exactly once and that the results file has one line per row.

    python benchmarks/batch.py                      # 20,000 rows at --rate 0 --concurrency 32, then 2,000 via curl
    python benchmarks/batch.py --rows 100000 --compare-rss   # memory: peak RSS of 100,000 rows vs 1,000
    python benchmarks/batch.py --rate 80 --seconds 20        # pacing: the achieved rate over 20 s

Peak RSS is the kwa process's own (``os.wait4`` rusage of that child), not the sandbox's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KWA = [sys.executable, "-m", "kaleyra_cli"]


def start_sandbox() -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KALEYRA_", "KWA_"))}
    proc = subprocess.Popen([*KWA, "sandbox", "serve", "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    from kaleyra_cli.sandbox import read_exports

    assert proc.stderr is not None
    exports = read_exports(proc.stderr)
    if "KALEYRA_WA_NUMBER" not in exports:
        proc.kill()
        raise SystemExit("the sandbox did not start")
    return proc, exports


def sandbox_records(base_url: str, *, clear: bool = False) -> list[dict]:
    with urllib.request.urlopen(f"{base_url}/_sandbox/messages", timeout=60) as response:
        records = json.loads(response.read())
    if clear:
        request = urllib.request.Request(f"{base_url}/_sandbox/messages", method="DELETE")
        urllib.request.urlopen(request, timeout=60).read()
    return records


def write_rows(path: Path, n: int, tag: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "to", "body", "ref"])
        for i in range(n):
            writer.writerow([f"{tag}-{i}", f"+9198{i % 100_000_000:08d}", f"Benchmark row {i}: your order has shipped", f"{tag}-{i}"])


def run_kwa(rows_file: Path, results: Path, env: dict[str, str], *, rate: float, concurrency: int) -> dict:
    """Run one batch; returns its summary, wall time and peak RSS (MiB)."""
    args = [*KWA, "reply", "--batch", str(rows_file), "--rate", str(rate), "--concurrency", str(concurrency), "--results", str(results), "--force", "--json", "-q"]
    # stdout (one JSON line per row, then the summary) goes to a file, so that no reader in this
    # process competes with kwa for the CPU.
    out_path = results.with_suffix(".stdout")
    err_path = results.with_suffix(".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"kwa exited {proc.returncode}: {err_path.read_text()[-2000:]}")
    with open(out_path, "rb") as out:
        out.seek(max(0, out_path.stat().st_size - 4096))
        last = out.read().splitlines()[-1]
    summary = json.loads(last)
    summary["wall_s"] = wall
    summary["peak_rss_mib"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return summary


def check_once(records: list[dict], results: Path, n: int, tag: str) -> None:
    refs = [r["extra_info"].get("ref") for r in records if str(r["extra_info"].get("ref", "")).startswith(tag + "-")]
    lines = sum(1 for _ in open(results, encoding="utf-8"))
    print(f"  check: sandbox recorded {len(refs)} rows, {len(set(refs))} distinct; results file {lines} lines", flush=True)
    if len(refs) != n or len(set(refs)) != n or lines != n:
        raise SystemExit("  FAILED: not every row accepted exactly once")


def run_curl(base_url: str, env: dict[str, str], n: int, work: Path) -> float:
    """The same kind of rows sent by ``xargs -P 16 curl``; returns messages per second."""
    if not shutil.which("curl") or not shutil.which("xargs"):
        print("  curl or xargs not found: skipped")
        return 0.0
    bodies = work / "curl"
    bodies.mkdir(exist_ok=True)
    for i in range(n):
        doc = {
            "messaging_object": {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": f"+9197{i:08d}",
                "type": "text",
                "text": {"preview_url": False, "body": f"Benchmark row {i}: your order has shipped"},
            },
            "extra_info": {"ref": f"curl-{i}"},
        }
        (bodies / f"{i}.json").write_text(json.dumps(doc))
    url = f"{base_url}/v2/{env['KALEYRA_SID']}/whatsapp/{env['KALEYRA_WA_NUMBER']}/messages"
    command = (
        f"seq 0 {n - 1} | xargs -P 16 -I{{}} curl -s -o /dev/null -w '%{{http_code}}\\n' "
        f"-H 'api-key: {env['KALEYRA_API_KEY']}' -H 'Content-Type: application/json' "
        f"--data-binary @{bodies}/{{}}.json '{url}'"
    )
    started = time.perf_counter()
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    codes = out.split()
    accepted = codes.count("202")
    print(f"  xargs -P 16 curl: {n} rows in {elapsed:.2f} s = {n / elapsed:.0f} msg/s ({accepted} accepted)", flush=True)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="rows for the kwa run (default 20,000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="--rate for kwa (default 0 = unlimited)")
    parser.add_argument("--seconds", type=float, default=None, help="pacing mode: rows = rate x seconds; reports the achieved rate")
    parser.add_argument("--curl-rows", type=int, default=2_000, help="rows for the curl loop (0 = skip)")
    parser.add_argument("--compare-rss", action="store_true", help="also run 1,000 rows and compare peak RSS")
    args = parser.parse_args()
    if args.rows > 1_000_000 or args.curl_rows > 20_000:
        raise SystemExit("bounded: at most 1,000,000 kwa rows and 20,000 curl rows")

    server, exports = start_sandbox()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KALEYRA_", "KWA_", "CI"))}
    env.update(exports)
    env["CI"] = "true"  # no progress bar in the measured process
    work = Path(tempfile.mkdtemp(prefix="kwa-bench-"))
    try:
        print(f"sandbox at {exports['KALEYRA_BASE_URL']}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
        if args.seconds:
            rows = max(1, int(args.rate * args.seconds))
            write_rows(work / "pace.csv", rows, "pace")
            concurrency = args.concurrency if args.concurrency != 32 else 8
            summary = run_kwa(work / "pace.csv", work / "pace.jsonl", env, rate=args.rate, concurrency=concurrency)
            records = sandbox_records(exports["KALEYRA_BASE_URL"], clear=True)
            check_once(records, work / "pace.jsonl", rows, "pace")
            times = sorted(r["received_at"] for r in records)
            from datetime import datetime

            first, last = (datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in (times[0], times[-1]))
            achieved = (rows - 1) / (last - first) if last > first else float("inf")
            print(
                f"pacing: --rate {args.rate:g} --concurrency {concurrency}: {rows} rows; "
                f"sandbox saw {achieved:.2f} msg/s from first to last ({100 * (achieved / args.rate - 1):+.1f} %); "
                f"kwa's summary {summary['rate']:.2f} msg/s over {summary['elapsed_s']:.1f} s",
                flush=True,
            )
            return

        if args.compare_rss:
            write_rows(work / "small.csv", 1_000, "small")
            small = run_kwa(work / "small.csv", work / "small.jsonl", env, rate=args.rate, concurrency=args.concurrency)
            check_once(sandbox_records(exports["KALEYRA_BASE_URL"], clear=True), work / "small.jsonl", 1_000, "small")
            print(f"kwa 1,000 rows: peak RSS {small['peak_rss_mib']:.1f} MiB", flush=True)

        write_rows(work / "rows.csv", args.rows, "bench")
        summary = run_kwa(work / "rows.csv", work / "rows.jsonl", env, rate=args.rate, concurrency=args.concurrency)
        check_once(sandbox_records(exports["KALEYRA_BASE_URL"], clear=True), work / "rows.jsonl", args.rows, "bench")
        kwa_rate = summary["rate"]
        print(
            f"kwa --rate {args.rate:g} --concurrency {args.concurrency}: {args.rows} rows; sending {summary['elapsed_s']:.2f} s = "
            f"{kwa_rate:.0f} msg/s; whole command (start, validation, sending) {summary['wall_s']:.2f} s = "
            f"{args.rows / summary['wall_s']:.0f} msg/s; peak RSS {summary['peak_rss_mib']:.1f} MiB",
            flush=True,
        )
        if args.compare_rss:
            print(f"peak RSS: {args.rows} rows {summary['peak_rss_mib']:.1f} MiB vs 1,000 rows {small['peak_rss_mib']:.1f} MiB "
                  f"(+{summary['peak_rss_mib'] - small['peak_rss_mib']:.1f} MiB)", flush=True)
        if args.curl_rows:
            curl_rate = run_curl(exports["KALEYRA_BASE_URL"], env, args.curl_rows, work)
            sandbox_records(exports["KALEYRA_BASE_URL"], clear=True)
            if curl_rate:
                print(f"ratio: kwa sending {kwa_rate / curl_rate:.1f}x, whole command {args.rows / summary['wall_s'] / curl_rate:.1f}x the curl loop", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
