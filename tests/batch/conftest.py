"""Fixtures for batch tests: an in-process sandbox (loopback) and its credentials in the environment.

Every batch test sends to loopback only: the sandbox started here, or a small server of the test's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaleyra_cli.sandbox import SandboxHandle, running_sandbox


@pytest.fixture
def box() -> Iterator[SandboxHandle]:
    """A sandbox on a free loopback port for this test."""
    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def box_env(box: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> SandboxHandle:
    """The sandbox's base URL and account in ``KALEYRA_*`` (as ``kwa sandbox serve`` prints them)."""
    for name, value in box.env.items():
        monkeypatch.setenv(name, value)
    return box


def number(i: int) -> str:
    """A distinct, valid Indian mobile number per ``i`` (0 to 9999)."""
    return f"+91987654{i:04d}"


def write_csv(path: Path, rows: list[list[str]], *, delimiter: str = ",", bom: bool = False) -> Path:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def json_lines(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``--json`` output: the row lines and the final summary line."""
    docs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert docs and docs[-1].get("summary") is True, stdout
    return docs[:-1], docs[-1]
