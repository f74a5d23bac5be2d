"""Property-based hostile inputs (issue 15): generated malformed results.json, score files, suite YAML and suite data
fed to ``compare``, ``gate``, ``correlate``, ``leaderboard build``, ``evaluate-scores`` and ``run``. Never a
traceback, never exit 1 except a gate's real regression verdict, and an exit-2 message names the file, the record
(score-file entry, data line) and the field the edit broke; text cut short is named by its line and column.

Each example is one edit: cut the text short, or replace or delete one node. The edit knows where it broke the
document, so the test asserts the message points there. Cheap by design: one small run built once, in-process CLI
calls, few derandomized examples per command.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmbench.results.io import ResultsFileError, field_path, parse_results
from tests._reliability import pair
from tests.data.test_external_rewardmath import direct
from tests.helpers import cli, write_suite

SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)

Path_ = tuple[str | int, ...]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    suite = write_suite(root / "suite", [pair(i) for i in range(12)], name="hostile")
    out = root / "run"
    assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                str(root / "c.sqlite"), "--out", str(out)]) == 0
    return out


# --- one edit to a JSON-like document -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Cut the text to ``cut`` characters, or replace (``delete`` False) or delete the node at ``path``."""

    path: Path_ = ()
    delete: bool = False
    value: Any = None
    cut: int | None = None

    def document(self, document: Any) -> Any:
        """The edited document (not for a cut)."""
        assert self.cut is None
        if not self.path:
            return None if self.delete else self.value
        document = copy.deepcopy(document)
        parent = document
        for key in self.path[:-1]:
            parent = parent[key]
        if self.delete:
            del parent[self.path[-1]]
        else:
            parent[self.path[-1]] = self.value
        return document

    def json(self, document: Any) -> str:
        """The edited JSON text (``allow_nan``: NaN and Infinity, as a hand edit may leave them)."""
        if self.cut is not None:
            return json.dumps(document)[: self.cut]
        edited = self.document(document)
        return "" if edited is None and self.delete else json.dumps(edited)

    def fields(self) -> list[str]:
        """The broken field and each field that holds it, deepest first (``metrics[0].value``, ``metrics[0]``,
        ``metrics``): a message names one of them."""
        return [field_path(self.path[:n]) for n in range(len(self.path), 0, -1)]


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if prefix:
        yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


@st.composite
def edits(draw: st.DrawFn, document: Any, *, root: bool = False, values: st.SearchStrategy[Any] = JSON_VALUES,
          cut: bool = True) -> Edit:
    """One edit of ``document``; ``root``: the whole document may be replaced or deleted too."""
    if cut and draw(st.integers(0, 5)) == 0:
        return Edit(cut=draw(st.integers(0, len(json.dumps(document)) - 1)))
    path = draw(st.sampled_from(([()] if root else []) + sorted(_paths(document), key=repr)))
    return Edit(path, delete=True) if draw(st.booleans()) else Edit(path, value=draw(values))


def _check(code: int, out: str, err: str, file: Path, *, regression_allowed: bool = False) -> bool:
    """The contract every command keeps on hostile input; True when it refused the input (exit 2)."""
    assert "Traceback" not in out + err
    assert code in ((0, 1, 2) if regression_allowed else (0, 2)), err
    if code == 1:
        assert "FAIL" in out  # exit 1 is only ever the gate's verdict
    if code == 2:
        assert str(file) in err, err
    return code == 2


def _names_line_and_column(err: str) -> bool:
    return re.search(r"line \d+,? column \d+", err) is not None


def _results_refused(err: str, edit: Edit, document: dict[str, Any]) -> None:
    """An edit the contract refuses (a cut, a wrong type, a missing key) is named exactly; an edit that leaves a
    valid file that cannot be used (another suite name, a metric renamed) names the field or a field holding it."""
    if edit.cut is not None:
        assert _names_line_and_column(err), err
        return
    try:
        parse_results(edit.document(document), "results.json")
    except ResultsFileError:
        assert edit.fields()[0] in err, (edit, err)
        return
    assert any(field in err for field in edit.fields()), (edit, err)


# --- results.json ---------------------------------------------------------------------------------------------------


