"""The one run loop: typed protocol capabilities, lazy engines (a fully cached run loads no model), rescore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from rmbench.cache import ScoreCache
from rmbench.cli import main
from rmbench.engines.baseline import LengthEngine
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, model_fingerprint
from rmbench.protocols.base import (
    ItemLocalProtocol,
    MultiModelProtocol,
    SuiteProtocol,
    capabilities,
)
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.runner.rescore import rescore
from rmbench.runner.run import RunConfig, run_suite
from tests._shared import shared_path

# --- typed capabilities --------------------------------------------------------------------------------------------


def test_capabilities_are_declared_by_class_and_checked_once() -> None:
    from rmbench.protocols import PROTOCOLS, get_protocol

    declared = {name: capabilities(get_protocol(name)) for name in PROTOCOLS}
    assert {n for n, c in declared.items() if c.item_local} == {"pairwise", "best_of_n"}
    assert {n for n, c in declared.items() if c.multi_model} == {"overoptimization"}
    assert {n for n, c in declared.items() if c.needs_hidden} == {"probing"}
    assert isinstance(get_protocol("contrast"), SuiteProtocol)
    assert isinstance(get_protocol("overoptimization"), MultiModelProtocol)

    class Duck:  # has every method, declares nothing: not a protocol
        def requests(self, items: Any) -> list[Any]:
            return []

        def outcomes(self, *args: Any) -> None: ...

    with pytest.raises(TypeError, match="not a scoring protocol"):
        capabilities(Duck())

    class Both(PairwiseProtocol, SuiteProtocol):
        pass

    with pytest.raises(TypeError, match="both item-local and whole-suite"):
        capabilities(Both())
    with pytest.raises(TypeError, match="abstract"):
        type("Incomplete", (ItemLocalProtocol,), {"name": "x"})()  # outcomes/summarize are required


class HiddenPairwise(PairwiseProtocol):
    """An item-local protocol that declares it reads hidden states."""

    needs_hidden: ClassVar[bool] = True


GENERATED_PAIRS = """\
name: runner-pairs
version: "1"
protocol: pairwise
sources:
  - generator:
      name: synthetic_pairs
      params: {n_pairs: 30, seed: 1, pairs_per_prompt: 3}
fields:
  subset: subset
"""


def test_chunked_path_asks_for_hidden_states_when_declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rmbench.protocols.get_protocol", lambda name: HiddenPairwise())
    suite = tmp_path / "pairs.yaml"
    suite.write_text(GENERATED_PAIRS)
    cache = tmp_path / "cache.sqlite"
    spec = ModelSpec.build({"model": "", "engine": "random", "seed": 3})
    outcome = run_suite(RunConfig(suite=str(suite), model=spec, out=tmp_path / "run", cache=cache, chunk_items=7,
                                  show_progress=False))
    keys = list(pd.read_parquet(tmp_path / "run" / "scores.parquet")["request"])
    with ScoreCache(cache) as store:
        with_hidden = store.get_many(outcome.results["model"]["fingerprint"], keys, need_hidden=True)
    assert len(keys) == 60 and len(with_hidden) == 60


# --- lazy engines -------------------------------------------------------------------------------------------------


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Engines created, by name; ``length`` computes its fingerprint without loading (as the engines part adds)."""
    import rmbench.engines as engines

    made: list[str] = []
    real = engines.create_engine

    def counting(spec: ModelSpec) -> Any:
        made.append(spec.engine)
        return real(spec)

    monkeypatch.setattr(engines, "create_engine", counting)
    monkeypatch.setattr(LengthEngine, "fingerprint_of", classmethod(lambda cls, spec: model_fingerprint(spec)),
                        raising=False)
    return made


def _bon_run(tmp_path: Path, name: str, cache: Path, **overrides: Any) -> Path:
    spec = ModelSpec.build({"model": "", "engine": "length"})
    run_suite(RunConfig(suite="math-robustness", model=spec, out=tmp_path / name, cache=cache,
                        show_progress=False, metric_overrides=overrides))
    return tmp_path / name


