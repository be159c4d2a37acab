"""Bounded reads of the text inputs kwa takes from files and stdin (issue 6).

A body, payload, key, ``.env`` or config file is at most kilobytes; ``--body-file /dev/zero``,
``yes | kwa reply -`` or a mistyped path to a disk image must end with a clear error, not with
all memory gone. Too large is reported as an :class:`OSError` (``EFBIG``), so every caller's
existing "cannot read FILE: reason" handling applies.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TextIO

#: Largest text input read, in bytes (characters for streams): far above any legitimate one.
MAX_INPUT_BYTES = 1024 * 1024


def too_large(limit: int = MAX_INPUT_BYTES) -> OSError:
    return OSError(errno.EFBIG, f"larger than {limit // 1024} KiB, more than kwa reads")


def read_bytes_limited(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, at most ``limit``. Raises ``OSError`` (``EFBIG`` when larger)."""
    with Path(path).open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    return data


def read_text_limited(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> str:
    """``path`` as UTF-8 text (a BOM dropped), at most ``limit`` bytes. Raises ``OSError``, ``UnicodeDecodeError``."""
    return read_bytes_limited(path, limit).decode("utf-8-sig")


def read_stream_limited(stream: TextIO, limit: int = MAX_INPUT_BYTES) -> str:
    """All of ``stream`` (stdin), at most ``limit`` characters. Raises ``OSError``, ``UnicodeDecodeError``."""
    text = stream.read(limit + 1)
    if len(text) > limit:
        raise too_large(limit)
    return text
