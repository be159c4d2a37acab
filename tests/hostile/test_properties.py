"""Property tests over the whole CLI in-process: whatever the input, kwa keeps its word (issue 6).

Each example runs ``kwa`` with typer's CliRunner against a fake API that answers 202 to
anything (or, for the server properties, whatever hypothesis makes up) and checks the promises
in :func:`tests.hostile.harness.check_promises`: an exit code of DESIGN section 5 and never 1,
no traceback, nothing sent on exit 2, only E.164 recipients and bodies within the limit sent,
the key never printed, no control character reaching a terminal.

``pytest --hypothesis-profile=long tests/hostile`` runs 2,000 examples per property.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import API_KEY, MESSAGE_ID, SID, TO, WA_NUMBER
from tests.hostile._profiles import hostile_settings
from tests.hostile.harness import check_promises, invoke

# ----------------------------------------------------------------------------- strategies

#: Any code point, lone surrogates included (argv bytes that are not UTF-8 arrive as surrogates).
ANY_CHAR = st.characters(exclude_categories=())
_HOSTILE = (
    [
        "\x1b[31m",  # ANSI colour
        "\x1b]0;pwned\x07",  # OSC: set the terminal title
        "\x1b[2J",  # clear screen
        "\u009b31m",  # C1 CSI
        "[bold]x[/bold]",  # Rich markup
        "[link=https://evil.example]y[/link]",
        "\r",
        "\n",
        "\x00",
        "\x7f",
        "\u202e",  # right-to-left override
        "\u200b",  # zero-width space
        "\ufeff",
        "\U0001f642",  # emoji: 2 UTF-16 units
        "\ud800",  # lone surrogate
        API_KEY,
        "%s%n{}",
        "::error::x",
        "-",
        "--",
        " ",
        "\t",
        "wamid.",
        "+91",
        "00",
        "\\",
        '"',
        "\u0663",  # Arabic-Indic digit three
    ]
)
HOSTILE_BITS = st.sampled_from(_HOSTILE)
#: Text that never holds the API key: for settings files, where the key is only where a key belongs.
TEXT_NO_KEY = st.lists(st.one_of(st.text(ANY_CHAR, max_size=12), st.sampled_from([b for b in _HOSTILE if b != API_KEY])), max_size=6).map("".join)
TEXT = st.lists(st.one_of(st.text(ANY_CHAR, max_size=12), HOSTILE_BITS), max_size=6).map("".join)
PHONE = st.lists(
    st.one_of(
        st.sampled_from(list("+0123456789 -().")),
        st.sampled_from(["+91", "+1", "+52 1", "+55", "00", "\u0969", "\u0663", "\u200e", "\u2212", "\uff0b", "\u00a0"]),
        ANY_CHAR,
    ),
    max_size=18,
).map("".join)
RECIPIENT = st.one_of(PHONE, TEXT, st.sampled_from([TO, "+12025550100", "+5215512345678", "+55 11 9876-5432"]))
BODY = st.one_of(
    TEXT,
    st.sampled_from(["hi", " ", "", "\U0001f642" * 2048, "\U0001f642" * 2049, "a" * 4096, "a" * 4097, "-1 item left"]),
)
MODES = st.sampled_from([["-o", "plain"], ["-o", "table"], ["--json"], ["-o", "auto"]])
FLAGS = st.lists(st.sampled_from(["--dry-run", "--strict", "--quiet", "--verbose", "--preview-url"]), unique=True, max_size=3)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _json_mode(args: list[str]) -> bool:
    return "--json" in args


def _creds_env() -> dict[str, str | None]:
    return {"KALEYRA_SID": SID, "KALEYRA_API_KEY": API_KEY, "KALEYRA_WA_NUMBER": WA_NUMBER}


def _message_args(draw: Any) -> list[str]:
    args: list[str] = []
    if draw(st.booleans()):
        args += ["--to", draw(RECIPIENT)]
    else:
        args += ["--to-wa-id", draw(st.one_of(st.from_regex(r"\A[0-9]{0,16}\Z"), TEXT))]
    for flag in ("--context", "--ref", "--ref1", "--ref2", "--wa-source"):
        if draw(st.booleans()):
            args += [flag, draw(TEXT)]
    body = draw(BODY)
    how = draw(st.sampled_from(["--", "--body", "bare"]))
    args += ["--", body] if how == "--" else ["--body", body] if how == "--body" else [body]
    return args


@st.composite
def reply_args(draw: Any) -> list[str]:
    flags = draw(MODES) + draw(FLAGS)
    return flags + _message_args(draw)


# ----------------------------------------------------------------------------- properties


@hostile_settings()
@given(args=reply_args())
@example(args=["-o", "plain", "--to", TO, "--", "\x1b]0;pwned\x07[bold]x[/bold]"])
@example(args=["-o", "table", "--to", TO, "--wa-source", "\x1b[31mzoho", "--", "hi"])
@example(args=["-o", "table", "--dry-run", "--to", TO, "--", "a\x7f\u009b31m\x85"])
@example(args=["-o", "plain", "--dry-run", "--to", TO, "--", "a\x7f\u009b31m\x85"])
@example(args=["--json", "--to", TO, "--context", "wamid.\x1b[2J", "--", "hi"])
@example(args=["-o", "plain", "--to", TO, "--", "\ud800"])
@example(args=["-o", "plain", "--to", TO, "--wa-source", "\ud800", "--", "hi"])  # was exit 1: sent unchecked, failed to encode
@example(args=["-o", "plain", "--to-wa-id", "43000", "--", "hi"])  # +43000 was sent: "possible" to phonenumbers, but local-only
@example(args=["-o", "plain", "--to", "+43 000", "--", "hi"])
def test_reply_keeps_its_word_whatever_the_message(args: list[str]) -> None:
    run = invoke(["reply", *args], env=_creds_env())
    check_promises(run, json_mode=_json_mode(args))
    if run.exit_code == 0 and "--dry-run" not in args:
        assert len(run.requests) == 1, run.output
    if "--dry-run" in args:
        assert run.requests == [], run.output


@hostile_settings()
@given(args=reply_args())
def test_validate_never_sends(args: list[str]) -> None:
    args = [a for a in args if a not in ("--dry-run", "--verbose")]
    run = invoke(["validate", *args])
    check_promises(run, key="", json_mode=_json_mode(args))  # no key configured: nothing to hide
    assert run.requests == []
    assert run.exit_code in (0, 2), run.output


ENV_NAMES = st.sampled_from(
    ["KALEYRA_SID", "KALEYRA_API_KEY", "KALEYRA_WA_NUMBER", "KALEYRA_POD", "KALEYRA_BASE_URL", "KWA_PROFILE", "KWA_CONFIG", "OTHER"]
)
ENV_VALUE = st.one_of(TEXT_NO_KEY, st.sampled_from([SID, API_KEY, WA_NUMBER, "in", "eu", "https://api.in.kaleyra.io", "http://[::1", ""]))


@st.composite
def env_file_text(draw: Any) -> str:
    lines = draw(
        st.lists(
            st.one_of(
                st.tuples(st.sampled_from(["", "export "]), ENV_NAMES, st.sampled_from(["=", " = ", "="]), st.sampled_from(["", '"', "'"]), ENV_VALUE).map(
                    lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}{t[4]}{t[3]}"
                ),
                TEXT_NO_KEY,
            ),
            max_size=8,
        )
    )
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@hostile_settings()
@given(text=env_file_text(), raw=st.binary(max_size=40), use_raw=st.booleans(), mode=MODES)
@example(text="KALEYRA_API_KEY=Aq7Zx1Sec4et Key9Test", raw=b"", use_raw=False, mode=["-o", "plain"])
@example(text="KALEYRA_API_KEY='Aq7Zx1Sec4et\x1b[31mKey9'", raw=b"", use_raw=False, mode=["-o", "table"])
@example(text="", raw=b"KALEYRA_SID=\xff\xfe", use_raw=True, mode=["-o", "plain"])
@example(text=f"KALEYRA_API_KEY={API_KEY}\nKALEYRA_POD={API_KEY}", raw=b"", use_raw=False, mode=["-o", "plain"])
@example(text=f"KALEYRA_API_KEY={API_KEY}\nKWA_PROFILE={API_KEY}", raw=b"", use_raw=False, mode=["-o", "plain"])  # the profile error printed it
def test_any_env_file(text: str, raw: bytes, use_raw: bool, mode: list[str]) -> None:
    """A ``.env`` file of any content: a clear error or a correct send, never a crash."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ".env"
        if use_raw:
            path.write_bytes(raw)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        run = invoke(["reply", *mode, "--env-file", str(path), "--to", TO, "hi"], env={"KALEYRA_SID": SID})
        key = _effective_dotenv_key(path)
    check_promises(run, key=key, json_mode=_json_mode(mode))


