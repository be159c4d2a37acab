"""Terminal safety: what a server or a user typed never drives the terminal, Rich markup prints
literally, piped output is never wrapped or cut, and a console that cannot encode a character
does not crash the command (issue 6, DESIGN section 5, STYLE "Do" 6).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import TO, URL

SGR = re.compile(r"\x1b\[[0-9;]*m")  # Rich's own colours on a TTY: the only escapes allowed
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u009b1m\rover\x08[bold]x[/bold]"
WAMID_78 = "wamid." + "HBgMOTE5ODc2NTQzMjEwFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA" + "A" * 21  # 78 characters


@pytest.fixture
def tty(monkeypatch):
    """Make kwa believe stdout and stderr are terminals, with colour (NO_COLOR unset)."""
    from kaleyra_cli.render import Environment

    real = Environment.from_system.__func__

    def from_system(cls):
        env = real(cls)
        env.stdout_isatty = env.stderr_isatty = True
        return env

    monkeypatch.setattr(Environment, "from_system", classmethod(from_system))
    monkeypatch.delenv("NO_COLOR")


def assert_inert(text: str) -> None:
    """Nothing in ``text`` a terminal would act on, but Rich's colour codes."""
    bare = SGR.sub("", text)
    assert "\x1b" not in bare and not CONTROL.search(bare), repr(text)


@pytest.mark.parametrize("tty_mode", [True, False], ids=["tty", "pipe"])
@pytest.mark.parametrize("mode", ["table", "plain"])
def test_server_text_never_drives_the_terminal(kwa, creds, httpx_mock, request, tty_mode, mode):
    if tty_mode:
        request.getfixturevalue("tty")
    httpx_mock.add_response(
        url=URL,
        status_code=400,
        json={"code": "WA400", "message": HOSTILE, "data": {}, "error": {"payload": HOSTILE}},
        headers={"X-Odd": "\x1b[31m"[1:]},
    )
    result = kwa("reply", "--to", TO, "-o", mode, "--verbose", "hi")
    assert result.exit_code == 4, result.output
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "\\x1b]0;pwned\\x07" in result.stderr  # shown, escaped
    assert "[bold]x[/bold]" in result.stderr  # markup printed as typed


@pytest.mark.parametrize("mode", ["table", "plain", "json"])
def test_server_message_id_with_escapes_is_inert(kwa, creds, httpx_mock, tty, mode):
    httpx_mock.add_response(url=URL, status_code=202, json={"code": "WA202", "data": {"message_id": "wamid.\x1b[2J\u009bX"}})
    result = kwa("reply", "--to", TO, "-o", mode, "hi")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    if mode == "json":
        assert result.json()["message_id"] == "wamid.\x1b[2J\u009bX"  # the data, exactly, as JSON escapes


def test_user_text_in_warnings_problems_and_dry_run_is_inert(kwa, creds, tty):
    for args in (
        ["--wa-source", "\x1b[31mzoho", "--dry-run"],  # a warning naming the value
        ["--context", "wamid.\x1b[2J"],  # a problem naming the character
        ["--dry-run", "--", "body \x1b]0;x\x07 \x7f \u0085"],  # the body in the dry run
        ["--idempotency-key", "k\x1b[2J", "--dry-run"],
    ):
        for mode in ("table", "plain"):
            result = kwa("reply", "--to", TO, "-o", mode, *args, *(["hi"] if "--" not in args else []))
            assert result.exit_code in (0, 2), result.output
            assert_inert(result.stdout)
            assert_inert(result.stderr)


def test_dry_run_body_stays_valid_json_with_raw_controls(kwa, creds):
    result = kwa("reply", "--to", TO, "-o", "plain", "--dry-run", "--", "a\x7fb\u009bc\u0085d")
    assert result.exit_code == 0
    body = result.stdout.strip().splitlines()[-1]
    assert json.loads(body)["messaging_object"]["text"]["body"] == "a\x7fb\u009bc\u0085d"
    assert not CONTROL.search(result.stdout)


