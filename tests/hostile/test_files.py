"""Files under a full or read-only disk: a clear error (exit 2 when nothing was sent), nothing already
recorded lost, and a reply already accepted never reported as failed (issue 6).

Full disks are simulated by making the write fail with ENOSPC (always), by ``/dev/full``, and,
where the test may mount one (root with CAP_SYS_ADMIN), by a real 256 KiB tmpfs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import MESSAGE_ID, SID, TO

ENOSPC = OSError(errno.ENOSPC, "No space left on device")
_WRITE = os.write  # patching kaleyra_cli.batch.os.write patches os.write itself


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- the config file


@pytest.mark.parametrize(("failing", "reason"), [("fsync", "No space left on device"), ("replace", "Read-only file system")])
def test_config_set_on_a_full_or_read_only_disk(kwa, tmp_path, monkeypatch, failing, reason):
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\nsid = "{SID}"\n')
    config.chmod(0o600)
    before = config.read_bytes()
    number = errno.ENOSPC if failing == "fsync" else errno.EROFS

    def fail(*args, **kwargs):
        raise OSError(number, reason)

    monkeypatch.setattr(f"kaleyra_cli.config_file.os.{failing}", fail)
    result = kwa("config", "set", "--config", str(config), "sid", "HXAP16OTHER097IN")
    assert result.exit_code == 2, result.output
    assert str(config) in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr
    assert config.read_bytes() == before  # the old file, whole
    assert leftovers(tmp_path) == []  # no temp file holding a half-written key


# --------------------------------------------------------------------------- the idempotency journal


class FullDisk:
    """A sqlite3 connection whose statements starting with ``verb`` fail as on a full disk."""

    def __init__(self, connection: sqlite3.Connection, verb: str) -> None:
        self._connection = connection
        self._verb = verb

    def execute(self, sql: str, *args):
        if sql.lstrip().upper().startswith(self._verb):
            raise sqlite3.OperationalError("database or disk is full")
        return self._connection.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._connection, name)


_CONNECT = sqlite3.connect


def full_disk_on(monkeypatch, verb: str | None) -> None:
    """From now on, the journal's statements starting with ``verb`` fail (``None``: none do)."""
    real = _CONNECT
    if verb is None:
        monkeypatch.setattr("kaleyra_cli.journal.sqlite3.connect", real)
    else:
        monkeypatch.setattr("kaleyra_cli.journal.sqlite3.connect", lambda *a, **k: FullDisk(real(*a, **k), verb))


def test_journal_full_before_sending_is_exit_2_and_sends_nothing(kwa, creds, httpx_mock, monkeypatch):
    full_disk_on(monkeypatch, "INSERT")
    result = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN1", "--json", "hi")
    assert result.exit_code == 2, result.output
    assert result.json()["code"] == "JOURNAL_ERROR" and "full" in result.json()["message"]
    assert httpx_mock.get_requests() == []


def test_journal_in_a_file_instead_of_a_folder_is_exit_2(kwa, creds, httpx_mock, monkeypatch, tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KWA_STATE_DIR", str(blocker))
    result = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN2", "--json", "hi")
    assert result.exit_code == 2, result.output
    assert result.json()["code"] == "JOURNAL_ERROR" and "KWA_STATE_DIR" in result.json()["hint"]
    assert httpx_mock.get_requests() == []


def test_journal_full_after_an_accepted_send_still_reports_it_and_never_sends_twice(kwa, creds, scenario, httpx_mock, monkeypatch):
    """Was an internal error (exit 1) after the message had been accepted: the id was lost."""
    scenario("accepted")
    full_disk_on(monkeypatch, "UPDATE")
    result = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN3", "hi")
    full_disk_on(monkeypatch, None)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == MESSAGE_ID
    assert "could not record" in result.stderr and "refuse" in result.stderr
    # The row is still there, in flight under the first run's pid; once that process is gone a
    # later run sees an unknown outcome and refuses to send rather than send twice.
    _forget_owner(Path(os.environ["KWA_STATE_DIR"]) / "journal.sqlite3", "wamid.IN3")
    again = kwa("reply", "--to", TO, "--idempotency-key", "wamid.IN3", "--json", "hi")
    assert again.exit_code == 9, again.output
    assert again.json()["code"] == "IDEMPOTENCY_UNKNOWN"
    assert len(httpx_mock.get_requests()) == 1


def _forget_owner(path: Path, key: str) -> None:
    """Make the row's owner a process that has exited (as after the first run's process ended)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with contextlib.closing(sqlite3.connect(path)) as db:
        # Journal keys are scoped per account and endpoint: "<scope>:<key>".
        changed = db.execute("UPDATE replies SET pid = ? WHERE key LIKE ?", (child.pid, f"%:{key}")).rowcount
        db.commit()
    assert changed == 1


# --------------------------------------------------------------------------- stdout and $GITHUB_OUTPUT


def test_stdout_on_a_full_disk_keeps_the_message_id(tmp_path):
    """``kwa reply ... > file`` on a full disk: the reply was accepted, so exit 0 and the id on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_")}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "kaleyra_cli", "reply", "--sandbox", "--to", TO, "-c", "wamid.X", "hi"],
            stdout=full, stderr=subprocess.PIPE, env=env, cwd=tmp_path, timeout=60,
        )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "cannot write to stdout" in err and "No space left" in err
    assert "wamid." in err and "Traceback" not in err and "Exception ignored" not in err


def test_json_failure_document_on_a_full_stdout_is_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_")}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "kaleyra_cli", "reply", "--json", "--to", "12345", "hi"],
            stdout=full, stderr=subprocess.PIPE, env=env, cwd=tmp_path, timeout=60,
        )
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert '"NUMBER_NO_PLUS"' in err and "Traceback" not in err


