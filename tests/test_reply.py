"""``kwa reply``: the exact request, output modes, inputs that must behave (issue 2)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, MESSAGE_ID, SID, TO, URL, WA_NUMBER


def sent_json(httpx_mock) -> dict:
    (request,) = httpx_mock.get_requests()
    return json.loads(request.content)


def test_sends_the_documented_request(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--context", "wamid.ABC=", "--ref", "order-7", "--wa-source", "api", "Thanks!")
    assert result.exit_code == 0, result.output
    (request,) = httpx_mock.get_requests()
    assert request.method == "POST"
    assert str(request.url) == f"https://api.in.kaleyra.io/v2/{SID}/whatsapp/{WA_NUMBER}/messages"
    assert "+" in request.url.raw_path.decode()  # the business number's + stays literal
    assert request.headers["api-key"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("kwa/")
    assert request.content == (
        '{"messaging_object":{"messaging_product":"whatsapp","recipient_type":"individual",'
        '"to":"+919876543210","type":"text","context":{"message_id":"wamid.ABC="},'
        '"text":{"preview_url":false,"body":"Thanks!"}},'
        '"extra_info":{"ref":"order-7","wa_source":"api"}}'
    ).encode()


def test_no_context_and_no_extra_info_are_left_out(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "hi").exit_code == 0
    assert sent_json(httpx_mock) == {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "text",
            "text": {"preview_url": False, "body": "hi"},
        }
    }


def test_plain_output_is_the_message_id_alone(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == MESSAGE_ID + "\n"


def test_json_output_document(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["ok"] is True and doc["exit_code"] == 0
    assert doc["message_id"] == MESSAGE_ID
    assert doc["http_status"] == 202 and doc["code"] == "WA202"
    assert doc["schema_version"] == 1 and doc["attempts"] == 1


def test_table_output_shows_the_message_id(kwa, creds, scenario):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "-o", "table", "hi")
    assert result.exit_code == 0, result.output
    assert MESSAGE_ID in result.stdout
    assert "accepted" in result.stdout and "\x1b[" not in result.stdout


def test_json_conflicts_with_other_output(kwa, creds):
    result = kwa("reply", "--to", TO, "--json", "-o", "table", "hi")
    assert result.exit_code == 2
    assert "--json" in result.stderr


@pytest.mark.parametrize("raw", ["+91 98765-43210", "+91 (98765) 43210", "+91\u00a098765\u201143210", "\u200e+91 98765 43210"])
def test_pasted_number_is_sent_in_e164(kwa, creds, scenario, httpx_mock, raw):
    scenario("accepted")
    result = kwa("reply", "--to", raw, "hi")
    assert result.exit_code == 0, result.output
    assert sent_json(httpx_mock)["messaging_object"]["to"] == "+919876543210"


@pytest.mark.parametrize(
    ("raw", "code", "suggestion"),
    [
        ("919876543210", "NUMBER_NO_PLUS", "+919876543210"),
        ("0091 98765 43210", "NUMBER_INTERNATIONAL_PREFIX", "+919876543210"),
        ("098765 43210", "NUMBER_NATIONAL", "9876543210"),
    ],
)
def test_number_without_plus_is_refused_with_did_you_mean(kwa, creds, httpx_mock, raw, code, suggestion):
    result = kwa("reply", "--to", raw, "hi")
    assert result.exit_code == 2, result.output
    assert code in result.stderr and "Did you mean" in result.stderr and suggestion in result.stderr
    assert httpx_mock.get_requests() == []


def test_to_wa_id_adds_the_plus(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to-wa-id", "919876543210", "hi").exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["to"] == "+919876543210"


def test_body_of_2048_emoji_is_sent(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "😀" * 2048)
    assert result.exit_code == 0, result.output
    assert sent_json(httpx_mock)["messaging_object"]["text"]["body"] == "😀" * 2048


def test_body_of_2049_emoji_is_refused(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "😀" * 2049)
    assert result.exit_code == 2
    assert "4098 UTF-16 units, limit 4096" in result.stderr
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("body", ["   ", "\n\t ", ""])
def test_blank_body_is_refused(kwa, creds, httpx_mock, body):
    result = kwa("reply", "--to", TO, body)
    assert result.exit_code == 2, result.output
    assert "BODY_" in result.stderr
    assert httpx_mock.get_requests() == []


def test_context_is_trimmed(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--context", " wamid.ABC= ", "hi").exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["context"] == {"message_id": "wamid.ABC="}


def test_context_without_wamid_prefix_is_only_a_warning(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--context", "ABGGFlA5Fpa", "hi")
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "wamid." in result.stderr
    assert sent_json(httpx_mock)["messaging_object"]["context"] == {"message_id": "ABGGFlA5Fpa"}


def test_strict_makes_warnings_errors(kwa, creds, httpx_mock):
    result = kwa("reply", "--strict", "--to", TO, "--context", "ABGGFlA5Fpa", "hi")
    assert result.exit_code == 2
    assert "CONTEXT_NOT_WAMID" in result.stderr
    assert httpx_mock.get_requests() == []


def test_context_with_inner_whitespace_is_refused(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--context", "wamid.AB C", "hi")
    assert result.exit_code == 2 and "CONTEXT_WHITESPACE" in result.stderr


@pytest.mark.parametrize("flag", ["--ref", "--ref1", "--ref2"])
def test_ref_of_256_characters_is_refused(kwa, creds, httpx_mock, flag):
    result = kwa("reply", "--to", TO, flag, "r" * 256, "hi")
    assert result.exit_code == 2
    assert "REF_TOO_LONG" in result.stderr and "256" in result.stderr
    assert httpx_mock.get_requests() == []


def test_ref_of_255_characters_is_sent(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--ref", "r" * 255, "hi").exit_code == 0
    assert sent_json(httpx_mock)["extra_info"] == {"ref": "r" * 255}


def test_unknown_wa_source_is_a_warning_with_suggestion(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--wa-source", "shopfy", "hi")
    assert result.exit_code == 0
    assert "shopify" in result.stderr


def test_preview_url_without_url_warns(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--preview-url", "no link here")
    assert result.exit_code == 0
    assert "PREVIEW" in result.stderr or "URL" in result.stderr
    assert sent_json(httpx_mock)["messaging_object"]["text"]["preview_url"] is True


# -- body sources -----------------------------------------------------------------------------


def test_body_from_stdin_loses_one_trailing_newline(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "-", input="line one\nline two\n\n").exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["text"]["body"] == "line one\nline two\n"


def test_body_file(kwa, creds, scenario, httpx_mock, tmp_path):
    scenario("accepted")
    path = tmp_path / "body.txt"
    path.write_text("from a file\n", encoding="utf-8")
    assert kwa("reply", "--to", TO, "--body-file", str(path)).exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["text"]["body"] == "from a file"


def test_body_option(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--body", "via option").exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["text"]["body"] == "via option"


def test_double_dash_allows_a_body_starting_with_dash(kwa, creds, scenario, httpx_mock):
    scenario("accepted")
    assert kwa("reply", "--to", TO, "--", "-1 item left").exit_code == 0
    assert sent_json(httpx_mock)["messaging_object"]["text"]["body"] == "-1 item left"


def test_two_body_sources_are_a_usage_error(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--body", "a", "b")
    assert result.exit_code == 2 and "twice" in result.stderr


def test_two_stdin_readers_are_a_usage_error(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--api-key-file", "-", "-", input="x")
    assert result.exit_code == 2 and "stdin" in result.stderr


def test_missing_body_file_is_a_usage_error(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--body-file", "/nonexistent/body.txt")
    assert result.exit_code == 2 and "/nonexistent/body.txt" in result.stderr


# -- payload ----------------------------------------------------------------------------------


def test_payload_file_is_validated_and_sent(kwa, creds, scenario, httpx_mock, tmp_path):
    scenario("accepted")
    payload = {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "context": {"message_id": "wamid.XYZ"},
            "to": "+91 98765 43210",
            "type": "text",
            "text": {"preview_url": False, "body": "from payload"},
        },
        "extra_info": {"ref": "customer1", "ref1": "marketing", "ref2": "dictionary", "wa_source": "api"},
    }
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    result = kwa("reply", "--payload", str(path))
    assert result.exit_code == 0, result.output
    sent = sent_json(httpx_mock)
    assert sent["messaging_object"]["to"] == "+919876543210"
    assert sent["extra_info"] == payload["extra_info"]


def test_payload_with_problems_lists_json_paths(kwa, creds, httpx_mock, tmp_path):
    path = tmp_path / "payload.json"
    path.write_text(json.dumps({"messaging_object": {"messaging_product": "sms", "to": "919876543210", "text": {"body": "x"}}}))
    result = kwa("reply", "--payload", str(path), "--json")
    assert result.exit_code == 2
    paths = {p["path"] for p in result.json()["problems"]}
    assert {"messaging_object.messaging_product", "messaging_object.to"} <= paths
    assert httpx_mock.get_requests() == []


# -- dry run ------------------------------------------------------------------------------------


def test_dry_run_prints_the_exact_request_and_never_connects(kwa, creds, httpx_mock):
    result = kwa("reply", "--to", TO, "--dry-run", "hi")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"POST {URL}"
    assert lines[-1] == (
        '{"messaging_object":{"messaging_product":"whatsapp","recipient_type":"individual","to":"+919876543210",'
        '"type":"text","text":{"preview_url":false,"body":"hi"}}}'
    )
    assert API_KEY not in result.stdout + result.stderr
    assert "api-key: Aq\u20263" in result.stdout
    assert "nothing was sent" in result.stderr
    assert httpx_mock.get_requests() == []


def test_dry_run_without_credentials_shows_placeholders(kwa, httpx_mock):
    result = kwa("reply", "--to", TO, "--dry-run", "--json", "hi")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["dry_run"] is True
    assert doc["request"]["url"] == "https://api.in.kaleyra.io/v2/<KALEYRA_SID>/whatsapp/<KALEYRA_WA_NUMBER>/messages"
    assert doc["request"]["headers"]["api-key"] == "<KALEYRA_API_KEY>"
    assert json.loads(doc["request"]["body"])["messaging_object"]["text"]["body"] == "hi"


def test_missing_credentials_name_flag_variable_and_config_key(kwa, httpx_mock):
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 2
    for word in ("--sid", "KALEYRA_SID", "KALEYRA_API_KEY", "--from", "KALEYRA_WA_NUMBER", "wa_number"):
        assert word in result.stderr


def test_stdout_pipes_to_jq_style_consumers(kwa, creds, scenario):
    """`kwa reply --json hi | jq -r .message_id`: stdout is exactly one JSON document."""
    scenario("accepted")
    result = kwa("reply", "--to", TO, "--json", "hi")
    assert json.loads(result.stdout)["message_id"] == MESSAGE_ID
    assert result.stdout.count("\n") == 1


def test_pod_selects_host(kwa, creds, httpx_mock):
    httpx_mock.add_response(url=f"https://api.eu.kaleyra.io/v2/{SID}/whatsapp/{WA_NUMBER}/messages", status_code=202, json={"code": "WA202", "data": {"message_id": "m"}})
    assert kwa("reply", "--pod", "eu", "--to", TO, "hi").exit_code == 0


def test_base_url_with_api_path_is_refused(kwa, creds, httpx_mock):
    result = kwa("reply", "--base-url", "https://api.in.kaleyra.io/v2/HX", "--to", TO, "hi")
    assert result.exit_code == 2 and "/v2/" in result.stderr


def test_plain_http_to_remote_host_warns(kwa, creds, httpx_mock):
    httpx_mock.add_response(status_code=202, json={"code": "WA202", "data": {"message_id": "m"}})
    result = kwa("reply", "--base-url", "http://kaleyra.example", "--to", TO, "hi")
    assert result.exit_code == 0
    assert "unencrypted" in result.stderr


def test_version(kwa):
    from kaleyra_cli import __version__

    result = kwa("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"kwa {__version__}"


def test_accepted_without_message_id_is_exit_0_with_warning(kwa, creds, httpx_mock):
    httpx_mock.add_response(url=URL, status_code=202, content=b'{"code":"WA202" "message":"Request Accepted"}')
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no message_id" in result.stderr


def test_github_output_gets_the_message_id(kwa, creds, scenario, tmp_path, monkeypatch):
    scenario("accepted")
    out = tmp_path / "gh_output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert kwa("reply", "--to", TO, "hi").exit_code == 0
    assert out.read_text() == f"message_id={MESSAGE_ID}\n"


def test_closed_stdout_is_not_an_internal_error(kwa, creds, scenario, monkeypatch):
    """`kwa reply ... | head -0`: the reader went away; the send happened, so no 'internal error'."""
    scenario("accepted")

    def broken(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("kaleyra_cli.render.Renderer.out", broken)
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.stderr


def test_business_number_without_plus_hint_does_not_suggest_to_wa_id(kwa, creds, monkeypatch, httpx_mock):
    monkeypatch.setenv("KALEYRA_WA_NUMBER", "919000012345")
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 2
    assert "+919000012345" in result.stderr and "--to-wa-id" not in result.stderr


def test_empty_api_key_file_says_it_is_empty(kwa, creds, monkeypatch, tmp_path, httpx_mock):
    monkeypatch.delenv("KALEYRA_API_KEY")
    empty = tmp_path / "key.txt"
    empty.write_text("\n")
    empty.chmod(0o600)
    result = kwa("reply", "--to", TO, "--api-key-file", str(empty), "hi")
    assert result.exit_code == 2
    assert "empty" in result.stderr and "SETTING_MISSING" not in result.stderr


def test_dry_run_without_credentials_says_a_send_would_stop(kwa):
    result = kwa("reply", "--to", TO, "--dry-run", "hi")
    assert result.exit_code == 0
    assert "a real send would stop here" in result.stderr and "sid" in result.stderr


def test_payload_problems_name_the_payload_field_not_a_flag(kwa, creds, tmp_path, httpx_mock):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"messaging_object": {"to": "919876543210", "text": {"body": "x"}}}))
    doc = kwa("reply", "--payload", str(path), "--json").json()
    by_path = {p["path"]: p for p in doc["problems"]}
    assert by_path["messaging_object.to"]["message"].startswith("messaging_object.to ")
    assert by_path["messaging_object.messaging_product"]["code"] == "PAYLOAD_MISSING_FIELD"
