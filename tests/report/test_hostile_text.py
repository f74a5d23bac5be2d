"""Names that break output (issue 15): Rich markup, ``|`` and spreadsheet formulas in subset names, model labels
and errors are shown as text, never interpreted."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rmbench.results.markdown import csv_cell, md_cell
from tests._reliability import pair
from tests.helpers import cli, write_suite

HOSTILE = ["chat[/]", "x[should-respond]", "a|b", "=HYPERLINK(\"http://x\")"]


def test_markup_and_pipes_in_subset_names_survive_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [pair(i, subset=HOSTILE[i % len(HOSTILE)]) for i in range(8)]
    suite = write_suite(tmp_path / "suite", records, name="hostile", extra="fields: {subset: subset}\n")
    out = tmp_path / "out"
    code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                str(tmp_path / "c.sqlite"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("chat[/]", "x[should-respond]"):
        assert f"subset:{name}" in printed  # shown whole, not eaten as markup
    report = (out / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| subset:")]
    assert len(rows) == len(HOSTILE)
    assert all(line.replace("\\|", "").count("|") == 6 for line in rows)  # 5 cells each, the pipe escaped


def test_error_messages_with_markup_are_printed_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "run[/]"
    assert cli(["compare", str(missing), str(missing)]) == 2
    assert "run[/]" in capsys.readouterr().err


def test_cells_are_escaped_as_owasp_advises() -> None:
    assert [csv_cell(t) for t in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "model")] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "model"
    ]
    assert md_cell("a|b\nc") == "a\\|b c"


def test_leaderboard_labels_are_text_in_csv_and_markdown(tmp_path: Path) -> None:
    records = [pair(i) for i in range(6)]
    suite = write_suite(tmp_path / "suite", records, name="tiny")
    runs = tmp_path / "runs"
    for label in ("=cmd|x", "plain"):
        assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                    str(tmp_path / "c.sqlite"), "--out", str(runs / label)]) == 0
    config = tmp_path / "board.yaml"
    config.write_text(
        "name: board\ntitle: Board\nruns: [runs/*]\ncolumns:\n  - {suite: tiny, metric: accuracy}\n", encoding="utf-8"
    )
    assert cli(["leaderboard", "build", str(config)]) == 0
    with (tmp_path / "board.csv").open(newline="") as handle:
        labels = [row["model"] for row in csv.DictReader(handle)]
    assert sorted(labels) == ["'=cmd|x", "plain"]
    table = [line for line in (tmp_path / "board.md").read_text().splitlines() if "cmd" in line]
    assert len(table) == 1 and "=cmd\\|x" in table[0]


def test_lone_surrogate_is_refused_naming_record_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [pair(i) for i in range(4)]
    records[2]["chosen"] = "bad \ud800 text"  # json.dumps writes it as the escape \ud800, which json.loads accepts
    suite = write_suite(tmp_path / "suite", records, name="surrogate")
    code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "line 3" in err and "'chosen'" in err and "surrogate" in err


def test_a_nan_run_is_refused_not_ranked_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hand-edited NaN once sorted first on a board; now the file and field are named and nothing is written."""
    import json

    suite = write_suite(tmp_path / "suite", [pair(i) for i in range(4)], name="tiny")
    runs = tmp_path / "runs"
    for label in ("nan", "plain"):
        assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                    str(tmp_path / "c.sqlite"), "--out", str(runs / label)]) == 0
    document = json.loads((runs / "nan" / "results.json").read_text())
    document["metrics"][0]["value"] = float("nan")
    (runs / "nan" / "results.json").write_text(json.dumps(document))
    config = tmp_path / "board.yaml"
    config.write_text("name: board\ntitle: Board\nruns: [runs/*]\ncolumns:\n  - {suite: tiny, metric: accuracy}\n")
    capsys.readouterr()
    assert cli(["leaderboard", "build", str(config)]) == 2
    err = capsys.readouterr().err
    assert "nan/results.json" in err and "metrics[0].value" in err
    assert not (tmp_path / "board.md").exists()
