"""End to end: `rmbench run` on probing suites, the probe_dimensions generator, the MRMBench suites' file layout.

CI runs a small probing-generated (fewer prompts, same generator) with a tiny random Llama RM (engine hf), the
MiniLM baseline and the length / random baselines; MRMBench itself runs only where ../shared/data has it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmbench.cli import main
from rmbench.data import load_items
from rmbench.errors import DataError
from rmbench.generators import generate
from rmbench.items import ProbeItem
from rmbench.suite import SUITES_DIR, load_suite
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import run_to, write_suite

DIMENSIONS = {"easy/verbosity", "easy/coherence", "easy/relevance", "hard/verbosity"}
N_TRAIN, N_TEST = 8, 4


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """probing-generated with fewer prompts (the shipped suite, only its generator params changed)."""
    text = (SUITES_DIR / "probing-generated.yaml").read_text()
    shipped = "{seed: 0, n_train: 32, n_test: 16, hard: true}"
    assert shipped in text
    text = text.replace(shipped, f"{{seed: 0, n_train: {N_TRAIN}, n_test: {N_TEST}, hard: true}}")
    path = tmp_path_factory.mktemp("suites") / "probing-small.yaml"
    path.write_text(text.replace("name: probing-generated", "name: probing-small"))
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rmbench.devtools.tiny_models import build_tiny_llama_classifier

    return build_tiny_llama_classifier(tmp_path_factory.mktemp("tiny-probe-rm"), hidden=64, layers=1, heads=1)


def _metrics(results: dict) -> dict[tuple[str, str], dict]:
    return {(m["name"], m["scope"]): m for m in results["metrics"]}


def _check(results: dict) -> dict[tuple[str, str], dict]:
    metrics = _metrics(results)
    n_test_items = N_TEST * 9  # per test prompt: 2 + 2 + 2 easy responses and 3 hard ones
    assert results["counts"]["items"] == (N_TRAIN + N_TEST) * 9
    assert results["counts"]["items_evaluated"] == n_test_items
    assert set(results["extra"]["dimensions"]) == DIMENSIONS
    for dimension in DIMENSIONS:
        for name in ("probe_accuracy", "majority_accuracy", "probe_gain"):
            assert (name, f"subset:{dimension}") in metrics
    for (name, _), metric in metrics.items():
        assert metric["method"] == "bootstrap-percentile, probes fixed"
        if metric["ci_low"] is not None:
            assert metric["ci_low"] - 1e-9 <= metric["value"] <= metric["ci_high"] + 1e-9
        if name != "probe_gain" and name != "confidence_gap":
            assert 0.0 <= metric["value"] <= 1.0
    # balanced labels: the majority class is right on 1/2 (easy) and 1/3 (hard) of the test items
    assert metrics[("majority_accuracy", "section:easy")]["value"] == pytest.approx(0.5)
    assert metrics[("majority_accuracy", "section:hard")]["value"] == pytest.approx(1 / 3)
    assert results["extra"]["dimensions"]["hard/verbosity"]["setting"] == "hard"
    assert metrics[("pair_accuracy", "overall")]["n"] == 2 * N_TEST  # coherence and relevance: one pair per prompt
    return metrics


# --- the generator ------------------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=\.) ", text)


def test_probe_dimensions_records_are_labelled_by_construction() -> None:
    params = {"seed": 3, "n_train": 6, "n_test": 3, "hard": True}
    records = generate("probe_dimensions", params)
    assert records == generate("probe_dimensions", params)  # a pure function of its parameters
    assert len(records) == 9 * 9 and len({r["id"] for r in records}) == len(records)
    prompts = {split: {r["input"] for r in records if r["split"] == split} for split in ("train", "test")}
    assert len(prompts["train"]) == 6 and len(prompts["test"]) == 3 and not prompts["train"] & prompts["test"]
    by_key = {(r["setting"], r["dimension"], r["input"], r["label"]): r["output"] for r in records}
    for prompt in prompts["train"] | prompts["test"]:
        base = by_key[("easy", "coherence", prompt, 1)]
        assert by_key[("easy", "verbosity", prompt, 0)] == base == by_key[("easy", "relevance", prompt, 1)]
        padded = by_key[("easy", "verbosity", prompt, 1)]
        assert base in padded and len(padded) > len(base)
        shuffled = by_key[("easy", "coherence", prompt, 0)]
        assert shuffled != base and sorted(_sentences(shuffled)) == sorted(_sentences(base))
        lengths = [len(by_key[("hard", "verbosity", prompt, label)]) for label in (0, 1, 2)]
        assert lengths == sorted(lengths) and len(set(lengths)) == 3
        assert by_key[("easy", "relevance", prompt, 0)] != base
    assert "hard" not in {r["setting"] for r in generate("probe_dimensions", {**params, "hard": False})}


# --- rmbench run on probing-generated -----------------------------------------------------------------------------


@pytest.mark.slow  # builds a tiny model and runs twice: ~10 s alone, more on a busy 2-core machine
def test_tiny_llama_rm_probes_and_a_rerun_is_served_from_the_cache(
    small_suite: Path, tiny_llama: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    results, run = run_to(out, "--suite", str(small_suite), "--model", str(tiny_llama))
    _check(results)
    unique = results["counts"]["unique_requests"]
    assert run["scored"] == unique and run["cache_hits"] == 0
    # the cache holds the final hidden state (width 64) of every request
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        blobs = [row[0] for row in db.execute("SELECT hidden FROM scores")]
    assert len(blobs) == unique and {len(b) for b in blobs} == {64 * 4}
    assert all(np.isfinite(np.frombuffer(b, dtype=np.float32)).all() for b in blobs)

    first_bytes = (out / "results.json").read_bytes()
    again, rerun = run_to(out, "--suite", str(small_suite), "--model", str(tiny_llama))
    assert rerun["scored"] == 0 and rerun["cache_hits"] == unique  # scores and hidden states from the cache
    assert (out / "results.json").read_bytes() == first_bytes  # the same probes, the same numbers
    items = pd.read_parquet(out / "items.parquet")
    assert {"probe_correct", "majority_correct", "confidence"} <= set(items.columns)
    assert {f"agrees_{d}" for d in DIMENSIONS} <= set(items.columns)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_hf_hidden_state_is_the_one_the_reward_head_reads(tiny_llama: Path, padding_side: str) -> None:
    """head(hidden) == reward, with shared prompt prefixes in the batch (the engine's prefix path) and without."""
    import torch

    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec
    from rmbench.requests import ScoreRequest

    engine = create_engine(ModelSpec(model=str(tiny_llama), padding_side=padding_side))
    prompts = [(("user", "How do I grow basil on my balcony?"),), (("user", "Why is the sky blue?"),)]
    requests = [ScoreRequest(prompt=p, response=r) for p in prompts for r in ("Water it.", "Sunlight, soil and time.")]
    for batch in (engine.encode(requests), engine.encode(requests[::2])):
        scores = engine.score(batch, hidden=True)
        with torch.no_grad():
            head = engine.model.score(torch.tensor(np.stack([s.hidden for s in scores])))[:, 0].numpy()
        assert np.allclose(head, [s.value for s in scores], atol=1e-5)
        assert all(s.hidden.shape == (64,) and s.hidden.dtype == np.float32 for s in scores)


@pytest.mark.slow  # ~15 s on a busy 2-core machine (MiniLM load + scoring)
def test_minilm_probes_verbosity_from_its_embedding(small_suite: Path, tmp_path: Path) -> None:
    results, _ = run_to(tmp_path / "run", "--suite", str(small_suite), "--engine", "minilm")
    metrics = _check(results)
    # filler sentences move a mean-pooled sentence embedding: above the majority class (0.5) even from 16 train
    # responses (0.97 on the shipped suite's 64)
    assert metrics[("probe_accuracy", "subset:easy/verbosity")]["value"] >= 0.75
    # cosine(prompt, response) prefers a question's own answer to another question's answer
    assert metrics[("pair_accuracy", "subset:easy/relevance")]["value"] == 1.0


def test_length_probe_reads_verbosity_and_cannot_read_coherence(small_suite: Path, tmp_path: Path) -> None:
    results, _ = run_to(tmp_path / "run", "--suite", str(small_suite), "--engine", "length")
    metrics = _check(results)
    assert results["extra"]["dimensions"]["easy/verbosity"]["converged"]
    assert metrics[("probe_accuracy", "subset:easy/verbosity")]["value"] >= 0.875
    # a shuffled answer is exactly as long as the answer: the probe gives both the same label, so half are right
    assert metrics[("probe_accuracy", "subset:easy/coherence")]["value"] == 0.5
    assert metrics[("pair_accuracy", "subset:easy/coherence")]["value"] == 0.5  # tied rewards, expected policy


def test_random_baseline_probes_stay_near_the_majority_class(small_suite: Path, tmp_path: Path) -> None:
    results, _ = run_to(tmp_path / "run", "--suite", str(small_suite), "--engine", "random")
    metrics = _check(results)
    gain = metrics[("probe_gain", "overall")]
    assert gain["ci_low"] <= 0.0 <= gain["ci_high"]


# --- bad input ----------------------------------------------------------------------------------------------------


def _local_suite(tmp_path: Path, records: list[dict], fields: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "probe.json").write_text(json.dumps(records))
    sources = "- local: probe.json\n  subset: helpfulness/train\n"
    return write_suite(tmp_path, name="mine", protocol="probing", sources=sources, extra=fields or "fields: {id: null}\n")


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"input": "q", "output": "a", "label": "high"}, "label", "integer class label"),
        ({"input": "q", "output": "a", "label": True}, "label", "got bool"),
        ({"input": "q", "output": "a"}, "label", ""),
        ({"output": "a", "label": 1}, "input", ""),
        ({"input": "q", "output": ["a", "b"], "label": 1}, "output", ""),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path: Path, record: dict, field: str, message: str) -> None:
    good = {"input": "q0", "output": "a0", "label": 0}
    suite = _local_suite(tmp_path, [good, record])
    with pytest.raises(DataError) as error:
        load_items(load_suite(str(suite)), data_dir=tmp_path / "data")
    text = str(error.value)
    assert "probe.json" in text and "record #1" in text and f"field '{field}'" in text and message in text
    assert error.value.field == field