@pytest.mark.parametrize("mode", ["table", "plain"])
def test_rich_markup_in_user_and_server_text_prints_literally(kwa, creds, httpx_mock, mode):
    httpx_mock.add_response(url=URL, status_code=401, json={"code": "RBC001", "message": "[bold red]nope[/] [link=https://x]y[/link]"})
    result = kwa("reply", "--to", TO, "-o", mode, "hi")
    assert "[bold red]nope[/] [link=https://x]y[/link]" in result.stderr
    dry = kwa("reply", "--to", TO, "-o", mode, "--dry-run", "[bold]x[/bold]")
    assert "[bold]x[/bold]" in dry.stdout


@pytest.mark.parametrize("columns", ["80", "120", "40"])
@pytest.mark.parametrize("mode", ["table", "plain"])
def test_piped_output_never_wraps_a_78_character_wamid(kwa, creds, httpx_mock, monkeypatch, columns, mode):
    assert len(WAMID_78) == 78
    monkeypatch.setenv("COLUMNS", columns)
    httpx_mock.add_response(url=URL, status_code=202, json={"code": "WA202", "data": {"message_id": WAMID_78}})
    result = kwa("reply", "--to", TO, "-o", mode, "hi")
    assert result.exit_code == 0, result.output
    assert any(WAMID_78 in line for line in result.stdout.splitlines()), result.stdout


def test_piped_error_panel_never_cuts_a_long_message(kwa, creds, httpx_mock, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    message = "the id " + WAMID_78 + " is unknown to this account"
    httpx_mock.add_response(url=URL, status_code=400, json={"code": "WA400", "message": message})
    result = kwa("reply", "--to", TO, "-o", "table", "hi")
    assert any(message in line for line in result.stderr.splitlines()), result.stderr


def test_github_annotation_cannot_be_injected(kwa, creds, httpx_mock, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    httpx_mock.add_response(
        url=URL, status_code=500, json={"code": "X\n::add-mask::y", "message": "boom\n::set-output name=x::y\r\n::warning::z"}
    )
    result = kwa("reply", "--to", TO, "-o", "plain", "hi")
    assert result.exit_code == 7
    workflow_lines = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert len(workflow_lines) == 1 and workflow_lines[0].startswith("::error title=kwa HTTP_500::"), result.stderr


# --------------------------------------------------------------------------- consoles that cannot encode


def run_kwa(args: list[str], encoding: str, tmp_path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONIOENCODING=encoding, LC_ALL="C", LANG="C")
    return subprocess.run([sys.executable, "-m", "kaleyra_cli", *args], env=env, capture_output=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_console_that_cannot_encode_an_emoji_does_not_crash(creds, tmp_path, encoding):
    body = "order \U0001f4e6 shipped \u2714"
    for args, code in (
        (["reply", "--dry-run", "-o", "plain", "--to", TO, body], 0),
        (["reply", "--dry-run", "-o", "table", "--to", TO, body], 0),
        (["reply", "--to", "+91 \U0001f642 98765", "-o", "table", body], 2),
        (["validate", "--to", TO, "--wa-source", "z\u00f6ho\U0001f642", "-o", "plain", body], 0),
    ):
        done = run_kwa(args, encoding, tmp_path)
        out, err = done.stdout.decode(encoding), done.stderr.decode(encoding)
        assert done.returncode == code, (args, out, err)
        assert "Traceback" not in err and "UnicodeEncodeError" not in err, err
    dry = run_kwa(["reply", "--dry-run", "--json", "--to", TO, body], encoding, tmp_path)
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout.decode(encoding))
    assert json.loads(doc["request"]["body"])["messaging_object"]["text"]["body"] == body


def test_click_usage_error_with_an_emoji_on_an_ascii_console(tmp_path):
    done = run_kwa(["reply", "--\U0001f642"], "ascii", tmp_path)
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["config", "show"], ["config", "profiles"]])
def test_profile_names_from_a_config_file_are_inert_in_tables(kwa, tty, tmp_path, monkeypatch, command):
    """Table titles hold profile names and paths: a profile named with escapes cannot drive the terminal."""
    name = "\x1b]0;pwned\x07\x1b[2J"
    config = tmp_path / "config.toml"
    config.write_text(f'default_profile = {json.dumps(name)}\n[profiles.{json.dumps(name)}]\nsid = "HXAP16TEST0097IN"\n')
    config.chmod(0o600)
    result = kwa(*command, "--config", str(config), "-o", "table")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "\\x1b]0;pwned\\x07" in result.stdout