def _effective_dotenv_key(path: Path) -> str:
    """The key a ``.env`` file sets, as kwa would use it ("" when none or unreadable)."""
    from dotenv import dotenv_values

    try:
        return (dotenv_values(path).get("KALEYRA_API_KEY") or "").strip()
    except (UnicodeDecodeError, ValueError):
        return ""


PROFILE_NAME = st.one_of(st.sampled_from(["default", "prod", "a.b", "\u00e9t\u00e9", ""]), TEXT_NO_KEY)
CONFIG_VALUE = st.one_of(
    TEXT_NO_KEY,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.sampled_from([SID, API_KEY, WA_NUMBER, "in", "xx", 30, 0, -1, 1e400, "https://api.in.kaleyra.io", "http://evil.example/v2/"]),
)
CONFIG_KEY = st.one_of(st.sampled_from(["sid", "api_key", "wa_number", "pod", "base_url", "wa_source", "timeout"]), TEXT_NO_KEY)


@st.composite
def config_text(draw: Any) -> str:
    if draw(st.booleans()):
        return draw(TEXT_NO_KEY)  # mostly not TOML
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["default_profile"] = draw(st.one_of(PROFILE_NAME, st.integers()))
    profiles = draw(st.dictionaries(PROFILE_NAME, st.dictionaries(CONFIG_KEY, CONFIG_VALUE, max_size=5), max_size=3))
    document["profiles"] = profiles
    if draw(st.booleans()):
        document[draw(TEXT_NO_KEY) or "x"] = draw(CONFIG_VALUE)
    try:
        return tomli_w.dumps(document)
    except (ValueError, TypeError):
        return draw(TEXT_NO_KEY)