def test_a_record_without_dimension_or_split_says_how_to_name_them(tmp_path: Path, capsys) -> None:
    suite = _local_suite(tmp_path, [{"input": "q", "output": "a", "label": 0}])
    suite.write_text(suite.read_text().replace("subset: helpfulness/train", "subset: helpfulness"))
    with pytest.raises(DataError, match=r"fields\.dimension, fields\.split"):
        load_items(load_suite(str(suite)), data_dir=tmp_path / "data")
    bad_split = _local_suite(tmp_path, [{"input": "q", "output": "a", "label": 0, "dim": "d", "part": "dev"}],
                             "fields: {id: null, dimension: dim, split: part}\n")
    with pytest.raises(DataError, match="split must be one of train, test") as error:
        load_items(load_suite(str(bad_split)), data_dir=tmp_path / "data")
    assert error.value.field == "part"
    code = main(["run", "--no-progress", "--suite", str(bad_split), "--engine", "random", "--data-dir",
                 str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")])
    assert code == 2 and "probe.json" in capsys.readouterr().err


# --- MRMBench ---------------------------------------------------------------------------------------------------

MRM_DIMENSIONS = ("harmlessness", "helpfulness", "correctness", "coherence", "complexity", "verbosity")


@pytest.mark.parametrize(("setting", "classes"), [("easy", 2), ("hard", 3)])
def test_mrmbench_suites_read_the_hub_layout_from_a_data_dir(tmp_path: Path, setting: str, classes: int) -> None:
    for dimension in MRM_DIMENSIONS:
        for split, n in (("train", 3), ("test", 2)):
            folder = tmp_path / "mrmbench" / f"mrm_{setting}" / dimension
            folder.mkdir(parents=True, exist_ok=True)
            rows = [{"input": f"{dimension} q{i}", "output": f"a{i}", "label": i % classes} for i in range(n)]
            (folder / f"{split}.json").write_text(json.dumps(rows))
    suite = load_suite(f"mrmbench-{setting}")
    data = load_items(suite, data_dir=tmp_path)
    assert all(isinstance(item, ProbeItem) for item in data.items)
    assert Counter((i.dimension, i.split) for i in data.items) == {
        (d, s): n for d in MRM_DIMENSIONS for s, n in (("train", 3), ("test", 2))
    }
    assert {i.subset for i in data.items} == {"default"}
    assert len({i.id for i in data.items}) == len(data.items)
    assert all(p["kind"] == "local" and p["stands_in_for"]["hub"] == "ifnoc/MRMBench" for p in data.provenance)
    assert set(suite.metrics.params["pair_dimensions"]) <= set(MRM_DIMENSIONS)


@pytest.mark.shared_data
@pytest.mark.parametrize("setting", ["easy", "hard"])
def test_mrmbench_runs_on_the_shared_data(tmp_path: Path, setting: str) -> None:
    shared_path(f"mrmbench/mrm_{setting}")
    results, _ = run_to(tmp_path / "run", "--suite", f"mrmbench-{setting}", "--engine", "random",
                      "--data-dir", str(SHARED_DATA))
    assert {d["dimension"] for d in results["extra"]["dimensions"].values()} == set(MRM_DIMENSIONS)
