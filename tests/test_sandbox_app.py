"""The sandbox emulator (kaleyra_cli/sandbox.py, DESIGN section 6) over real loopback HTTP.

Requests are written by hand with raw httpx, as a curl user would send them, so these tests pin
the emulator's wire behaviour independently of kwa's own client.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import phonenumbers
import pytest

from kaleyra_cli import sandbox
from kaleyra_cli.errors import ExitCode, exit_code_for
from kaleyra_cli.sandbox import (
    MAGIC_NUMBERS,
    SANDBOX_API_KEY,
    SANDBOX_SID,
    SANDBOX_WA_NUMBER,
    SandboxError,
    SandboxState,
    create_app,
    magic_number,
    running_sandbox,
)

CUSTOMER = "+919876543210"
JSON_HEADERS = {"Content-Type": "application/json", "api-key": SANDBOX_API_KEY}
PATH = f"/v2/{SANDBOX_SID}/whatsapp/{SANDBOX_WA_NUMBER}/messages"
WAMID_RE = re.compile(r"wamid\.[A-Za-z0-9+/]+={0,2}")


def reply(to: str = CUSTOMER, body: str = "Your order has shipped.", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": False, "body": body},
        }
    }
    doc.update(extra)
    return doc


@pytest.fixture(scope="module")
def box():
    with running_sandbox() as handle:
        yield handle


@pytest.fixture(scope="module")
def client(box):
    with httpx.Client(base_url=box.base_url, timeout=5.0) as c:
        yield c


@pytest.fixture(autouse=True)
def _empty_store(request):
    if "box" in request.fixturenames:
        request.getfixturevalue("box").state.clear()


def post(client: httpx.Client, doc: Any = None, *, raw: bytes | None = None, headers=None, path: str = PATH):
    content = raw if raw is not None else json.dumps(doc).encode()
    return client.post(path, content=content, headers=JSON_HEADERS if headers is None else headers)


# --------------------------------------------------------------------------- accepted


def test_accepted_answer_has_documented_shape_and_is_recorded(box, client):
    doc = reply(extra_info={"ref": "customer1", "ref1": "marketing", "ref2": "dictionary", "wa_source": "api"})
    doc["messaging_object"]["context"] = {"message_id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0FCQzEyAA=="}
    r = post(client, doc)

    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    assert set(answer) == {"code", "message", "data", "error"}
    assert answer["code"] == "WA202"
    assert answer["message"] == "Request Accepted"
    assert answer["error"] == {}
    message_id = answer["data"]["message_id"]
    assert WAMID_RE.fullmatch(message_id), message_id
    assert len(message_id) >= 58
    assert CUSTOMER[1:].encode() in base64.b64decode(message_id[len("wamid.") :])

    [record] = box.state.messages()
    assert record["message_id"] == message_id
    assert record["sid"] == SANDBOX_SID
    assert record["wa_number"] == SANDBOX_WA_NUMBER
    assert record["to"] == CUSTOMER
    assert record["body"] == "Your order has shipped."
    assert record["context_message_id"] == "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0FCQzEyAA=="
    assert record["preview_url"] is False
    assert record["extra_info"] == {"ref": "customer1", "ref1": "marketing", "ref2": "dictionary", "wa_source": "api"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["received_at"])
    assert set(record) == {
        "message_id",
        "sid",
        "wa_number",
        "to",
        "body",
        "context_message_id",
        "preview_url",
        "extra_info",
        "received_at",
    }
    assert box.state.count == 1


def test_minimal_body_like_the_spec_sample_is_accepted(box, client):
    # recipient_type and type may be left out; preview_url defaults to false.
    raw = b'{"messaging_object": {"messaging_product": "whatsapp", "to": "+16505550123", "text": {"body": "hi"}}}'
    r = post(client, raw=raw)
    assert r.status_code == 202, r.text
    [record] = box.state.messages()
    assert record["preview_url"] is False
    assert record["context_message_id"] is None
    assert record["extra_info"] == {}


def test_percent_encoded_plus_in_path_is_the_same_number(box, client):
    r = post(client, reply(), path=f"/v2/{SANDBOX_SID}/whatsapp/%2B{SANDBOX_WA_NUMBER[1:]}/messages")
    assert r.status_code == 202, r.text
    assert box.state.messages()[0]["wa_number"] == SANDBOX_WA_NUMBER


def test_message_ids_are_unique(box, client):
    ids = {post(client, reply()).json()["data"]["message_id"] for _ in range(50)}
    assert len(ids) == 50


def test_extra_info_is_stored_as_the_api_keeps_it(box, client):
    r = post(client, reply(extra_info={"ref": "x" * 300, "wa_source": "Zapier"}))
    assert r.status_code == 202
    [record] = box.state.messages()
    assert record["extra_info"] == {"ref": "x" * 255, "wa_source": "api"}


def test_utf16_limit_counts_emoji_as_two_units(box, client):
    assert post(client, reply(body="😀" * 2048)).status_code == 202
    assert post(client, reply(body="a" * 4096)).status_code == 202
    assert post(client, reply(body="😀" * 2049)).status_code == 400
    assert box.state.count == 2


# --------------------------------------------------------------------------- records endpoint


def test_get_filters_by_recipient_and_delete_clears(box, client):
    for to in (CUSTOMER, "+16505550123", CUSTOMER):
        assert post(client, reply(to=to)).status_code == 202

    everything = client.get("/_sandbox/messages").json()
    assert [m["to"] for m in everything] == [CUSTOMER, "+16505550123", CUSTOMER]  # oldest first

    encoded = client.get("/_sandbox/messages", params={"to": CUSTOMER}).json()
    assert [m["to"] for m in encoded] == [CUSTOMER, CUSTOMER]
    # A literal "+" in a query string means a space to URL decoders: still found.
    literal = client.get(f"/_sandbox/messages?to={CUSTOMER}")
    assert "+" in str(literal.request.url.query)
    assert [m["to"] for m in literal.json()] == [CUSTOMER, CUSTOMER]
    # As webhooks give it (wa_id, digits only).
    assert len(client.get(f"/_sandbox/messages?to={CUSTOMER[1:]}").json()) == 2
    assert client.get("/_sandbox/messages", params={"to": "+10000000000"}).json() == []

    r = client.delete("/_sandbox/messages")
    assert r.status_code == 200
    assert r.json() == {"deleted": 3}
    assert client.get("/_sandbox/messages").json() == []
    assert box.state.count == 0


def test_state_is_an_object_other_threads_can_read():
    state = SandboxState()
    state.record({"to": "+1", "extra_info": {}, "received_at": 0.0, "message_id": "wamid.x"})
    copy = state.messages()
    copy[0]["extra_info"]["ref"] = "changed"
    assert state.messages()[0]["extra_info"] == {}
    assert state.messages()[0]["received_at"] == "1970-01-01T00:00:00.000Z"
    assert state.count == len(state) == 1
    assert state.clear() == 1
    assert state.count == 0


def test_sandbox_description(client):
    info = client.get("/_sandbox").json()
    assert info["sid"] == SANDBOX_SID
    assert info["wa_number"] == SANDBOX_WA_NUMBER
    assert [m["number"] for m in info["magic_numbers"]] == [m.number for m in MAGIC_NUMBERS]


# --------------------------------------------------------------------------- routing


def test_unknown_path_is_404_json(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert "error" in r.json()


def test_other_methods_on_messages_path_are_405(client):
    r = client.get(PATH, headers=JSON_HEADERS)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert client.put("/_sandbox/messages").status_code == 405


def test_oversized_body_gets_a_gateways_413(client):
    r = post(client, raw=b"{" + b" " * (sandbox.MAX_BODY_BYTES + 1) + b"}")
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (PATH, {"Content-Type": "application/json", "api-key": "A" + "x" * 31 + "3"}),
        (PATH, {"Content-Type": "application/json"}),
        (PATH.replace(SANDBOX_SID, "HXAP16XXXXXX97IN"), JSON_HEADERS),
    ],
    ids=["wrong-key", "no-key", "wrong-sid"],
)
def test_wrong_sid_or_key_is_rbc001(box, client, path, headers):
    r = post(client, reply(), path=path, headers=headers)
    assert r.status_code == 401
    assert r.json() == {
        "code": "RBC001",
        "message": "Incorrect SID or API key.",
        "data": [],
        "error": {"error": "Incorrect SID or API key."},
    }
    assert box.state.count == 0


@pytest.mark.parametrize("number", ["+919999999999", SANDBOX_WA_NUMBER[1:], CUSTOMER])
def test_wrong_business_number_is_wa401(box, client, number):
    r = post(client, reply(), path=f"/v2/{SANDBOX_SID}/whatsapp/{number}/messages")
    assert r.status_code == 401
    answer = r.json()
    assert answer["code"] == "WA401"
    assert answer["data"] == {}
    assert "phone_number" in answer["error"]
    assert box.state.count == 0


def test_checks_run_in_the_apis_order(client):
    wrong_everything = f"/v2/{SANDBOX_SID}/whatsapp/+919999999999/messages"
    r = post(client, raw=b"not json", path=wrong_everything, headers={"api-key": "nope"})
    assert r.json()["code"] == "RBC001"
    r = post(client, raw=b"not json", path=wrong_everything)
    assert r.json()["code"] == "WA401"
    r = post(client, reply(to=magic_number("low_balance").number, body=" "))
    assert r.json()["code"] == "WA400"  # the body is checked before the magic number


# --------------------------------------------------------------------------- WA400


def _mo(**changes: Any) -> bytes:
    doc = reply()
    for key, value in changes.items():
        if value is ...:
            del doc["messaging_object"][key]
        else:
            doc["messaging_object"][key] = value
    return json.dumps(doc).encode()


def _text(**changes: Any) -> bytes:
    doc = reply()
    doc["messaging_object"]["text"].update(changes)
    return json.dumps(doc).encode()


BAD_BODIES = [
    ("invalid-json", b'{"messaging_object": {"to": "+919876543210",', "application/json", "payload"),
    ("not-utf8", b'{"messaging_object": "\xff"}', "application/json", "payload"),
    ("json-array", b"[]", "application/json", "payload"),
    ("nan", b'{"messaging_object": NaN}', "application/json", "payload"),
    ("no-messaging-object", b'{"extra_info": {"ref": "a"}}', "application/json", "messaging_object"),
    ("messaging-object-string", b'{"messaging_object": "hi"}', "application/json", "messaging_object"),
    ("product-sms", _mo(messaging_product="sms"), "application/json", "messaging_object.messaging_product"),
    ("product-missing", _mo(messaging_product=...), "application/json", "messaging_object.messaging_product"),
    ("recipient-group", _mo(recipient_type="group"), "application/json", "messaging_object.recipient_type"),
    ("type-image", _mo(type="image"), "application/json", "messaging_object.type"),
    ("to-missing", _mo(to=...), "application/json", "messaging_object.to"),
    ("to-number", _mo(to=919876543210), "application/json", "messaging_object.to"),
    ("to-no-plus", _mo(to="919876543210"), "application/json", "messaging_object.to"),
    ("to-spaces", _mo(to="+91 98765 43210"), "application/json", "messaging_object.to"),
    ("to-too-short", _mo(to="+1234567"), "application/json", "messaging_object.to"),
    ("to-too-long", _mo(to="+1234567890123456"), "application/json", "messaging_object.to"),
    ("text-missing", _mo(text=...), "application/json", "messaging_object.text"),
    ("body-missing", _mo(text={"preview_url": False}), "application/json", "messaging_object.text.body"),
    ("body-number", _text(body=42), "application/json", "messaging_object.text.body"),
    ("body-blank", _text(body=" \n\t "), "application/json", "messaging_object.text.body"),
    ("body-4097", _text(body="a" * 4097), "application/json", "messaging_object.text.body"),
    ("body-2049-emoji", _text(body="😀" * 2049), "application/json", "messaging_object.text.body"),
    ("preview-url-yes", _text(preview_url="yes"), "application/json", "messaging_object.text.preview_url"),
    ("context-string", _mo(context="wamid.X"), "application/json", "messaging_object.context"),
    ("context-empty-id", _mo(context={"message_id": ""}), "application/json", "messaging_object.context.message_id"),
    ("context-no-id", _mo(context={}), "application/json", "messaging_object.context.message_id"),
    ("extra-info-list", json.dumps(reply(extra_info=["ref"])).encode(), "application/json", "extra_info"),
    ("ref-number", json.dumps(reply(extra_info={"ref": 7})).encode(), "application/json", "extra_info.ref"),
    (
        "source-null",
        json.dumps(reply(extra_info={"wa_source": None})).encode(),
        "application/json",
        "extra_info.wa_source",
    ),
    ("text-plain", json.dumps(reply()).encode(), "text/plain", "Content-Type"),
    ("form", json.dumps(reply()).encode(), "application/x-www-form-urlencoded", "Content-Type"),
    ("no-content-type", json.dumps(reply()).encode(), None, "Content-Type"),
]


@pytest.mark.parametrize(("raw", "content_type", "field"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
def test_bad_body_is_wa400_naming_the_field(box, client, raw, content_type, field):
    headers = {"api-key": SANDBOX_API_KEY}
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = post(client, raw=raw, headers=headers)

    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["code"] == "WA400"
    assert answer["message"] == "Refer to correct payload format"
    assert answer["data"] == {}
    assert answer["error"]["field"] == field
    assert answer["error"]["payload"].startswith("Incorrect payload format")
    assert box.state.count == 0


def test_body_length_is_reported_in_utf16_units(client):
    r = post(client, raw=_text(body="😀" * 2049))
    assert "4098 UTF-16 code units" in r.json()["error"]["payload"]


def test_content_type_with_charset_is_json(client):
    headers = {"Content-Type": "Application/JSON; charset=utf-8", "api-key": SANDBOX_API_KEY}
    assert post(client, reply(), headers=headers).status_code == 202


# --------------------------------------------------------------------------- magic numbers


def test_magic_numbers_are_valid_distinct_and_not_examples():
    numbers = [m.number for m in MAGIC_NUMBERS]
    assert len(set(numbers)) == len(numbers)
    assert len({m.name for m in MAGIC_NUMBERS}) == len(MAGIC_NUMBERS)
    examples = {CUSTOMER, "+16505551234", SANDBOX_WA_NUMBER}
    for region in ("US", "IN", "GB"):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            examples.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    for number in [*numbers, SANDBOX_WA_NUMBER]:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_possible_number(parsed), number
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    assert not set(numbers) & examples


def test_magic_numbers_cover_every_documented_failure():
    codes = {m.code for m in MAGIC_NUMBERS}
    assert {"RBC001", "WA401", "WA-401", "WA400", "E110", "WAV2101", "WA500", "WA429"} <= codes
    statuses = {m.http_status for m in MAGIC_NUMBERS}
    assert {429, 502, 503, None} <= statuses
    assert magic_number("slow").exit_code == ExitCode.OUTCOME_UNKNOWN
    assert magic_number("dropped").exit_code == ExitCode.OUTCOME_UNKNOWN
    for m in MAGIC_NUMBERS:
        assert m.simulates and "\n" not in m.simulates
        if m.http_status is not None and m.name != "slow":
            # The exit code documented here is the one errors.py derives from the answer.
            assert exit_code_for(m.code, m.http_status) == m.exit_code, m


def test_sandbox_account_constants_look_real():
    assert re.fullmatch(r"HX[A-Z0-9]{12}IN", SANDBOX_SID)
    assert len(SANDBOX_API_KEY) >= 16
    assert all(33 <= ord(c) < 127 for c in SANDBOX_API_KEY)


IMMEDIATE = [m for m in MAGIC_NUMBERS if m.name not in ("slow", "dropped")]


@pytest.mark.parametrize("magic", IMMEDIATE, ids=[m.name for m in IMMEDIATE])
def test_magic_number_gives_its_documented_answer(box, client, magic):
    r = post(client, reply(to=magic.number))

    assert r.status_code == magic.http_status, r.text
    if magic.code is not None:
        answer = r.json()
        assert answer["code"] == magic.code
        assert set(answer) == {"code", "message", "data", "error"}
        assert answer["data"] == ([] if magic.code == "RBC001" else {})
    if magic.http_status in (429, 503):
        assert r.headers["retry-after"] == "1"
    else:
        assert "retry-after" not in r.headers
    if magic.name == "gateway_html_502":
        assert r.headers["content-type"].startswith("text/html")
        assert "<html>" in r.text
        with pytest.raises(ValueError):
            r.json()
    assert box.state.count == 0


def test_slow_number_times_out_a_short_client(box, caplog):
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=box.base_url, timeout=httpx.Timeout(5.0, read=0.3)) as short:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            post(short, reply(to=magic_number("slow").number))
        assert time.monotonic() - started < 3
    time.sleep(0.2)  # the server notices the disconnect and ends the answer without a word
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert box.state.count == 0


def test_slow_number_answers_a_gateway_504_when_the_wait_ends():
    with running_sandbox(slow_seconds=0.3) as box, httpx.Client(base_url=box.base_url, timeout=5) as c:
        r = post(c, reply(to=magic_number("slow").number))
    assert r.status_code == 504
    assert r.headers["content-type"].startswith("text/html")


def test_dropped_number_closes_the_connection_quietly(box, client, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, reply(to=magic_number("dropped").number))
    # The drop is intended: uvicorn must not log it as an application error.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert box.state.count == 0
    # The server is still fine afterwards.
    assert post(client, reply()).status_code == 202


def test_log_filter_keeps_real_errors():
    quiet = sandbox._QuietDrops()

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, "", 0, "x", None, (type(exc), exc, None))

    assert not quiet.filter(record(sandbox._ConnectionDropped()))
    assert quiet.filter(record(RuntimeError("a real bug")))


# --------------------------------------------------------------------------- options


def test_fail_rate_one_always_answers_wa500():
    with running_sandbox(fail_rate=1.0) as box, httpx.Client(base_url=box.base_url, timeout=5) as c:
        answers = [post(c, reply()) for _ in range(5)]
        assert {r.status_code for r in answers} == {500}
        assert {r.json()["code"] for r in answers} == {"WA500"}
        assert box.state.count == 0


def _run(seed: int) -> list[tuple[int, str | None]]:
    with running_sandbox(fail_rate=0.5, seed=seed) as box, httpx.Client(base_url=box.base_url, timeout=5) as c:
        out = []
        for _ in range(30):
            r = post(c, reply())
            out.append((r.status_code, r.json()["data"].get("message_id")))
        return out


def test_seed_makes_failures_and_ids_reproducible():
    first, again, other = _run(7), _run(7), _run(8)
    assert first == again
    assert {status for status, _ in first} == {202, 500}
    assert first != other


def test_latency_is_applied():
    with running_sandbox(latency_ms=100) as box, httpx.Client(base_url=box.base_url, timeout=5) as c:
        started = time.monotonic()
        r = post(c, reply())
        elapsed = time.monotonic() - started
    assert r.status_code == 202
    assert 0.1 <= elapsed < 2


@pytest.mark.parametrize("options", [{"fail_rate": 1.5}, {"fail_rate": -0.1}, {"latency_ms": -1}])
def test_out_of_range_options_are_refused(options):
    with pytest.raises(ValueError):
        create_app(**options)


def test_app_exposes_its_state():
    state = SandboxState()
    assert create_app(state=state).state is state


# --------------------------------------------------------------------------- lifecycle


def test_shutdown_is_quick_with_a_slow_request_in_flight(caplog):
    caplog.set_level(logging.DEBUG)
    outcome: list[BaseException | httpx.Response] = []

    with running_sandbox() as box:
        leaving = threading.Event()

        def slow() -> None:
            # The hook fires as the request is about to leave; a fixed sleep alone raced a cold start.
            with httpx.Client(base_url=box.base_url, timeout=30, event_hooks={"request": [lambda r: leaving.set()]}) as c:
                try:
                    outcome.append(post(c, reply(to=magic_number("slow").number)))
                except httpx.HTTPError as exc:
                    outcome.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        assert leaving.wait(10)
        time.sleep(0.5)  # let the server read it and start waiting
        started = time.monotonic()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], httpx.RemoteProtocolError)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_taken_port_is_a_clear_error(box):
    with pytest.raises(SandboxError) as caught:
        with running_sandbox(port=box.port):
            pass
    assert caught.value.exit_code == ExitCode.USAGE
    assert str(box.port) in str(caught.value)


def test_handle_gives_what_a_client_needs(box):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", box.base_url)
    assert box.port > 0
    assert (box.sid, box.api_key, box.wa_number) == (SANDBOX_SID, SANDBOX_API_KEY, SANDBOX_WA_NUMBER)
    assert box.env["KALEYRA_BASE_URL"] == box.base_url
    assert box.messages_url.endswith(PATH)


def test_import_is_cheap():
    code = (
        "import sys, kaleyra_cli.sandbox;"
        "print(sorted(m for m in ('uvicorn', 'httpx', 'phonenumbers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


SERVE = """
import sys
from kaleyra_cli.sandbox import serve
serve(port=0, announce=lambda text: print(text, flush=True))
print("returned", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_announces_and_returns_on_a_signal(sig):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.strip().startswith("export KALEYRA_WA_NUMBER="):
                break
        text = "".join(lines)
        base_url = re.search(r"export KALEYRA_BASE_URL=(http://127\.0\.0\.1:\d+)", text).group(1)
        assert SANDBOX_SID in text and SANDBOX_API_KEY in text and SANDBOX_WA_NUMBER in text
        with httpx.Client(base_url=base_url, timeout=5) as c:
            assert post(c, reply()).status_code == 202
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "returned" in out
    assert "Traceback" not in err
