"""Reading and validating batch files: formats, encodings, every problem by row before anything is sent."""

from __future__ import annotations

import json

import pytest

from kaleyra_cli.batch import BatchSource, Shard, parse_delimiter, plan_batch, sniff_delimiter
from kaleyra_cli.errors import UsageError

from .conftest import json_lines, number, write_csv


def test_excel_csv_utf8_with_bom_semicolons_and_a_comma_in_the_body(kwa, box_env, tmp_path):
    # Excel "CSV UTF-8" in a European locale: BOM, ';' between cells, ', ' inside a body unquoted.
    raw = "\ufeffto;context;body;ref\r\n+919876543210;wamid.A1;Hello, your order shipped;r-1\r\n+919876543211;;Ça va, merci 😀;r-2\r\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(raw.encode("utf-8"))
    checked = kwa("validate", "--batch", str(path), "--json")
    assert checked.exit_code == 0, checked.output
    doc = checked.json()
    assert doc["ok"] and doc["rows"] == 2 and doc["delimiter"] == ";" and doc["columns"] == ["to", "context", "body", "ref"]

    sent = kwa("reply", "--batch", str(path), "--json")
    assert sent.exit_code == 0, sent.output
    records = sorted(box_env.state.messages(), key=lambda r: r["extra_info"]["ref"])
    assert [(r["to"], r["body"], r["context_message_id"]) for r in records] == [
        ("+919876543210", "Hello, your order shipped", "wamid.A1"),
        ("+919876543211", "Ça va, merci 😀", None),
    ]


def test_tab_separated_by_extension_and_by_sniffing(kwa, tmp_path):
    rows = [["to", "body"], [number(1), "tab, separated; text"]]
    for name in ("rows.tsv", "rows.txt"):
        path = write_csv(tmp_path / name, rows, delimiter="\t")
        doc = kwa("validate", "--batch", str(path), "--json").json()
        assert doc["ok"] and doc["delimiter"] == "tab" and doc["format"] == "csv", doc


def test_quoted_multiline_body_kept_and_later_lines_counted(kwa, box_env, tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text(f'to,body\n{number(1)},"line one\nline two\n\nline four"\n{number(2)},\n', encoding="utf-8")
    result = kwa("validate", "--batch", str(path), "--json")
    assert result.exit_code == 2, result.output
    (problem,) = result.json()["problems"]
    # Row 2 starts on line 6: the header, then row 1 spanning lines 2-5.
    assert (problem["row"], problem["line"], problem["column"], problem["code"]) == (2, 6, "body", "BODY_MISSING")

    path.write_text(f'to,body\n{number(1)},"line one\nline two\n\nline four"\n', encoding="utf-8")
    assert kwa("reply", "--batch", str(path)).exit_code == 0
    assert box_env.state.messages()[0]["body"] == "line one\nline two\n\nline four"


def test_jsonl_with_blank_lines_rows_and_lines_numbered(kwa, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"to": number(1), "body": "one"}),
                "",
                "   ",
                json.dumps({"to": number(2), "body": "   "}),
                json.dumps({"to": number(3), "body": "three", "preview_url": True}),
            ]
        )
        + "\n\n",
        encoding="utf-8",
    )
    result = kwa("validate", "--batch", str(path), "--json")
    assert result.exit_code == 2, result.output
    doc = result.json()
    assert doc["rows"] == 3
    problems = {(p["row"], p["line"], p["column"], p["code"]) for p in doc["problems"]}
    assert problems == {(2, 4, "$.body", "BODY_BLANK")}
    # Row 3 asks for a preview without a URL: a warning, located too.
    assert {(w["row"], w["column"], w["code"]) for w in doc["warnings"]} == {(3, "$.preview_url", "PREVIEW_WITHOUT_URL")}


def test_to_stays_text_plus_kept_00_refused_with_row_number(kwa, box_env, tmp_path):
    path = write_csv(tmp_path / "to.csv", [["to", "body"], ["+919876543210", "a"], ["00919876543210", "b"], ["919876543210", "c"]])
    result = kwa("reply", "--batch", str(path), "--json")
    assert result.exit_code == 2, result.output
    doc = result.json()
    found = {(p["row"], p["column"], p["code"]) for p in doc["problems"]}
    assert found == {(2, "to", "NUMBER_INTERNATIONAL_PREFIX"), (3, "to", "NUMBER_NO_PLUS")}
    by_row = {p["row"]: p for p in doc["problems"]}
    assert "Did you mean +919876543210?" in by_row[2]["hint"]
    # Batch wording names the column, not the single-reply flag.
    assert by_row[3]["message"].startswith("to has no '+'") and "--to" not in by_row[3]["message"]
    assert box_env.state.count == 0