def test_fully_cached_rerun_loads_no_engine_and_writes_the_same_results(tmp_path: Path, created: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = _bon_run(tmp_path, "first", cache)
    assert created == ["length"]
    again = _bon_run(tmp_path, "again", cache)
    assert created == ["length"]  # nothing uncached: no engine
    assert json.loads((again / "run.json").read_text())["engines_loaded"] == []
    for name in ("results.json", "items.parquet", "scores.parquet"):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    results = json.loads((again / "results.json").read_text())
    assert results["model"]["engine"] == LengthEngine(ModelSpec.build({"model": "", "engine": "length"})).info()


def test_a_loaded_engine_whose_fingerprint_disagrees_with_its_class_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, created: list[str]
) -> None:
    """E.g. a Ray worker that sees other model files than the driver: the cache key would be wrong."""
    monkeypatch.setattr(LengthEngine, "fingerprint", property(lambda self: "not-the-fingerprint"))
    with pytest.raises(ModelSpecError, match="cache key would be wrong"):
        _bon_run(tmp_path, "run", tmp_path / "cache.sqlite")
    assert not (tmp_path / "run").exists()


def test_engine_facts_are_recorded_once(tmp_path: Path) -> None:
    with ScoreCache(tmp_path / "c.sqlite") as cache:
        assert cache.get_fact("fp", "info") is None
        cache.put_fact("fp", "info", {"device": "cpu", "n": 1})
        cache.put_fact("fp", "info", {"device": "cuda"})  # the first value stays
        assert cache.get_fact("fp", "info") == {"device": "cpu", "n": 1}


# --- rescore ------------------------------------------------------------------------------------------------------


def _same_run(a: Path, b: Path) -> None:
    for name in ("results.json", "items.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_strict_rescore_of_a_best_of_n_run_equals_a_strict_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    expected = _bon_run(tmp_path, "expected", cache)
    strict = _bon_run(tmp_path, "strict", cache, tie_policy="strict")
    outcome = rescore(expected, overrides={"tie_policy": "strict"}, out=tmp_path / "rescored")
    _same_run(strict, outcome.out)
    assert outcome.results["metric_options"]["tie_policy"] == "strict"
    # length ties: the policy moved a number, so the comparison is not vacuous
    before = json.loads((expected / "results.json").read_text())["metrics"]
    assert [m["value"] for m in before] != [m["value"] for m in outcome.results["metrics"]]


def test_strict_rescore_of_a_pairwise_run_equals_a_strict_run(tmp_path: Path) -> None:
    data = shared_path("hh_rlhf").parent
    spec = ModelSpec.build({"model": "", "engine": "length"})

    def run(name: str, **overrides: Any) -> Path:
        run_suite(RunConfig(suite="hh-rlhf-harmless", model=spec, out=tmp_path / name, cache=tmp_path / "c.sqlite",
                            data_dir=data, limit=80, show_progress=False, metric_overrides=overrides))
        return tmp_path / name

    expected, strict = run("expected"), run("strict", tie_policy="strict")
    code = main(["rescore", str(expected), "--tie-policy", "strict", "--data-dir", str(data), "--out",
                 str(tmp_path / "rescored"), "--json"])
    assert code == 0
    _same_run(strict, tmp_path / "rescored")


def test_rescore_without_scores_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _bon_run(tmp_path, "expected", tmp_path / "cache.sqlite")
    (expected / "scores.parquet").unlink()
    assert main(["rescore", str(expected), "--tie-policy", "strict"]) == 2
    assert "has no scores.parquet" in capsys.readouterr().err
    assert not (tmp_path / "expected-rescored").exists()


def test_rescore_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _bon_run(tmp_path, "expected", tmp_path / "cache.sqlite")
    assert main(["rescore", str(expected), "--bootstrap-resamples", "10"]) == 2
    assert "bootstrap_resamples" in capsys.readouterr().err



def test_parity_record_is_checked_once_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, created: list[str]
) -> None:
    import rmbench.runner.parity as parity

    checks: list[str] = []

    def fake_parity(spec: ModelSpec) -> dict[str, Any]:
        checks.append(spec.engine)
        return {"passed": True, "max_abs_diff": 1e-7, "engines": ["hf", spec.engine]}

    monkeypatch.setattr(parity, "CHECKED_ENGINES", frozenset({"length"}))
    monkeypatch.setattr(parity, "run_parity", fake_parity)
    cache = tmp_path / "cache.sqlite"
    first, again = _bon_run(tmp_path, "first", cache), _bon_run(tmp_path, "again", cache)
    assert checks == ["length"] and created == ["length"]
    assert (first / "results.json").read_bytes() == (again / "results.json").read_bytes()
    assert json.loads((again / "results.json").read_text())["model"]["parity"]["max_abs_diff"] == 1e-7
