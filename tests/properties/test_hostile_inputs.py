"""Property-based hostile inputs (issue 15): generated malformed results.json, score files and suite YAML fed to
``compare``, ``gate``, ``correlate``, ``leaderboard build``, ``evaluate-scores`` and ``run``. Never a traceback,
never exit 1 except a gate's real regression verdict, and an exit-2 message names the file.

Cheap by design: one small run built once, in-process CLI calls, few examples per command.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    suite = write_suite(root / "suite", [pair(i) for i in range(12)], name="hostile")
    out = root / "run"
    assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                str(root / "c.sqlite"), "--out", str(out)]) == 0
    return out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


@st.composite
def broken_documents(draw: st.DrawFn, document: dict[str, Any]) -> str:
    """results.json text with one node replaced or deleted, or the text cut short."""
    text = json.dumps(document)
    if draw(st.integers(0, 5)) == 0:
        return text[: draw(st.integers(0, len(text) - 1))]
    document = copy.deepcopy(document)
    path = draw(st.sampled_from(sorted(_paths(document), key=repr)))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(document)  # allow_nan: NaN and Infinity, as a hand edit may leave them


def _check(code: int, out: str, err: str, file: Path, *, regression_allowed: bool = False) -> None:
    assert "Traceback" not in out + err
    assert code in ((0, 1, 2) if regression_allowed else (0, 2)), err
    if code == 1:
        assert "FAIL" in out  # exit 1 is only ever the gate's verdict
    if code == 2:
        assert file.name in err or str(file.parent) in err, err


@given(data=st.data())
@SETTINGS
def test_broken_results_never_crash_compare_gate_correlate(
    good_run: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((good_run / "results.json").read_text())
    text = data.draw(broken_documents(document))
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad-run"
        shutil.copytree(good_run, bad)
        (bad / "results.json").write_text(text)
        file = bad / "results.json"
        capsys.readouterr()
        code = cli(["compare", str(good_run), str(bad), "--resamples", "1000"])
        _check(code, *capsys.readouterr(), file)
        code = cli(["gate", "--candidate", str(bad), "--baseline", str(good_run), "--resamples", "1000",
                    "--junit", str(Path(tmp) / "gate.xml")])
        _check(code, *capsys.readouterr(), file, regression_allowed=True)
        assert (Path(tmp) / "gate.xml").exists()  # written on every outcome
        shutil.copytree(good_run, Path(tmp) / "other-run")  # correlate needs three models
        code = cli(["correlate", str(good_run), str(Path(tmp) / "other-run"), str(bad), "--x", "accuracy", "--y",
                    "accuracy", "--resamples", "1000"])
        _check(code, *capsys.readouterr(), file)


@given(data=st.data())
@SETTINGS
def test_broken_results_never_crash_leaderboard_build(
    good_run: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((good_run / "results.json").read_text())
    text = data.draw(broken_documents(document))
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        shutil.copytree(good_run, runs / "good")
        shutil.copytree(good_run, runs / "bad")
        (runs / "bad" / "results.json").write_text(text)
        config = Path(tmp) / "board.yaml"
        config.write_text("name: board\ntitle: B\nruns: [runs/*]\ncolumns:\n  - {suite: hostile, metric: accuracy}\n")
        capsys.readouterr()
        code = cli(["leaderboard", "build", str(config)])
        _check(code, *capsys.readouterr(), runs / "bad" / "results.json")


SCORE_RECORDS = [direct(f"problem {i}", [0.9, 0.1 * i, 0.2]) for i in range(4)]


@given(data=st.data())
@SETTINGS
def test_broken_score_files_never_crash_evaluate_scores(data: st.DataObject, capsys: pytest.CaptureFixture[str]) -> None:
    text = data.draw(broken_documents({"records": copy.deepcopy(SCORE_RECORDS)}))
    body = text[len('{"records": '):-1] if text.startswith('{"records": ') and text.endswith("}") else text
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "scores.json"
        file.write_text(body)
        capsys.readouterr()
        code = cli(["evaluate-scores", str(file), "--out", str(Path(tmp) / "out")])
        _check(code, *capsys.readouterr(), file)


SUITE_TEXT = "name: s\nversion: '1'\nprotocol: pairwise\nsources:\n  - local: DATA\n"


@given(yaml_text=st.one_of(
    st.integers(0, len(SUITE_TEXT)).map(lambda cut: SUITE_TEXT[:cut]),
    st.text(alphabet=":-[]{}'\"\n #&*!|>%@`abc123", max_size=60),
    st.sampled_from(["name", "version", "protocol", "sources", "local"]).flatmap(
        lambda key: JSON_VALUES.map(lambda v: SUITE_TEXT.replace(f"{key}:", f"{key}: {json.dumps(v)}\n  x:", 1))
    ),
))
@SETTINGS
def test_broken_suite_yaml_never_crashes_run(yaml_text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps(pair(i)) + "\n" for i in range(3)))
        suite = Path(tmp) / "suite.yaml"
        suite.write_text(yaml_text.replace("DATA", str(data)))
        capsys.readouterr()
        code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache",
                    str(Path(tmp) / "c.sqlite"), "--out", str(Path(tmp) / "out")])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err and code in (0, 2), err
        if code == 2:
            assert "suite.yaml" in err or "suite" in err.lower(), err