def test_jsonl_number_for_to_is_an_error_naming_the_row(kwa, tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"to": "+919876543210", "body": "ok"}\n{"to": 919876543210, "body": "lost +"}\n', encoding="utf-8")
    result = kwa("validate", "--batch", str(path), "--json")
    assert result.exit_code == 2, result.output
    (problem,) = result.json()["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (2, "$.to", "TO_NOT_TEXT")
    assert "leading '+'" in problem["message"]


def test_empty_to_and_blank_body_both_reported_before_anything_is_sent(kwa, box_env, tmp_path):
    path = write_csv(
        tmp_path / "bad.csv",
        [["to", "body"], [number(1), "fine"], ["", "no recipient"], [number(3), "   \t "], [number(4), "fine too"]],
    )
    result = kwa("reply", "--batch", str(path), "-o", "plain")
    assert result.exit_code == 2, result.output
    assert "row 2, line 3, to: TO_MISSING" in result.stderr
    assert "row 3, line 4, body: BODY_BLANK" in result.stderr
    assert "nothing was sent" in result.stderr
    assert box_env.state.count == 0  # not even the valid rows


def test_skip_invalid_sends_the_valid_rows_and_records_the_others(kwa, box_env, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [["id", "to", "body"], ["a", number(1), "fine"], ["b", "", "no recipient"]])
    results = tmp_path / "results.jsonl"
    result = kwa("reply", "--batch", str(path), "--skip-invalid", "--results", str(results), "--json")
    assert result.exit_code == 10, result.output
    rows, summary = json_lines(result.stdout)
    assert {(r["id"], r["status"]) for r in rows} == {("a", "accepted"), ("b", "invalid")}
    invalid = next(r for r in rows if r["status"] == "invalid")
    assert invalid["code"] == "TO_MISSING" and invalid["attempts"] == 0 and "to:" in invalid["error"]
    assert (summary["accepted"], summary["invalid"], summary["exit_code"]) == (1, 1, 10)
    assert box_env.state.count == 1


def test_unknown_columns_give_one_warning(kwa, tmp_path):
    path = write_csv(tmp_path / "u.csv", [["to", "body", "name", "city"], [number(1), "a", "Asha", "Pune"], [number(2), "b", "Ravi", "Goa"]])
    result = kwa("validate", "--batch", str(path), "-o", "plain")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "not used" in line]
    assert warnings == ["kwa: warning: column(s) not used: name, city (kwa reads to (or wa_id), body, context, ref, ref1, ref2, preview_url, wa_source, id; other columns are ignored.)"]


def test_header_without_to_or_body_is_a_usage_error_naming_the_columns(kwa, tmp_path):
    path = write_csv(tmp_path / "h.csv", [["phone", "text"], [number(1), "a"]])
    result = kwa("validate", "--batch", str(path), "-o", "plain")
    assert result.exit_code == 2, result.output
    assert "no 'to' (or 'wa_id') and 'body' column" in result.stderr and "phone, text" in result.stderr


