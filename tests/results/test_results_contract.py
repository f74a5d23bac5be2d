"""The typed results.json contract: byte-identical writing, strict reading, clear exit-2 errors, the JSON Schema."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rmbench.cli import main
from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec
from rmbench.results.io import ResultsFileError, dumps_results, read_results
from rmbench.results.schema import RunResults, results_json_schema
from rmbench.runner.run import RunConfig, run_suite
from tests._shared import shared_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    out = root / "length"
    run_suite(RunConfig(suite="math-robustness", model=ModelSpec(model="", engine="length"), out=out,
                        cache=root / "c.sqlite", show_progress=False))
    return out


def edited(run: Path, target: Path, edit: Callable[[dict[str, Any]], None], *, raw: bool = False) -> Path:
    """A copy of ``run`` whose results.json was changed by ``edit`` (written as Python's json would, NaN and all)."""
    shutil.copytree(run, target)
    document = json.loads((target / "results.json").read_text())
    edit(document)
    (target / "results.json").write_text(json.dumps(document, indent=2))
    return target


def test_results_json_round_trips_byte_for_byte(run_dir: Path) -> None:
    text = (run_dir / "results.json").read_text(encoding="utf-8")
    results = read_results(run_dir)
    assert isinstance(results, RunResults)
    assert dumps_results(results) == text
    assert results.metric("accuracy") is not None and results.metric("accuracy").n == results.counts.items_evaluated
    assert "models" in text and results.models is None  # a one-model run writes models: null


def test_imported_score_file_carries_the_shipped_suites_identity(tmp_path: Path) -> None:
    scores = shared_path("rewardmath/model_scores") / "gpt4_reward.json.gz"
    from rmbench.suite import load_suite

    assert main(["evaluate-scores", str(scores), "--out", str(tmp_path / "gpt4")]) == 0
    results = read_results(tmp_path / "gpt4")
    suite = load_suite("rewardmath")
    assert results.suite.model_dump() == {"name": suite.name, "version": suite.version, "protocol": suite.protocol,
                                          "content_hash": suite.content_hash}
    text = (tmp_path / "gpt4" / "results.json").read_text()
    assert '"models"' not in text and "token_budget" not in text and dumps_results(results) == text


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "nan": (lambda d: d["metrics"][1].update(value=float("nan")), "metrics[1].value"),
    "inf in extra": (lambda d: d["extra"].update(weird=[1.0, float("inf")]), "extra.weird[1]"),
    "missing key": (lambda d: d["counts"].pop("items_evaluated"), "counts.items_evaluated: missing"),
    "wrong type": (lambda d: d["metrics"][2].update(n="60"), "metrics[2].n"),
    "unknown key": (lambda d: d["suite"].update(colour="red"), "suite.colour: unknown key"),
    "missing option": (lambda d: d["metric_options"].pop("seed"), "metric_options.seed: missing"),
    "schema version": (lambda d: d.update(schema_version=2), "schema_version 2"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_reading_is_strict_and_names_file_and_field(run_dir: Path, tmp_path: Path, case: str) -> None:
    edit, where = BROKEN[case]
    broken = edited(run_dir, tmp_path / "broken", edit)
    with pytest.raises(ResultsFileError) as caught:
        read_results(broken)
    assert isinstance(caught.value, RmbenchError)
    assert str(broken / "results.json") in str(caught.value) and where in str(caught.value)


@pytest.mark.parametrize("case", ["nan", "missing key", "wrong type"])
def test_compare_and_gate_exit_2_on_a_broken_results_file(
    run_dir: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, where = BROKEN[case]
    broken = edited(run_dir, tmp_path / "broken", edit)
    assert main(["compare", str(run_dir), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and where in err.replace("\n", "") and "Traceback" not in err
    assert main(["gate", "--candidate", str(broken), "--baseline", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and where in err.replace("\n", "") and "Traceback" not in err


def test_a_document_breaking_the_contract_is_never_written(run_dir: Path, tmp_path: Path) -> None:
    from rmbench.protocols.base import ProtocolResult
    from rmbench.results.rundir import write_imported_run

    document = json.loads((run_dir / "results.json").read_text())
    for key in ("schema_version", "rmbench_version", "environment"):
        document.pop(key)
    document["counts"]["items"] = "sixty"
    import pandas as pd

    with pytest.raises(ResultsFileError, match=r"counts\.items"):
        write_imported_run(tmp_path / "out", document, ProtocolResult(metrics=[], per_item=pd.DataFrame()))
    assert not (tmp_path / "out" / "results.json").exists()


def test_published_json_schema_is_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    committed = (REPO / "docs" / "results.schema.json").read_text(encoding="utf-8")
    assert json.loads(committed) == results_json_schema(), "docs/results.schema.json is stale: rmbench results schema"
    assert main(["results", "schema"]) == 0
    assert capsys.readouterr().out == committed
    assert main(["results", "schema", "--out", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == committed


def test_json_schema_accepts_a_real_results_file_and_rejects_a_broken_one(run_dir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = results_json_schema()
    document = json.loads((run_dir / "results.json").read_text())
    jsonschema.validate(document, schema)
    document["metrics"][0]["n"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_results_check_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "check", str(run_dir)]) == 0
    assert "ok (math-robustness" in capsys.readouterr().out
    broken = edited(run_dir, tmp_path / "broken", BROKEN["nan"][0])
    assert main(["results", "check", str(broken)]) == 2
    assert "metrics[1].value" in capsys.readouterr().err
