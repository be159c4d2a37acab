"""Fixtures for the ``kwa config`` tests: the isolated config file, a writer for it, and a runner
whose stdin counts as a terminal (CliRunner's never does), injected through ``ctx.obj``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result


@pytest.fixture
def config_path() -> Path:
    """The config file the autouse isolation points KWA_CONFIG at (it does not exist yet)."""
    return Path(os.environ["KWA_CONFIG"])


@pytest.fixture
def write_config(config_path: Path) -> Callable[[str], Path]:
    """Write the config file by hand, mode 0600 (so no 'readable by others' warning), and return its path."""

    def write(text: str, path: Path | None = None) -> Path:
        target = path or config_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        target.chmod(0o600)
        return target

    return write


class _Live:
    """A stream that is whatever ``sys.<name>`` is when used: CliRunner swaps them during invoke."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(sys, self._name), attr)


@pytest.fixture
def kwa_tty() -> Callable[..., Result]:
    """Like ``kwa``, but the app's Environment says stdin is a terminal, so kwa prompts.

    The prompts read ``input`` (CliRunner feeds hidden prompts from it too). This goes through the
    app object in ``ctx.obj`` (hatch's pattern), the same injection point production uses.
    """
    from typer.testing import CliRunner

    from kaleyra_cli.cli import AppState, app
    from kaleyra_cli.render import Environment

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        environment = Environment(
            stdout=_Live("stdout"),  # type: ignore[arg-type]
            stderr=_Live("stderr"),  # type: ignore[arg-type]
            stdin=_Live("stdin"),  # type: ignore[arg-type]
            stdout_isatty=False,
            stderr_isatty=False,
            stdin_isatty=True,
            environ=os.environ,
        )
        result = CliRunner().invoke(app, list(args), input=input, env=env, obj=AppState(env=environment))
        exc = result.exception if not isinstance(result.exception, SystemExit) else None
        return Result(result.exit_code, result.stdout, result.stderr, exc)

    return run
