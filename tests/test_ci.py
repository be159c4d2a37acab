"""At home in CI (DESIGN section 8, issue 7): $GITHUB_OUTPUT, ::error:: annotations, CI set.

The sends here go through the whole real stack to the embedded sandbox (``--sandbox``) on loopback.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from kaleyra_cli.cli import AppState, _github_annotation
from kaleyra_cli.errors import KwaError
from kaleyra_cli.render import Environment
from kaleyra_cli.sandbox import MAGIC_NUMBERS

TO = "+919876543210"
WRONG_KEY = next(m.number for m in MAGIC_NUMBERS if m.code == "RBC001")


@pytest.fixture
def github(monkeypatch, tmp_path):
    """A GitHub Actions step: GITHUB_ACTIONS=true and $GITHUB_OUTPUT a temp file that already has a line."""
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("CI", "true")
    return output


@pytest.mark.parametrize("mode", [[], ["--json"], ["-o", "table"]], ids=["plain", "json", "table"])
def test_sandbox_send_appends_the_message_id_to_github_output(kwa, github, mode):
    result = kwa("reply", "--sandbox", "--to", TO, "--context", "wamid.TEST", *mode, "deploy done")
    assert result.exit_code == 0, result.output
    lines = github.read_text().splitlines()
    assert lines[0] == "earlier=1" and len(lines) == 2
    key, _, message_id = lines[1].partition("=")
    assert key == "message_id" and re.fullmatch(r"wamid\.[A-Za-z0-9+/=]{20,}", message_id)
    if mode == ["--json"]:
        assert result.json()["message_id"] == message_id
    elif not mode:
        assert result.stdout == message_id + "\n"
    assert "::error" not in result.stderr


def test_outside_github_actions_github_output_is_left_alone(kwa, github, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS")
    result = kwa("reply", "--sandbox", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert github.read_text() == "earlier=1\n"
    assert "::error" not in result.stderr


@pytest.mark.parametrize("mode", [[], ["--json"]], ids=["plain", "json"])
def test_a_failed_send_prints_an_error_annotation_and_no_output(kwa, github, mode):
    result = kwa("reply", "--sandbox", "--to", WRONG_KEY, *mode, "hi")
    assert result.exit_code == 3, result.output
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::error")]
    assert len(annotations) == 1, result.stderr
    assert annotations[0].startswith("::error title=kwa RBC001::")
    assert "hint: " in annotations[0]
    assert github.read_text() == "earlier=1\n"  # no message_id for a failure
    if mode:
        assert json.loads(result.stdout)["code"] == "RBC001"  # stdout stays one JSON document


def test_a_validation_failure_is_annotated_too(kwa, github):
    result = kwa("reply", "--sandbox", "--to", "919876543210", "hi")
    assert result.exit_code == 2, result.output
    assert re.search(r"^::error title=kwa VALIDATION::messaging_object.to: --to has no '\+'", result.stderr, re.M), result.stderr


def test_an_internal_error_is_annotated(kwa, github, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("kaleyra_cli.commands.reply.prepare", broken)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 1, result.output
    assert "::error title=kwa INTERNAL::internal error: RuntimeError: boom" in result.stderr


def _annotation(error: KwaError, environ: dict[str, str]) -> str:
    stderr = io.StringIO()
    env = Environment(io.StringIO(), stderr, io.StringIO(), False, False, False, environ)
    _github_annotation(AppState(env=env), error)
    return stderr.getvalue()


def test_annotation_escapes_what_would_start_another_workflow_command():
    error = KwaError("50% off\n::add-mask::y\r\nend\x1b[31m", code="WA:400,x", hint="fix it")
    line = _annotation(error, {"GITHUB_ACTIONS": "true"})
    assert line.count("\n") == 1 and line.endswith("\n")
    assert line == "::error title=kwa WA%3A400%2Cx::50%25 off%0A::add-mask::y\\x0d%0Aend\\x1b[31m (hint: fix it)\n"


def test_no_annotation_outside_github_actions():
    assert _annotation(KwaError("x"), {"GITHUB_ACTIONS": "false", "CI": "true"}) == ""
    assert _annotation(KwaError("x"), {}) == ""


def test_ci_set_means_no_prompt(kwa, monkeypatch):
    """``kwa config set api_key`` with no value would prompt; with CI set it fails saying what to pass."""
    monkeypatch.setenv("CI", "true")
    result = kwa("config", "set", "api_key")
    assert result.exit_code == 2, result.output
    assert "CI is set" in result.stderr or "stdin is not a terminal" in result.stderr


def test_ci_set_means_no_progress_bar(monkeypatch):
    """The batch progress display stays off with CI set, even on a terminal."""
    from kaleyra_cli.render import Renderer

    stderr = io.StringIO()
    env = Environment(io.StringIO(), stderr, io.StringIO(), True, True, False, {"CI": "true"})
    renderer = Renderer(env, "plain")
    if not hasattr(renderer, "batch_progress"):
        pytest.skip("no batch progress display yet")
    progress = renderer.batch_progress(10)
    progress.update(5, 1.0, {})
    progress.close()
    assert "\x1b[" not in stderr.getvalue() and "\r" not in stderr.getvalue()