@hostile_settings()
@given(text=config_text(), profile=st.one_of(st.none(), PROFILE_NAME), mode=MODES)
@example(text='[profiles.default]\ntimeout = 1e400\nsid = "HXAP16TEST0097IN"\n', profile=None, mode=["-o", "plain"])
@example(text='[profiles.default]\ntimeout = true\n', profile=None, mode=["-o", "plain"])
@example(text='[profiles."\x1b[31m"]\nsid = "x"\n', profile="nope", mode=["-o", "table"])
def test_any_config_file(text: str, profile: str | None, mode: list[str]) -> None:
    """A config file of any content (and any ``--profile``): a clear error or a correct send."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        path.chmod(0o600)
        args = ["reply", *mode, "--config", str(path), "--to", TO]
        if profile is not None:
            args += ["--profile", profile]
        run = invoke([*args, "hi"], env={"KALEYRA_WA_NUMBER": WA_NUMBER, "KALEYRA_API_KEY": API_KEY})
    check_promises(run, json_mode=_json_mode(mode))


KEY_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=40),
    st.lists(st.one_of(st.text(ANY_CHAR, max_size=10), HOSTILE_BITS), min_size=1, max_size=5).map("".join),
)


@hostile_settings()
@given(key=KEY_TEXT, where=st.sampled_from(["env", "dotenv", "config", "file", "stdin"]), mode=MODES, flags=FLAGS)
@example(key="Aq7Zx1Sec4et Key9Test", where="file", mode=["-o", "plain"], flags=[])
@example(key="Aq7Zx1Sec4et\x07Key9Test", where="config", mode=["-o", "plain"], flags=[])
@example(key="Aq7Zx1Sec4et\u00e9Key9Test", where="env", mode=["-o", "plain"], flags=[])  # non-ASCII: refused (was exit 2 only at send)
@example(key="\u00a0Aq7Zx1Sec4etKey9Test\u3000", where="dotenv", mode=["-o", "plain"], flags=[])
@example(key='Ab"cd\\ef0123456789', where="env", mode=["-o", "plain"], flags=["--verbose"])  # echoed JSON-escaped
@example(key="Aq7Zx1Sec4etKey9\ud800", where="stdin", mode=["-o", "plain"], flags=[])
@example(key="Aq7Zx1Sec4etKey9\ud800", where="file", mode=["--json"], flags=[])
def test_any_api_key(key: str, where: str, mode: list[str], flags: list[str]) -> None:
    """A key of any content from any source: refused before any request, or sent exactly (trimmed);
    never printed, also when the server echoes it back (raw and JSON-escaped)."""
    env: dict[str, str | None] = {"KALEYRA_SID": SID, "KALEYRA_WA_NUMBER": WA_NUMBER}
    args = ["reply", *mode, *flags, "--to", TO]
    stdin = None
    effective: str | None = key  # what kwa reads before trimming, when it can read it
    with tempfile.TemporaryDirectory() as folder:
        if where == "env":
            if "\x00" in key or any(0xD800 <= ord(c) <= 0xDFFF for c in key):
                return  # an environment variable cannot hold these
            env["KALEYRA_API_KEY"] = key
        elif where == "dotenv":
            from dotenv import dotenv_values

            path = Path(folder) / ".env"
            path.write_text(f"KALEYRA_API_KEY={json.dumps(key)}\n", encoding="utf-8", errors="surrogatepass")
            path.chmod(0o600)
            try:
                effective = dotenv_values(path).get("KALEYRA_API_KEY")
            except UnicodeDecodeError:
                effective = None
            args += ["--env-file", str(path)]
        elif where == "config":
            path = Path(folder) / "config.toml"
            try:
                path.write_text(tomli_w.dumps({"profiles": {"default": {"api_key": key}}}), encoding="utf-8")
            except UnicodeEncodeError:
                return
            path.chmod(0o600)
            args += ["--config", str(path)]
        elif where == "file":
            path = Path(folder) / "key"
            path.write_text(key, encoding="utf-8", errors="surrogatepass")
            path.chmod(0o600)
            try:
                effective = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                effective = None
            args += ["--api-key-file", str(path)]
        else:
            args += ["--api-key-file", "-"]
            stdin = key.encode("utf-8", "surrogatepass")
        trimmed = (effective or "").strip()

        def echo(request: httpx.Request) -> httpx.Response:
            shown = trimmed.encode("utf-8", "replace").decode("utf-8")
            return httpx.Response(401, json={"code": "RBC001", "message": f"bad key {shown}", "data": [], "error": {"key": shown}})

        run = invoke([*args, "hi"], env=env, input=stdin, responder=echo)
    check_promises(run, key=trimmed, json_mode=_json_mode(mode))
    for request in run.requests:
        sent = request.headers["api-key"]
        assert sent.isascii() and sent.isprintable() and " " not in sent, run.output
        if where != "stdin":
            assert sent == trimmed, run.output
    if len(trimmed) >= 8:
        escaped = json.dumps(trimmed)[1:-1]
        assert escaped not in run.stdout + run.stderr, run.output


@st.composite
def server_answer(draw: Any) -> httpx.Response:
    status = draw(st.one_of(st.sampled_from([200, 201, 202, 204, 301, 302, 307, 400, 401, 403, 404, 413, 429, 500, 502, 503, 504]), st.integers(200, 599)))
    headers = {}
    if draw(st.booleans()):
        headers["Retry-After"] = draw(st.one_of(st.sampled_from(["0", "1", "61", "99999999999999999999", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"]), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)))
    if draw(st.booleans()):
        headers["X-Echo"] = draw(st.sampled_from([API_KEY, "\x1b[31m", "ok"])).replace("\x1b", "")
    kind = draw(st.sampled_from(["json", "kaleyra", "bytes", "empty"]))
    if kind == "empty":
        content = b""
    elif kind == "bytes":
        content = draw(st.one_of(st.binary(max_size=200), st.sampled_from([b"<html>\x1b[2J<b>502</b></html>", b"\xff\xfe\x00", b'{"code":"WA202","data":{"message_id":"wamid.'])))
    elif kind == "json":
        content = json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    else:
        document = {
            "code": draw(st.one_of(st.sampled_from(["WA202", "WA400", "WA401", "RBC001", "E110", "WA429", "WA500", "WAV2101", "WA-401"]), TEXT, st.integers(), st.none())),
            "message": draw(st.one_of(TEXT, st.integers(), st.none())),
            "data": draw(st.one_of(st.just([]), st.just({}), st.fixed_dictionaries({"message_id": st.one_of(st.just(MESSAGE_ID), TEXT, st.integers(), st.none())}), JSON_VALUES)),
            "error": draw(st.one_of(st.just({}), JSON_VALUES)),
        }
        content = json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if status in (301, 302, 307) and draw(st.booleans()):
        headers["Location"] = "https://evil.example/steal"
    return httpx.Response(status, headers=headers, content=content)


@hostile_settings()
@given(answer=server_answer(), mode=MODES, flags=st.lists(st.sampled_from(["--verbose", "--quiet", "--retry-unsafe"]), unique=True, max_size=2))
@example(
    answer=httpx.Response(400, json={"code": "WA400\x1b[31m", "message": "\x1b]0;pwned\x07[bold]x[/bold]", "data": {}, "error": {}}),
    mode=["-o", "table"],
    flags=[],
)
@example(answer=httpx.Response(202, json={"code": "WA202", "data": {"message_id": "wamid.\x1b[2J\u009b"}}), mode=["-o", "plain"], flags=[])
@example(answer=httpx.Response(202, json={"code": "WA202", "data": {"message_id": "wamid.\x1b[2J\u009b"}}), mode=["-o", "table"], flags=[])
@example(answer=httpx.Response(202, json={"code": "WA202", "data": {"message_id": "wamid.\x1b[2J\u009b"}}), mode=["--json"], flags=[])
@example(answer=httpx.Response(500, json={"code": "X\n::add-mask::y", "message": "m"}), mode=["-o", "plain"], flags=[])
@example(answer=httpx.Response(300, json={"code": "WA429"}), mode=["-o", "plain"], flags=[])  # was retried 4 times, exit 6
def test_any_server_answer(answer: httpx.Response, mode: list[str], flags: list[str]) -> None:
    """Whatever the server answers: an exit code of DESIGN section 5 that fits the status, the key
    masked even when echoed, nothing of the answer driving the terminal, retries only as allowed."""
    content = answer.content

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answer.status_code, headers=answer.headers, content=content)

    run = invoke(["reply", *mode, *flags, "--to", TO, "hi"], env=_creds_env(), responder=respond)
    check_promises(run, json_mode=_json_mode(mode))
    status = answer.status_code
    try:
        code = json.loads(content).get("code")
    except (ValueError, AttributeError):
        code = None
    if 200 <= status < 300:
        assert run.exit_code == 0, run.output
    elif 300 <= status < 400:
        assert run.exit_code == 4 and "redirect" in run.stdout + run.stderr, run.output
    else:
        assert run.exit_code in (3, 4, 5, 6, 7), run.output
    throttled = status == 429 or (code == "WA429" and status >= 400)
    if status < 500 and not throttled:
        assert len(run.requests) == 1, run.output  # never retried: final, or it may have been processed


@hostile_settings()
@given(payload=st.one_of(JSON_VALUES, st.fixed_dictionaries({"messaging_object": st.dictionaries(st.sampled_from(["messaging_product", "to", "type", "text", "context", "recipient_type"]), JSON_VALUES | st.fixed_dictionaries({"body": JSON_VALUES, "preview_url": JSON_VALUES}))}, optional={"extra_info": JSON_VALUES})), mode=MODES)
def test_any_payload_file(payload: Any, mode: list[str]) -> None:
    """``--payload FILE.json`` holding any JSON: a list of problems or the canonical request."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "payload.json"
        path.write_text(json.dumps(payload), encoding="utf-8", errors="surrogatepass")
        run = invoke(["reply", *mode, "--payload", str(path)], env=_creds_env())
    check_promises(run, json_mode=_json_mode(mode))