@given(data=st.data())
@SETTINGS
def test_broken_results_never_crash_compare_gate_correlate(
    good_run: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((good_run / "results.json").read_text())
    edit = data.draw(edits(document))
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad-run"
        shutil.copytree(good_run, bad)
        file = bad / "results.json"
        file.write_text(edit.json(document))
        capsys.readouterr()
        code = cli(["compare", str(good_run), str(bad), "--resamples", "1000"])
        out, err = capsys.readouterr()
        if _check(code, out, err, file):
            _results_refused(err, edit, document)
        code = cli(["gate", "--candidate", str(bad), "--baseline", str(good_run), "--resamples", "1000",
                    "--junit", str(Path(tmp) / "gate.xml")])
        out, err = capsys.readouterr()
        if _check(code, out, err, file, regression_allowed=True):
            _results_refused(err, edit, document)
        assert (Path(tmp) / "gate.xml").exists()  # written on every outcome
        shutil.copytree(good_run, Path(tmp) / "other-run")  # correlate needs three models
        code = cli(["correlate", str(good_run), str(Path(tmp) / "other-run"), str(bad), "--x", "accuracy", "--y",
                    "accuracy", "--resamples", "1000"])
        out, err = capsys.readouterr()
        if _check(code, out, err, file):
            _results_refused(err, edit, document)


@given(data=st.data())
@SETTINGS
def test_broken_results_never_crash_leaderboard_build(
    good_run: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((good_run / "results.json").read_text())
    edit = data.draw(edits(document))
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        shutil.copytree(good_run, runs / "good")
        shutil.copytree(good_run, runs / "bad")
        file = runs / "bad" / "results.json"
        file.write_text(edit.json(document))
        config = Path(tmp) / "board.yaml"
        config.write_text("name: board\ntitle: B\nruns: [runs/*]\ncolumns:\n  - {suite: hostile, metric: accuracy}\n")
        capsys.readouterr()
        code = cli(["leaderboard", "build", str(config)])
        out, err = capsys.readouterr()
        if _check(code, out, err, file):
            _results_refused(err, edit, document)


@pytest.mark.parametrize(("edit", "named"), [
    (Edit(("metric_options", "seed"), delete=True), "metric_options.seed: missing"),
    (Edit(("metrics", 0, "name"), value="renamed"), "metrics has renamed"),
    (Edit(("metrics", 0, "value"), value=None), "metrics[0].value is null"),
    (Edit(("suite", "version"), value="2"), "suite.version is '1' in"),
])
def test_gate_names_the_field_a_hand_edit_broke(
    good_run: Path, tmp_path: Path, edit: Edit, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Examples hypothesis may not draw: a missing metric option, a renamed metric, a null value, another version."""
    bad = tmp_path / "bad-run"
    shutil.copytree(good_run, bad)
    (bad / "results.json").write_text(edit.json(json.loads((good_run / "results.json").read_text())))
    capsys.readouterr()
    assert cli(["gate", "--candidate", str(bad), "--baseline", str(good_run), "--resamples", "1000"]) == 2
    err = capsys.readouterr().err
    assert str(bad / "results.json") in err and named in err, err


# --- score files ----------------------------------------------------------------------------------------------------


SCORE_RECORDS = [direct(f"problem {i}", [0.9, 0.1 * i, 0.2]) for i in range(4)]


@given(edit=edits(SCORE_RECORDS, root=True))
@SETTINGS
def test_broken_score_files_never_crash_evaluate_scores(edit: Edit, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "scores.json"
        file.write_text(edit.json(SCORE_RECORDS))
        capsys.readouterr()
        code = cli(["evaluate-scores", str(file), "--out", str(Path(tmp) / "out")])
        out, err = capsys.readouterr()
        if not _check(code, out, err, file):
            return
        if edit.cut is not None or (not edit.path and edit.delete):
            assert _names_line_and_column(err), err
        elif edit.path:  # the entry and, below it, the field (``score[1]`` and ``solution_reference`` by name)
            assert f"record {edit.path[0]}" in err, (edit, err)
            if len(edit.path) > 1:
                assert str(edit.path[1]) in err, (edit, err)


# --- suite YAML and its data ----------------------------------------------------------------------------------------


SUITE = {"name": "s", "version": "1", "protocol": "pairwise", "sources": [{"local": "data.jsonl"}]}
DATA = [pair(i) for i in range(3)]
#: No glob characters: a ``local`` pattern matching other files is a different (valid) suite.
SUITE_VALUES = JSON_VALUES.filter(lambda v: not (isinstance(v, str) and set(v) & set("*?[")))


@st.composite
def suite_edits(draw: st.DrawFn) -> tuple[str, Edit]:
    """("suite", an edit of the suite document), ("suite-text", a cut of the YAML text) or ("data", an edit of
    the data records, a cut one a cut of the first line)."""
    target = draw(st.sampled_from(["suite", "suite-text", "data"]))
    if target == "suite-text":
        return target, Edit(cut=draw(st.integers(0, len(yaml.safe_dump(SUITE, sort_keys=False)) - 1)))
    if target == "suite":
        return target, draw(edits(SUITE, values=SUITE_VALUES, cut=False))
    if draw(st.integers(0, 4)) == 0:
        return target, Edit(cut=draw(st.integers(1, len(json.dumps(DATA[0])) - 1)))
    return target, draw(edits(DATA, values=SUITE_VALUES, cut=False))


@given(target_edit=suite_edits())
@SETTINGS
def test_broken_suites_and_data_never_crash_run(target_edit: tuple[str, Edit],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target, edit = target_edit
    with tempfile.TemporaryDirectory() as tmp:
        suite, data = Path(tmp) / "suite.yaml", Path(tmp) / "data.jsonl"
        if target == "suite-text":
            suite.write_text(yaml.safe_dump(SUITE, sort_keys=False)[: edit.cut])
        else:
            edited = edit.document(SUITE) if target == "suite" else SUITE
            suite.write_text(yaml.safe_dump(edited, sort_keys=False) if edited is not None else "")
        if target == "data" and edit.cut is not None:
            lines = [json.dumps(DATA[0])[: edit.cut]] + [json.dumps(r) for r in DATA[1:]]
        else:
            lines = [json.dumps(r) for r in (edit.document(DATA) if target == "data" else DATA)]
        data.write_text("".join(line + "\n" for line in lines))
        capsys.readouterr()
        code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                    str(Path(tmp) / "c.sqlite"), "--out", str(Path(tmp) / "out")])
        out, err = capsys.readouterr()
        if not _check(code, out, err, data if target == "data" else suite):
            return
        if target == "suite-text":  # a line of the file, or the key the cut left out or cut short
            assert re.search(rf"{re.escape(str(suite))}(:\d+: |: the file is empty|.*field 'sources\[0\]\.local')", err) or (
                "required key is missing" in err), err
        elif target == "suite":
            assert any(field in err for field in edit.fields()), (edit, err)
        elif edit.cut is not None:
            assert "record line 1" in err and "column" in err, err
        else:  # the data line and, below it, the field
            assert f"record line {int(edit.path[0]) + 1}" in err, (edit, err)
            if len(edit.path) > 1:
                assert str(edit.path[1]) in err, (edit, err)
