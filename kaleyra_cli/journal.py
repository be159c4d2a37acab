"""Local idempotency journal for ``--idempotency-key`` (DESIGN section 8).

Kaleyra's API has no idempotency key (``spec/API_NOTES.md``), and webhooks are delivered at
least once, so a handler may be called twice for one incoming message. The journal is a
SQLite file (standard library) in the state folder; one row per key:

``key`` (text), ``status`` (``in_flight`` | ``accepted`` | ``unknown``), ``message_id``,
``fingerprint`` (SHA-256 of the request body), ``pid`` (the claiming process), ``created_at``
and ``updated_at`` (Unix seconds).

A key is claimed in one ``BEGIN IMMEDIATE`` transaction before the request leaves, so of two
processes racing on one key exactly one sends; the other waits for the outcome. A request that
provably did not reach Kaleyra (or was rejected) releases its key so that a later run can send.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

JOURNAL_NAME = "journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    message_id TEXT,
    fingerprint TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Entry:
    """A journal row. ``status`` is ``in_flight``, ``accepted`` or ``unknown``; times in Unix seconds."""

    key: str
    status: str
    message_id: str | None
    fingerprint: str
    pid: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Claim:
    """The result of :meth:`Journal.claim`: ``owned`` means this process must send;
    otherwise ``entry`` is the earlier attempt (accepted, or unknown)."""

    owned: bool
    entry: Entry | None = None


def fingerprint(body: bytes) -> str:
    """SHA-256 hex digest of the exact request body."""
    return hashlib.sha256(body).hexdigest()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Journal:
    """The idempotency journal at ``folder/journal.sqlite3`` (folder created 0700 if missing).

    Raises :class:`UsageError` when the folder or file cannot be used.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL_NAME
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # isolation_level=None: explicit BEGIN IMMEDIATE, so the claim is one atomic step.
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._setup()
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(
                f"cannot use the idempotency journal {self.path}: {exc}",
                hint="Set KWA_STATE_DIR to a writable folder.",
                code="JOURNAL_ERROR",
            ) from None

    def _setup(self, attempts: int = 50) -> None:
        # Processes racing to create the journal can see "database is locked" while another one
        # switches it to WAL, which the busy timeout does not always cover: try again briefly.
        for attempt in range(attempts):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> Entry | None:
        row = self._db.execute(
            "SELECT key, status, message_id, fingerprint, pid, created_at, updated_at FROM replies WHERE key = ?", (key,)
        ).fetchone()
        return Entry(*row) if row else None

    def claim(self, key: str, print_: str, *, wait: float = 60.0, poll: float = 0.05, retry_unknown: bool = False) -> Claim:
        """Claim ``key`` for sending, or return the earlier attempt.

        If another live process holds the key in flight, wait up to ``wait`` seconds for its
        outcome. An in-flight row whose process is gone (a crash mid-send) becomes ``unknown``.
        ``retry_unknown`` lets this process take over an ``unknown`` key (it may send twice).
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    entry = self.get(key)
                    now = time.time()
                    if entry is not None and entry.status == "in_flight" and not _pid_alive(entry.pid):
                        self._db.execute("UPDATE replies SET status = 'unknown', updated_at = ? WHERE key = ?", (now, key))
                        entry = self.get(key)
                    if entry is None or (entry.status == "unknown" and retry_unknown):
                        self._db.execute(
                            "INSERT OR REPLACE INTO replies VALUES (?, 'in_flight', NULL, ?, ?, ?, ?)",
                            (key, print_, os.getpid(), now, now),
                        )
                        self._db.execute("COMMIT")
                        return Claim(True)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise UsageError(f"the idempotency journal {self.path} failed: {exc}", code="JOURNAL_ERROR") from None
            if entry.status != "in_flight" or time.monotonic() > deadline:
                return Claim(False, entry)
            time.sleep(poll)

    # A write that fails here (a full disk, a read-only folder) never loses what is recorded: the
    # row stays "in_flight" under this process's pid, which a later run reads as "unknown" once the
    # pid is gone, so it refuses to send (exit 9) rather than risk sending twice.

    def accept(self, key: str, message_id: str | None) -> None:
        """Record that ``key`` was accepted with ``message_id``. Raises :class:`UsageError`
        (``JOURNAL_ERROR``) when the journal cannot be written; the key then reads as unknown."""
        try:
            self._update(key, "accepted", message_id)
        except sqlite3.Error as exc:
            raise UsageError(
                f"the idempotency journal {self.path} could not record key {key!r}: {exc}",
                hint="A later run with this key will refuse to send (outcome unknown) rather than send twice; free space or set KWA_STATE_DIR.",
                code="JOURNAL_ERROR",
            ) from None

    def mark_unknown(self, key: str) -> None:
        """Record that the outcome for ``key`` is unknown (it may have been accepted).
        Best effort: if the write fails, the in-flight row reads as unknown anyway once this process ends."""
        try:
            self._update(key, "unknown", None)
        except sqlite3.Error:
            pass

    def release(self, key: str) -> None:
        """Forget ``key``: its request provably did not send a message, so a later run may.
        Best effort: if the write fails, the key reads as unknown later (safe: never sends twice)."""
        try:
            self._db.execute("DELETE FROM replies WHERE key = ? AND pid = ?", (key, os.getpid()))
        except sqlite3.Error:
            pass

    def _update(self, key: str, status: str, message_id: str | None) -> None:
        self._db.execute(
            "UPDATE replies SET status = ?, message_id = ?, updated_at = ? WHERE key = ?",
            (status, message_id, time.time(), key),
        )
