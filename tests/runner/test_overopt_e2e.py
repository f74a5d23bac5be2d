"""End to end: `rmbench run` on overoptimization suites: a tiny random Llama RM (engine hf), MiniLM, an ensemble of
two proxies, gold from a second RM, and AlpacaEval best-of-n with the length baseline on the shared data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rmbench.cli import main
from rmbench.devtools.tiny_models import build_tiny_llama_classifier
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import run_to

LIMIT = ["--limit", "6"]


@pytest.fixture(scope="module")
def tiny_rms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-rms")
    size = {"hidden": 64, "layers": 1, "heads": 1}
    return (
        build_tiny_llama_classifier(root / "rm-a", seed=0, **size),
        build_tiny_llama_classifier(root / "rm-b", seed=1, **size),
    )


def _run(tmp_path: Path, name: str, args: list[str]) -> dict:
    out = tmp_path / name
    results, _ = run_to(out, *args)
    assert (out / "overoptimization.png").read_bytes()[:4] == b"\x89PNG"
    return results


def _overall(results: dict, name: str, scope: str = "overall") -> float:
    return next(m["value"] for m in results["metrics"] if m["name"] == name and m["scope"] == scope)


def _check_curves(results: dict, pool_size: int) -> None:
    curves = results["extra"]["curves"]
    assert curves["n"] == list(range(1, pool_size + 1))
    np.testing.assert_allclose(curves["kl"], np.log(curves["n"]) - (np.array(curves["n"]) - 1) / curves["n"])
    for curve in curves["scopes"].values():
        assert len(curve["gold"]) == len(curve["proxy"]) == pool_size
        assert np.all(np.diff(curve["proxy"]) >= -1e-9)  # best-of-n by a proxy never lowers its own score
        assert {"alpha", "beta", "status"} <= set(curve["fit"])


@pytest.mark.slow
def test_bon_generated_tiny_llama_hf(tiny_rms: tuple[Path, Path], tmp_path: Path) -> None:
    results = _run(tmp_path, "hf", ["--suite", "bon-generated", "--model", str(tiny_rms[0]), *LIMIT])
    assert results["counts"]["items_evaluated"] == 6
    assert results["extra"]["gold"] == {"source": "data"}
    _check_curves(results, 16)
    names = {m["name"] for m in results["metrics"]}
    assert {"gold_bon_1", "gold_bon_16", "proxy_bon_16", "alpha", "beta", "gold_gain"} <= names


@pytest.mark.slow
def test_bon_generated_minilm(tmp_path: Path) -> None:
    results = _run(tmp_path, "minilm", ["--suite", "bon-generated", "--engine", "minilm", *LIMIT])
    _check_curves(results, 16)
    # n = 1 is the pool mean of the exact gold, whatever the proxy.
    length = _run(tmp_path, "length", ["--suite", "bon-generated", "--engine", "length", *LIMIT])
    assert _overall(results, "gold_bon_1") == pytest.approx(_overall(length, "gold_bon_1"))


@pytest.mark.slow
def test_ensemble_of_two_proxies(tiny_rms: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = (str(p) for p in tiny_rms)
    results = _run(tmp_path, "ensemble", ["--suite", "bon-generated", "--model", a, "--model", b, *LIMIT])
    _check_curves(results, 16)
    assert set(results["extra"]["curves"]["scopes"]) == {
        "overall", "proxy:rm-b", "ensemble:mean", "ensemble:min", "ensemble:uncertainty"
    }
    assert [m["role"] for m in results["models"]] == ["proxy", "proxy"]
    # Each member's own curve equals its single-model run (same engine, same cache).
    alone = _run(tmp_path, "b-alone", ["--suite", "bon-generated", "--model", b, *LIMIT])
    assert results["extra"]["curves"]["scopes"]["proxy:rm-b"]["gold"] == pytest.approx(
        alone["extra"]["curves"]["scopes"]["overall"]["gold"]
    )


@pytest.mark.slow
def test_gold_from_a_second_model(tiny_rms: tuple[Path, Path], tmp_path: Path) -> None:
    gold_rm = str(tiny_rms[1])
    args = ["--suite", "bon-generated", "--engine", "minilm", "--gold-model", gold_rm, "--gold-engine", "hf", *LIMIT]
    results = _run(tmp_path, "gold-model", args)
    assert results["extra"]["gold"]["source"] == "gold-model"
    assert [m["role"] for m in results["models"]] == ["proxy", "gold"]
    # Gold at n = 1 is the pool mean of the gold RM's scores = that RM's own proxy curve at n = 1.
    gold_alone = _run(tmp_path, "gold-alone", ["--suite", "bon-generated", "--model", gold_rm, *LIMIT])
    assert _overall(results, "gold_bon_1") == pytest.approx(_overall(gold_alone, "proxy_bon_1"))
    assert _overall(results, "gold_bon_1") != pytest.approx(_overall(gold_alone, "gold_bon_1"))


def test_missing_gold_is_a_clear_error_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = tmp_path / "no-gold.yaml"
    suite.write_text(
        "name: no-gold\nversion: '1'\nprotocol: overoptimization\n"
        "sources: [{generator: {name: bon_pools, params: {n_prompts: 3, pool_size: 4}}}]\n"
    )
    code = main(["run", "--no-progress", "--suite", str(suite), "--engine", "length",
                 "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--gold-model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


def test_alpacaeval_bon_length(tmp_path: Path) -> None:
    gold_dir = shared_path("alpacaeval_bon16/gold_annotations_gpt4turbo_vs_gpt35")
    results = _run(tmp_path, "ae-length",
                   ["--suite", "alpacaeval-bon", "--engine", "length", "--data-dir", str(SHARED_DATA)])
    assert results["counts"]["items_evaluated"] == 805
    assert results["counts"]["requests"] == 805 * 11
    _check_curves(results, 11)
    # Independent check of n = 1 (the pool mean) and n = K (the longest sample's gold) from the raw files.
    gold = np.array([
        [r["preference"] - 1.0 for r in json.loads(gzip.decompress((gold_dir / f"tulu-2-dpo-13b.{i}.annotations.json.gz").read_bytes()))]
        for i in range(11)
    ])
    lengths = np.array([
        [len(r["output_2"]) for r in json.loads(gzip.decompress((gold_dir / f"tulu-2-dpo-13b.{i}.annotations.json.gz").read_bytes()))]
        for i in range(11)
    ])
    assert _overall(results, "gold_bon_1") == pytest.approx(gold.mean())
    top = [gold[lengths[:, k] == lengths[:, k].max(), k].mean() for k in range(805)]
    assert _overall(results, "gold_bon_11") == pytest.approx(np.mean(top))
    assert len(results["data"][0]["files"]) == 11