def test_wa_id_column_and_excel_scientific_notation(kwa, tmp_path):
    path = write_csv(tmp_path / "w.csv", [["wa_id", "body"], ["919876543210", "webhook digits"], ["9.19877E+11", "rounded by Excel"]])
    result = kwa("validate", "--batch", str(path), "--json")
    assert result.exit_code == 2
    (problem,) = result.json()["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (2, "wa_id", "NUMBER_SCIENTIFIC")
    assert "Text" in problem["hint"]


def test_problems_are_bounded_in_output_but_all_counted(kwa, tmp_path):
    rows = [["to", "body"]] + [["", f"row {i}"] for i in range(120)]
    path = write_csv(tmp_path / "many.csv", rows)
    plain = kwa("validate", "--batch", str(path), "-o", "plain")
    assert plain.exit_code == 2
    assert sum(1 for line in plain.stderr.splitlines() if "TO_MISSING" in line) == 50
    assert "... and 70 more not shown" in plain.stderr
    doc = kwa("validate", "--batch", str(path), "--json").json()
    assert doc["problems_total"] == 120 and doc["invalid_rows"] == 120 and len(doc["problems"]) == 120


def test_not_utf8_malformed_csv_and_extra_fields(kwa, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("to,body\n+919876543210,Caf\xe9\n".encode("latin-1"))
    result = kwa("validate", "--batch", str(latin), "-o", "plain")
    assert result.exit_code == 2 and "not UTF-8" in result.stderr

    broken = tmp_path / "broken.csv"
    broken.write_text(f'to,body\n{number(1)},"never closed\n{number(2)},b\n', encoding="utf-8")
    doc = kwa("validate", "--batch", str(broken), "--json").json()
    assert [(p["row"], p["code"]) for p in doc["problems"]] == [(1, "CSV_MALFORMED")]
    assert "never closed" in doc["problems"][0]["hint"]

    extra = tmp_path / "extra.csv"
    extra.write_text(f"to,body\n{number(1)},Hello, world\n", encoding="utf-8")
    doc = kwa("validate", "--batch", str(extra), "--json").json()
    assert [(p["row"], p["code"]) for p in doc["problems"]] == [(1, "CSV_EXTRA_FIELDS")]


def test_stdin_format_and_delimiter_flags(kwa, box_env):
    text = f"to|body\n{number(1)}|from stdin\n"
    result = kwa("reply", "--batch", "-", "--delimiter", "|", "--json", input=text)
    assert result.exit_code == 0, result.output
    assert box_env.state.messages()[0]["body"] == "from stdin"
    jsonl = json.dumps({"to": number(2), "body": "forced"}) + "\n"
    result = kwa("reply", "--batch", "-", "--format", "jsonl", "--json", input=jsonl)
    assert result.exit_code == 0, result.output
    assert kwa("reply", "--batch", "-", "--api-key-file", "-", input="x").exit_code == 2


def test_flag_defaults_apply_to_every_row_and_a_cell_wins(kwa, box_env, tmp_path):
    path = write_csv(tmp_path / "d.csv", [["to", "body", "ref1", "preview_url"], [number(1), "a https://x.example", "", ""], [number(2), "b", "own", "false"]])
    result = kwa("reply", "--batch", str(path), "--ref1", "campaign-7", "--ref2", "wave-2", "--preview-url", "--wa-source", "zoho")
    assert result.exit_code == 0, result.output
    records = {r["to"]: r for r in box_env.state.messages()}
    assert records[number(1)]["extra_info"] == {"ref1": "campaign-7", "ref2": "wave-2", "wa_source": "zoho"}
    assert records[number(1)]["preview_url"] is True
    assert records[number(2)]["extra_info"] == {"ref1": "own", "ref2": "wave-2", "wa_source": "zoho"}
    assert records[number(2)]["preview_url"] is False


def test_batch_options_need_batch_and_single_inputs_conflict(kwa, tmp_path):
    assert "only apply with --batch" in kwa("reply", "--to", number(1), "--results", "r.jsonl", "hi").stderr
    path = write_csv(tmp_path / "x.csv", [["to", "body"], [number(1), "a"]])
    conflict = kwa("reply", "--batch", str(path), "--to", number(1))
    assert conflict.exit_code == 2 and "do not combine it with --to" in conflict.stderr
    assert kwa("reply", "--batch", str(path), "--resume").exit_code == 2
    assert kwa("reply", "--batch", str(path), "--shard", "3/2").exit_code == 2


def test_sniffing_and_shard_parsing_units():
    assert sniff_delimiter("to;body;ref") == ";"
    assert sniff_delimiter("to\tbody") == "\t"
    assert sniff_delimiter("to,body;x,y") == ","
    assert parse_delimiter("tab") == "\t"
    with pytest.raises(UsageError):
        parse_delimiter("ab")
    assert Shard.parse("2/4") == Shard(2, 4)
    for bad in ("0/3", "4/3", "1/0", "x", "1-2"):
        with pytest.raises(UsageError):
            Shard.parse(bad)


def test_many_rows_to_one_recipient_found_with_bounded_memory(tmp_path):
    rows = [["to", "body"]] + [[number(i), f"row {i}"] for i in range(500)] + [[number(9999), f"again {i}"] for i in range(25)]
    path = write_csv(tmp_path / "heavy.csv", rows)
    with BatchSource(str(path)) as source:
        plan = plan_batch(source)
    try:
        assert plan.heavy_recipients == [(number(9999), 25)]
        assert plan.to_send == 525
    finally:
        plan.close()


def test_twenty_rows_to_one_recipient_warns_naming_it(kwa, box_env, tmp_path):
    rows = [["to", "body"]] + [["+91 98765 43210", f"update {i}"] for i in range(20)] + [[number(1), "other"]]
    path = write_csv(tmp_path / "same.csv", rows)
    result = kwa("reply", "--batch", str(path), "-o", "plain")
    assert result.exit_code == 0, result.output
    assert "kwa: warning: 20 rows go to +919876543210" in result.stderr
    assert "pair rate limit" in result.stderr


def test_dry_run_and_idempotency_key_do_not_apply_to_batches(kwa, tmp_path):
    path = write_csv(tmp_path / "x.csv", [["to", "body"], [number(1), "a"]])
    dry = kwa("reply", "--batch", str(path), "--dry-run", "-o", "plain")
    assert dry.exit_code == 2 and "kwa validate --batch" in dry.stderr
    keyed = kwa("reply", "--batch", str(path), "--idempotency-key", "k1", "-o", "plain")
    assert keyed.exit_code == 2 and "--idempotency-key" in keyed.stderr


def test_a_line_without_end_is_refused_not_read_whole(kwa, tmp_path, monkeypatch):
    import kaleyra_cli.batch as batch

    monkeypatch.setattr(batch, "MAX_LINE_CHARS", 1000)
    path = tmp_path / "one-line.jsonl"
    path.write_text('{"to": "+919876543210", "body": "' + "x" * 5000 + '"}', encoding="utf-8")
    result = kwa("validate", "--batch", str(path), "-o", "plain")
    assert result.exit_code == 2 and "line 1 is longer than 1000 characters" in result.stderr
