"""``kwa --help`` and every command's help: examples shown as written, no text lost to Rich markup.

Typer renders help with Rich markup: ``[default: 30]`` in a help string is read as a style tag and
silently dropped, and an epilog whose lines are all indented gets dedented. These tests walk
every command so a new one is checked too.
"""

from __future__ import annotations

import re

import pytest
import typer.main

from kaleyra_cli.cli import app


def _commands() -> list[tuple[list[str], object]]:
    found: list[tuple[list[str], object]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()
IDS = [" ".join(["kwa", *path]) for path, _ in COMMANDS]


@pytest.fixture
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping: a help text is one line


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_help_has_examples_shown_as_written(kwa, path, command):
    result = kwa(*path, "--help")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Examples:"), None)
    assert start is not None, f"kwa {' '.join(path)} --help has no Examples: section"
    examples = [line for line in lines[start + 1 :] if line.strip()][:1]
    # Rich pads the epilog by one column; the examples keep their own two-space indent.
    assert examples and re.match(r"^ {3}\S", examples[0]), examples
    assert examples[0].strip().startswith(("kwa ", "SID=", "echo ", "printf ")), examples


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_no_help_text_is_lost_to_rich_markup(kwa, wide, path, command):
    result = kwa(*path, "--help")
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stdout.split())
    texts = [getattr(p, "help", None) or "" for p in getattr(command, "params", [])]
    texts += [getattr(command, "help", None) or "", getattr(command, "epilog", None) or ""]
    for text in texts:
        for bracketed in re.findall(r"\[[^\]\[]+\]", text):
            assert " ".join(bracketed.split()) in shown, (
                f"{bracketed!r} from a help text of kwa {' '.join(path)} is not shown: Rich markup read it as a tag. "
                "Write '(default: X)', or pass show_default='X' to the option."
            )
