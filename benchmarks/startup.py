"""Start-up cost of kwa: median wall time and peak memory of short commands (issue 7).

Each case runs N times as a fresh process (after one warm-up run; the cases take turns, one
run each per round) and reports the median and
fastest wall time and the peak resident memory (``ru_maxrss`` of that child, from ``wait4``).
Beside kwa it times two floors: ``python -c pass`` (the interpreter alone) and
``python -c "import typer, httpx, rich"`` (the libraries kwa is built on), so the figures mean
something on any machine. One case sends a real reply to a ``kwa sandbox serve`` that this
script starts on loopback (port 0) and stops at the end.

``kwa --version`` alone answers before Typer is imported; ``kwa config path`` shows what the
smallest command costs through Typer.

Run it with the interpreter of the environment kwa is installed in::

    python benchmarks/startup.py            # 21 runs per case
    python benchmarks/startup.py -n 51 --json

Targets (issue 7): ``kwa --version`` median under 100 ms; one ``kwa reply`` to a running sandbox
under 1.5x the import floor. The exit code is 0 when both are met, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

VERSION_TARGET_MS = 100.0
REPLY_FLOOR_RATIO = 1.5
TO = "+919876543210"


@dataclass
class Figure:
    case: str
    command: str
    runs: int
    median_ms: float
    min_ms: float
    peak_rss_mb: float


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, int, str]:
    """Run ``argv`` once: (wall seconds, peak RSS in MB, exit code, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    # wait4 gives this child's own rusage; the outputs here are far below a pipe's buffer.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.stdout:
        proc.stdout.read()
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return wall, rss_mb, proc.returncode, stderr


def measure(cases: list[tuple[str, list[str], dict[str, str]]], cwd: str, runs: int) -> list[Figure]:
    """Time every case ``runs`` times, round-robin (one run of each case per round), so a change
    in the machine's load during the benchmark touches every case alike."""
    for case, argv, env in cases:  # warm-up: page cache and .pyc files; and a failing case stops here
        _, _, code, stderr = run_once(argv, env, cwd)
        if code != 0:
            raise SystemExit(f"{case}: {' '.join(argv)} exited {code}:\n{stderr}")
    walls: dict[str, list[float]] = {case: [] for case, _, _ in cases}
    peaks: dict[str, float] = {case: 0.0 for case, _, _ in cases}
    for _ in range(runs):
        for case, argv, env in cases:
            wall, rss, code, stderr = run_once(argv, env, cwd)
            if code != 0:
                raise SystemExit(f"{case}: {' '.join(argv)} exited {code}:\n{stderr}")
            walls[case].append(wall)
            peaks[case] = max(peaks[case], rss)
    figures = []
    for case, argv, _ in cases:
        shown = " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a) for a in argv)
        figures.append(Figure(case, shown, runs, statistics.median(walls[case]) * 1000, min(walls[case]) * 1000, peaks[case]))
    return figures


def start_sandbox(kwa: str, env: dict[str, str], cwd: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``kwa sandbox serve --port 0`` on loopback; returns the process and its ``export`` lines."""
    proc = subprocess.Popen(
        [kwa, "sandbox", "serve", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    from kaleyra_cli.sandbox import read_exports

    assert proc.stderr is not None
    exports = read_exports(proc.stderr)
    if "KALEYRA_BASE_URL" not in exports:
        proc.kill()
        raise SystemExit(f"kwa sandbox serve did not announce its address: {proc.stderr.read()}")
    return proc, exports


def find_kwa(python: str) -> str:
    beside = Path(python).parent / "kwa"
    if beside.exists():
        return str(beside)
    found = shutil.which("kwa")
    if not found:
        raise SystemExit("kwa is not installed beside this Python nor on PATH; pass --kwa PATH")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=21, help="timed runs per case (default 21)")
    parser.add_argument("--kwa", help="the kwa executable (default: beside this Python, else on PATH)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the floors (default: this one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    kwa = args.kwa or find_kwa(args.python)

    with tempfile.TemporaryDirectory(prefix="kwa-bench-") as home:
        # No config file, no .env, no state from the developer's shell: every run does the same work.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KALEYRA_", "KWA_", "GITHUB_"))}
        env.update(KWA_CONFIG=str(Path(home) / "config.toml"), KWA_STATE_DIR=str(Path(home) / "state"), NO_COLOR="1")
        env.pop("CI", None)
        server, exports = start_sandbox(kwa, env, home)
        try:
            send_env = {**env, **exports}
            cases: list[tuple[str, list[str], dict[str, str]]] = [
                ("python -c pass (interpreter)", [args.python, "-c", "pass"], env),
                ("import floor", [args.python, "-c", "import typer, httpx, rich"], env),
                ("kwa --version", [kwa, "--version"], env),
                ("kwa config path (smallest command)", [kwa, "config", "path"], env),
                ("kwa --help", [kwa, "--help"], env),
                ("kwa validate", [kwa, "validate", "--to", TO, "hi"], env),
                ("kwa reply --dry-run", [kwa, "reply", "--dry-run", "--to", TO, "-c", "wamid.TEST", "hi"], env),
                ("kwa reply (to a running sandbox)", [kwa, "reply", "--to", TO, "-c", "wamid.TEST", "hi"], send_env),
            ]
            figures = measure(cases, home, args.runs)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    by_case = {f.case: f for f in figures}
    floor = by_case["import floor"].median_ms
    version = by_case["kwa --version"].median_ms
    reply = by_case["kwa reply (to a running sandbox)"].median_ms
    checks = [
        (f"kwa --version median {version:.0f} ms < {VERSION_TARGET_MS:.0f} ms", version < VERSION_TARGET_MS),
        (
            f"kwa reply to a running sandbox {reply:.0f} ms < {REPLY_FLOOR_RATIO}x import floor "
            f"({REPLY_FLOOR_RATIO * floor:.0f} ms; ratio {reply / floor:.2f})",
            reply < REPLY_FLOOR_RATIO * floor,
        ),
    ]
    if args.json:
        print(json.dumps({"figures": [asdict(f) for f in figures], "targets": [{"check": c, "met": ok} for c, ok in checks]}, indent=2))
    else:
        print(f"kwa start-up: {args.runs} runs per case, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print(f"{'case':<36} {'median ms':>10} {'min ms':>8} {'x floor':>8} {'peak RSS MB':>12}")
        for f in figures:
            print(f"{f.case:<36} {f.median_ms:>10.1f} {f.min_ms:>8.1f} {f.median_ms / floor:>8.2f} {f.peak_rss_mb:>12.1f}")
        print()
        for check, ok in checks:
            print(("met:     " if ok else "NOT MET: ") + check)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
