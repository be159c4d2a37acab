"""``kwa reply --sandbox``, ``kwa sandbox numbers`` and ``kwa sandbox serve`` (issue 3)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from kaleyra_cli.sandbox import MAGIC_NUMBERS, read_exports


def test_reply_sandbox_prints_an_accepted_message_id(kwa):
    result = kwa("reply", "--sandbox", "--to", "+919876543210", "--context", "wamid.TEST", "hi")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"wamid\.[A-Za-z0-9+/=]{20,}\n", result.stdout)


def test_reply_sandbox_json_and_table(kwa):
    doc = kwa("reply", "--sandbox", "--to", "+919876543210", "--json", "hi").json()
    assert doc["ok"] is True and doc["code"] == "WA202" and doc["message_id"].startswith("wamid.")
    table = kwa("reply", "--sandbox", "--to", "+919876543210", "-o", "table", "hi")
    assert table.exit_code == 0 and "Reply accepted" in table.stdout


def test_numbers_json_lists_every_magic_number(kwa):
    result = kwa("sandbox", "numbers", "--json")
    assert result.exit_code == 0, result.output
    rows = result.json()
    assert [r["number"] for r in rows] == [m.number for m in MAGIC_NUMBERS]
    assert set(rows[0]) == {"number", "name", "http_status", "code", "exit_code", "simulates"}


def _magic_rows():
    from typer.testing import CliRunner

    from kaleyra_cli.cli import app

    result = CliRunner().invoke(app, ["sandbox", "numbers", "--json"])
    return json.loads(result.stdout)


@pytest.mark.parametrize("row", _magic_rows(), ids=lambda r: r["name"])
def test_every_magic_number_ends_in_its_exit_code(kwa, row, monkeypatch):
    # Retry-After waits (1 s each) are real here: the whole stack runs, sleeps included.
    result = kwa("reply", "--sandbox", "--to", row["number"], "--timeout", "2", "--json", "hi")
    assert result.exit_code == row["exit_code"], result.output
    doc = result.json()
    assert doc["ok"] is False and doc["exit_code"] == row["exit_code"]
    if row["code"]:
        assert doc["code"] == row["code"]
    assert "Traceback" not in result.stderr


def test_dry_run_sandbox_needs_no_server(kwa):
    result = kwa("reply", "--sandbox", "--dry-run", "--to", "+919876543210", "hi")
    assert result.exit_code == 0, result.output
    assert "/v2/HXSB16SANDBX97IN/whatsapp/+12025550100/messages" in result.stdout


def _start_server() -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KALEYRA_", "KWA_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaleyra_cli", "sandbox", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    exports = read_exports(proc.stderr)
    assert {"KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY", "KALEYRA_WA_NUMBER"} <= set(exports), exports
    return proc, exports["KALEYRA_BASE_URL"], exports


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_in_background_then_reply_then_stop_cleanly(kwa, monkeypatch, sig):
    proc, base_url, exports = _start_server()
    try:
        assert base_url.startswith("http://127.0.0.1:")
        for name, value in exports.items():
            monkeypatch.setenv(name, value)
        result = kwa("reply", "--to", "+919876543210", "--context", "wamid.TEST", "hello from CI")
        assert result.exit_code == 0, result.output
        message_id = result.stdout.strip()
        records = httpx.get(f"{base_url}/_sandbox/messages", params={"to": "+919876543210"}).json()
        assert [(r["message_id"], r["body"], r["context_message_id"]) for r in records] == [
            (message_id, "hello from CI", "wamid.TEST")
        ]
    finally:
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode in (0, 130), stderr
    assert "Traceback" not in stderr