# ----------------------------------------------------------------------------- batches (CSV and JSONL rows)

BATCH_COLUMNS = st.sampled_from(["to", "wa_id", "body", "context", "ref", "ref1", "ref2", "preview_url", "id", "extra", "", "\ufeffto", "TO"])
BATCH_VALUE = st.one_of(TEXT, PHONE, st.sampled_from([TO, "919876543210", "hi", "", " ", "true", "false", "yes", "wamid.X", "a" * 4097]))
JSON_CELL = st.one_of(BATCH_VALUE, st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.floats(allow_nan=True))


@st.composite
def batch_file(draw: Any) -> tuple[str, bytes]:
    """``(suffix, content)``: a CSV (any delimiter, BOM or not) or JSONL file of odd rows, or raw bytes."""
    kind = draw(st.sampled_from(["csv", "jsonl", "raw"]))
    if kind == "raw":
        return draw(st.sampled_from([".csv", ".jsonl", ".txt"])), draw(st.one_of(st.binary(max_size=200), TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
    columns = draw(st.lists(BATCH_COLUMNS, min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(BATCH_VALUE, min_size=len(columns), max_size=len(columns)), max_size=5))
    if kind == "csv":
        import csv
        import io

        delimiter = draw(st.sampled_from([",", ";", "\t"]))
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
        writer.writerow(columns)
        writer.writerows(rows)
        bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
        return ".csv", bom + buffer.getvalue().encode("utf-8", "surrogatepass")
    lines = []
    for _ in rows:
        obj = draw(st.dictionaries(BATCH_COLUMNS, JSON_CELL, max_size=5))
        lines.append(draw(st.one_of(st.just(json.dumps(obj)), TEXT, st.just("[]"), st.just(""))))
    return ".jsonl", "\n".join(lines).encode("utf-8", "surrogatepass")


@hostile_settings(quick=25)
@given(
    source=batch_file(),
    mode=st.sampled_from([["--json"], ["-o", "plain"], ["-o", "table"]]),
    flags=st.lists(st.sampled_from(["--skip-invalid", "--strict", "--results", "--quiet"]), unique=True, max_size=3),
)
@example(source=(".csv", b"to,body\n+919876543210,\x1b]0;pwned\x07hi\n"), mode=["-o", "table"], flags=[])
@example(source=(".jsonl", b'{"to": 919876543210, "body": "hi"}\n{"wa_id": "919876543210", "body": ["x"]}'), mode=["--json"], flags=["--skip-invalid"])
@example(source=(".csv", b"\xff\xfeto,body\n"), mode=["-o", "plain"], flags=[])
@example(source=(".csv", b"to,body,id\r\n,,0\xc2\x85\r\n,,\xe2\x80\xa8\r\n"), mode=["--json"], flags=["--skip-invalid", "--results"])  # raw U+0085 split a results line
@example(source=(".jsonl", b'{}\n{"to": "' + API_KEY.encode() + b'"}'), mode=["--json"], flags=["--skip-invalid", "--results"])  # the key in a cell was printed
def test_any_batch_file(source: tuple[str, bytes], mode: list[str], flags: list[str]) -> None:
    """``kwa reply --batch`` over any CSV or JSONL: the promises hold for every row that is sent."""
    from tests.hostile.servers import accept_all, serving

    suffix, content = source
    with tempfile.TemporaryDirectory() as folder, serving(accept_all) as server:
        path = Path(folder) / f"rows{suffix}"
        path.write_bytes(content)
        args = ["reply", "--batch", str(path), *mode, "--timeout", "2", "--rate", "0", "--concurrency", "2"]
        for flag in flags:
            args += ["--results", str(Path(folder) / "results.jsonl")] if flag == "--results" else [flag]
        env = {**_creds_env(), "KALEYRA_BASE_URL": server.url}
        run = invoke(args, env=env)
        sent = [httpx.Request("POST", server.url + raw.split(b" ", 2)[1].decode(), content=raw.split(b"\r\n\r\n", 1)[1]) for raw in server.requests]
        results = Path(folder) / "results.jsonl"
        lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    run.requests = sent
    check_promises(run, json_mode=False, human="--json" not in mode)
    assert run.exit_code in (0, 2, 3, 4, 5, 6, 7, 8, 9, 10), run.output
    if "--json" in mode:
        for line in run.stdout.splitlines():
            json.loads(line)  # one JSON document per line
    for line in lines:
        assert isinstance(json.loads(line)["row"], int)
        assert API_KEY not in line  # the results file is output too


def test_profiles_are_registered_and_quick_by_default() -> None:
    from hypothesis import settings

    assert settings.get_profile("long").max_examples >= 1000
    if settings.get_current_profile_name() == "default":
        assert hostile_settings().max_examples <= 50
    assert os.environ.get("NO_COLOR") == "1"