def test_github_output_on_a_full_disk_does_not_fail_an_accepted_send(kwa, creds, scenario, monkeypatch):
    scenario("accepted")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", "/dev/full")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == MESSAGE_ID


# --------------------------------------------------------------------------- a real full disk


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs (skipped where mounting is not allowed); unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 4096)


def test_real_full_disk_config_and_journal(kwa, creds, httpx_mock, monkeypatch, tiny_tmpfs):
    config = tiny_tmpfs / "config.toml"
    config.write_text(f'[profiles.default]\nsid = "{SID}"\n')
    config.chmod(0o600)
    before = config.read_bytes()
    fill(tiny_tmpfs)
    result = kwa("config", "set", "--config", str(config), "wa_source", "zoho" * 2000)
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.stderr
    assert config.read_bytes() == before and leftovers(tiny_tmpfs) == []

    monkeypatch.setenv("KWA_STATE_DIR", str(tiny_tmpfs / "state"))
    sent = kwa("reply", "--to", TO, "--idempotency-key", "wamid.FULL", "--json", "hi")
    assert sent.exit_code == 2, sent.output
    assert sent.json()["code"] == "JOURNAL_ERROR"
    assert httpx_mock.get_requests() == []


# --------------------------------------------------------------------------- inputs that never end


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--body-file", "/dev/zero"], "body file"),
        (["--payload", "/dev/zero"], "payload file"),
        (["--api-key-file", "/dev/zero", "hi"], "--api-key-file"),
        (["--config", "/dev/zero", "hi"], "config file"),
        (["--body-file", "-"], "stdin"),
        (["--api-key-file", "-", "hi"], "stdin"),
    ],
)
def test_endless_input_is_a_clear_error_not_all_memory(kwa, creds, httpx_mock, args, words):
    """``--body-file /dev/zero`` or ``yes | kwa reply -`` read everything (exit 1, MemoryError): now at most 1 MiB."""
    stdin = "y\n" * (600 * 1024) if "-" in args else None
    to = [] if "--payload" in args else ["--to", TO]
    result = kwa("reply", *to, *args, input=stdin)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "larger than 1024 KiB" in result.stderr
    assert httpx_mock.get_requests() == []


# --------------------------------------------------------------------------- batch results and in-flight journal


def _batch(kwa, server, folder: Path, *extra: str):
    import json as _json

    rows = folder / "rows.csv"
    if not rows.exists():
        rows.write_text("to,body\n" + "".join(f"+91987654{i:04d},hi {i}\n" for i in range(20)))
    for name, value in (("KALEYRA_SID", SID), ("KALEYRA_API_KEY", "Aq7Zx1Sec4etKey9Test0000000000003"), ("KALEYRA_WA_NUMBER", "+919000012345")):
        os.environ[name] = value
    os.environ["KALEYRA_BASE_URL"] = server.url
    result = kwa("reply", "--batch", str(rows), "-o", "plain", "--rate", "0", "--concurrency", "2", "--results", str(folder / "results.jsonl"), *extra)
    sent = [_json.loads(raw.split(b"\r\n\r\n", 1)[1])["messaging_object"]["to"] for raw in server.requests]
    lines = [_json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return result, sent, lines


def _fail_writes_after(monkeypatch, count: int, which: str) -> None:
    """The batch module's ``os.write`` fails with ENOSPC after ``count`` results lines (or journal marks)."""
    import kaleyra_cli.batch as batch

    real = _WRITE
    seen = {"n": 0}

    def write(fd, data):
        is_line = data.startswith(b'{"row"')
        is_mark = data[:1].isdigit() and b"\t" in data
        if (which == "results" and is_line) or (which == "journal" and is_mark):
            seen["n"] += 1
            if seen["n"] > count:
                raise ENOSPC
        return real(fd, data)

    monkeypatch.setattr(batch.os, "write", write)


@pytest.mark.parametrize("which", ["results", "journal"])
def test_batch_on_a_full_disk_stops_keeps_its_lines_and_resumes_without_sending_twice(kwa, monkeypatch, tmp_path, which):
    from tests.hostile.servers import accept_all, serving

    for name in ("KALEYRA_SID", "KALEYRA_API_KEY", "KALEYRA_WA_NUMBER", "KALEYRA_BASE_URL"):
        monkeypatch.setenv(name, "x")  # restored after the test; _batch sets the real values
    with serving(accept_all) as server:
        _fail_writes_after(monkeypatch, 3, which)
        result, sent, lines = _batch(kwa, server, tmp_path)
        assert result.exit_code == 10, result.output
        assert "RESULTS_UNWRITABLE" in result.stderr and "No space left on device" in result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        recorded = {line["to"] for line in lines if line["status"] == "accepted"}
        assert recorded <= set(sent)  # nothing recorded that was not sent
        if which == "journal":
            # The row whose mark failed never left: not sent, so not "unknown".
            assert all(line["status"] in ("accepted", "skipped") for line in lines), lines
            assert len(sent) == 3

        import kaleyra_cli.batch as batch

        monkeypatch.setattr(batch.os, "write", _WRITE)  # space again
        again, sent_all, final = _batch(kwa, server, tmp_path, "--resume")
    assert again.exit_code in (0, 10), again.output
    assert len(sent_all) == len(set(sent_all)), "a row was sent twice"
    by_row = {line["row"]: line for line in final}
    assert sorted(by_row) == list(range(1, 21)) and len(final) == 20
    unknown = [line for line in final if line["status"] == "unknown"]
    assert all(line["status"] in ("accepted", "unknown") for line in final)
    assert len(sent_all) == 20 - (len(unknown) if which == "journal" else 0)
