"""``--idempotency-key``: a key accepted before sends nothing; racing processes send once (DESIGN section 8)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kaleyra_cli.journal import Journal
from kaleyra_cli.sandbox import running_sandbox
from tests.conftest import MESSAGE_ID, TO


def test_repeat_prints_recorded_id_and_sends_nothing(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    first = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN1", "hi")
    second = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN1", "--json", "hi")
    assert first.exit_code == 0 and first.stdout.strip() == MESSAGE_ID
    assert second.exit_code == 0, second.output
    doc = second.json()
    assert doc["message_id"] == MESSAGE_ID and doc["repeat"] is True and doc["attempts"] == 0
    assert "repeat" in second.stderr
    assert len(httpx_mock.get_requests()) == 1


def test_rejected_request_releases_the_key(kwa, creds, scenario, httpx_mock):
    scenario("bad_payload")
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--idempotency-key", "k2", "hi").exit_code == 4
    assert kwa("reply", "--to", TO, "--idempotency-key", "k2", "hi").exit_code == 0
    assert len(httpx_mock.get_requests()) == 2


def test_unknown_outcome_blocks_a_resend_unless_retry_unsafe(kwa, creds, httpx_mock, scenario):
    import httpx

    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    assert kwa("reply", "--to", TO, "--idempotency-key", "k3", "hi").exit_code == 9
    blocked = kwa("reply", "--to", TO, "--idempotency-key", "k3", "hi")
    assert blocked.exit_code == 9 and "unknown outcome" in blocked.stderr
    assert len(httpx_mock.get_requests()) == 1
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--idempotency-key", "k3", "--retry-unsafe", "hi").exit_code == 0


def test_crashed_owner_leaves_unknown(tmp_path):
    with Journal(tmp_path) as journal:
        journal._db.execute("INSERT INTO replies VALUES ('k', 'in_flight', NULL, 'f', 999999999, 0, 0)")
        claim = journal.claim("k", "f", wait=0)
    assert not claim.owned and claim.entry.status == "unknown"


def test_empty_key_is_a_usage_error(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--idempotency-key", " ", "hi")
    assert result.exit_code == 2 and httpx_mock.get_requests() == []


def test_dry_run_does_not_touch_the_journal(kwa, creds):
    assert kwa("reply", "--to", TO, "--idempotency-key", "k4", "--dry-run", "hi").exit_code == 0
    assert not (__import__("pathlib").Path(os.environ["KWA_STATE_DIR"]) / "journal.sqlite3").exists()


@pytest.mark.slow
def test_two_processes_racing_on_one_key_send_once(tmp_path):
    with running_sandbox(latency_ms=400) as sandbox:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_")}
        env.update(sandbox.env, KWA_STATE_DIR=str(tmp_path / "state"))
        command = [sys.executable, "-m", "kaleyra_cli", "reply", "--to", TO, "--idempotency-key", "wamid.RACE", "--json", "hi"]
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [p.communicate(timeout=60) for p in procs]
        records = sandbox.state.messages()
    import json

    docs = [json.loads(out) for out, _ in outputs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert len(records) == 1
    assert {d["message_id"] for d in docs} == {records[0]["message_id"]}
    assert sorted(d["repeat"] for d in docs) == [False, True, True, True]



def test_key_reused_for_a_different_message_is_refused(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--idempotency-key", "k5", "first").exit_code == 0
    result = kwa("reply", "--to", TO, "--idempotency-key", "k5", "--json", "second")
    assert result.exit_code == 2, result.output
    doc = result.json()
    assert doc["code"] == "IDEMPOTENCY_KEY_REUSED" and MESSAGE_ID in doc["message"]
    assert len(httpx_mock.get_requests()) == 1


def test_key_counts_per_account_and_endpoint(kwa, creds, scenario, httpx_mock, monkeypatch):
    """A key accepted for one account must not make a send for another account a silent 'repeat'."""
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--idempotency-key", "k6", "hi").exit_code == 0
    monkeypatch.setenv("KALEYRA_SID", "HXOTHERACCOUNT1")
    httpx_mock.add_response(status_code=202, json={"code": "WA202", "data": {"message_id": "wamid.OTHER"}})
    result = kwa("reply", "--to", TO, "--idempotency-key", "k6", "hi")
    assert result.exit_code == 0 and result.stdout.strip() == "wamid.OTHER"
    assert len(httpx_mock.get_requests()) == 2


def test_sandbox_keys_stay_out_of_the_users_journal(kwa, creds):
    assert kwa("reply", "--sandbox", "--to", TO, "--idempotency-key", "k7", "hi").exit_code == 0
    repeat = kwa("reply", "--sandbox", "--to", TO, "--idempotency-key", "k7", "--json", "hi")
    assert repeat.exit_code == 0 and repeat.json()["repeat"] is False  # each --sandbox run is new
    assert not (__import__("pathlib").Path(os.environ["KWA_STATE_DIR"]) / "journal.sqlite3").exists()
