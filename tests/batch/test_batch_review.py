"""Regressions from a review of the batch command: each input once misbehaved."""

from __future__ import annotations

import pytest



def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_results_file_that_is_the_batch_file_is_refused(kwa, tmp_path):
    source = _csv(tmp_path / "same.csv", "to,body\n+919876543210,hi\n")
    for flag in ("--force", "--resume"):
        result = kwa("reply", "--batch", str(source), "--sandbox", "--results", str(source), flag)
        assert result.exit_code == 2, result.output
        assert "is the --batch file itself" in result.stderr
    assert source.read_text(encoding="utf-8") == "to,body\n+919876543210,hi\n"


@pytest.mark.parametrize("rate", ["inf", "-inf"])
def test_infinite_rate_is_a_usage_error(kwa, tmp_path, rate):
    source = _csv(tmp_path / "a.csv", "to,body\n+919876543210,hi\n")
    result = kwa("reply", "--batch", str(source), "--sandbox", "--rate", rate)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.stderr


def test_header_only_csv_is_an_input_error(kwa, tmp_path):
    source = _csv(tmp_path / "h.csv", "to,body\n")
    result = kwa("reply", "--batch", str(source), "--sandbox")
    assert result.exit_code == 2, result.output
    assert "no rows" in result.stderr


def test_json_lines_escape_line_separators_without_results(kwa, tmp_path):
    source = _csv(tmp_path / "ls.csv", "to,body,id\n+919876543210,hi,a\u2028b\n")
    result = kwa("reply", "--batch", str(source), "--sandbox", "--json")
    assert result.exit_code == 0, result.output
    assert "\u2028" not in result.stdout
    assert len(result.stdout.splitlines()) == 2  # one row line, one summary line


def test_long_unquoted_cell_does_not_blame_a_quote_only(kwa, tmp_path):
    source = _csv(tmp_path / "big.csv", "to,body\n+919876543210," + "x" * 200_000 + "\n")
    result = kwa("validate", "--batch", str(source), "--json")
    assert result.exit_code == 2
    assert "shorten the cell" in result.stdout


def test_invalid_input_leaves_no_results_file_or_folders(kwa, tmp_path):
    source = _csv(tmp_path / "bad.csv", "to,body\nnot-a-number,hi\n")
    results = tmp_path / "out" / "deep" / "r.jsonl"
    result = kwa("reply", "--batch", str(source), "--sandbox", "--results", str(results))
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists()
