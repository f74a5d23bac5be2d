"""Streaming at small scale: the chunked paths (scoring chunks, shares of a chunk's batches, scores.parquet row
groups) give exactly what the unchunked ones give, and the synthetic suite that the scale benchmark
(bench/streaming.py) runs is deterministic. Speed and memory are measured there, never asserted here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from rmbench.engines import create_engine
from rmbench.generators import generate
from rmbench.generators.synthetic_pairs import Params, iter_records
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest
from rmbench.results.rundir import scores_frame, write_scores_parquet
from rmbench.runner.run import RunConfig, run_suite
from rmbench.scoring import score_batches

SUITE = """\
name: streaming-small
version: "1"
description: synthetic pairs, chunked vs unchunked
protocol: pairwise
sources:
  - generator:
      name: synthetic_pairs
      params: {n_pairs: 150, seed: 1, pairs_per_prompt: 3}
fields:
  subset: subset
"""

#: Batch packing is planned per scoring chunk, so these counts describe the chunking, not the scores.
PLAN_COUNTS = ("real_tokens", "padded_tokens", "padding_efficiency")


def _run(tmp_path: Path, name: str, engine: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    suite = tmp_path / "streaming-small.yaml"
    suite.write_text(SUITE)
    spec = ModelSpec.build({"model": "", "engine": engine, "seed": 7})
    out = tmp_path / name
    run_suite(RunConfig(suite=str(suite), model=spec, out=out, cache=tmp_path / f"{name}.sqlite", show_progress=False))
    results = json.loads((out / "results.json").read_text())
    for key in PLAN_COUNTS:
        results["counts"].pop(key)
    return results, pd.read_parquet(out / "scores.parquet"), pd.read_parquet(out / "items.parquet")


@pytest.mark.parametrize("engine", ["length", "random"])
def test_chunked_run_equals_unchunked_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    whole = _run(tmp_path, "whole", engine)
    monkeypatch.setattr("rmbench.batching.CHUNK_REQUESTS", 7)  # 300 requests → 43 scoring chunks
    monkeypatch.setattr("rmbench.results.rundir.SCORES_CHUNK_ROWS", 11)  # scores.parquet in 28 row groups
    chunked = _run(tmp_path, "chunked", engine)
    assert whole[0]["counts"]["unique_requests"] == 300
    batches = [json.loads((tmp_path / name / "run.json").read_text())["batches"] for name in ("whole", "chunked")]
    assert batches == [1, 43]  # the chunking really happened
    assert chunked[0] == whole[0]
    pd.testing.assert_frame_equal(chunked[1], whole[1])
    pd.testing.assert_frame_equal(chunked[2], whole[2])


def test_scores_parquet_row_groups_read_back_as_one_frame(tmp_path: Path) -> None:
    requests = [ScoreRequest(user_turn(f"question {i % 5}"), f"answer {i}") for i in range(40)]
    requests += requests[:6]  # duplicates are written once
    scores = {
        r.key: Score(
            value=math.nan if i == 3 else i / 7,
            steps=(0.25, -1.5) if i % 6 == 0 else (),
            n_tokens=i,
            truncated=i % 4 == 0,
        )
        for i, r in enumerate(requests[:40])
    }
    reference = tmp_path / "reference.parquet"
    scores_frame(requests, scores).to_parquet(reference, index=False)
    for rows in (1, 9, 1000):
        write_scores_parquet(tmp_path / f"rows{rows}.parquet", requests, scores, chunk_rows=rows)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"rows{rows}.parquet"), pd.read_parquet(reference))


def test_shares_of_a_chunk_are_exactly_its_batches() -> None:
    """What each Ray actor scores (every n-th batch of a chunk) adds up to the local run's batches, unchanged."""
    engine = create_engine(ModelSpec.build({"model": "", "engine": "length"}))
    requests = [ScoreRequest(user_turn(f"q{i % 9}"), "word " * (1 + i * 13 % 31)) for i in range(90)]
    local = list(score_batches(engine, requests, token_budget=120))
    shared = [b for share in range(3) for b in score_batches(engine, requests, 120, share=share, shares=3)]
    assert len(local) > 6
    assert sorted((b.keys, b.scores, b.real_tokens, b.padded_tokens) for b in shared) == sorted(
        (b.keys, b.scores, b.real_tokens, b.padded_tokens) for b in local
    )


def test_synthetic_pairs_are_deterministic_and_extend() -> None:
    small = generate("synthetic_pairs", {"n_pairs": 20, "seed": 4, "pairs_per_prompt": 2})
    large = generate("synthetic_pairs", {"n_pairs": 60, "seed": 4, "pairs_per_prompt": 2})
    assert large[:20] == small  # pair i depends on (seed, i) only
    assert list(iter_records(Params(n_pairs=60, seed=4, pairs_per_prompt=2))) == large
    assert generate("synthetic_pairs", {"n_pairs": 20, "seed": 5, "pairs_per_prompt": 2}) != small
    assert all(large[i]["prompt"] == large[i + 1]["prompt"] for i in range(0, 60, 2))
    assert large[0]["prompt"] != large[2]["prompt"]
    assert len({r["id"] for r in large}) == 60
    for record in large:
        user_turns = sum(m["role"] == "user" for m in record["prompt"])
        assert record["subset"] == f"turns-{user_turns}" and 1 <= user_turns <= 3
        assert record["prompt"][-1]["role"] == "user" and record["chosen"] and record["rejected"]


# --- item chunks: a streamed run equals the whole-suite evaluation ---------------------------------------------------


def _streamed(tmp_path: Path, name: str, suite: Path, chunk_items: int, engine: str = "random") -> Path:
    out = tmp_path / name
    spec = ModelSpec.build({"model": "", "engine": engine, "seed": 3})
    run_suite(RunConfig(suite=str(suite), model=spec, out=out, cache=tmp_path / f"{name}.sqlite",
                        chunk_items=chunk_items, show_progress=False))
    return out


@pytest.mark.parametrize("chunk_items", [1, 13, 150])
def test_item_chunks_give_the_whole_suite_result(tmp_path: Path, chunk_items: int) -> None:
    from rmbench.data import load_items
    from rmbench.protocols import get_protocol
    from rmbench.protocols.base import MetricOptions
    from rmbench.suite import load_suite

    suite_file = tmp_path / "streaming-small.yaml"
    suite_file.write_text(SUITE)
    out = _streamed(tmp_path, f"chunks{chunk_items}", suite_file, chunk_items)
    one = _streamed(tmp_path, "one-chunk", suite_file, 10_000)
    assert (out / "results.json").read_bytes() == (one / "results.json").read_bytes()  # provenance, metrics, counts
    assert (out / "report.md").read_text() == (one / "report.md").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "items.parquet"), pd.read_parquet(one / "items.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), pd.read_parquet(one / "scores.parquet"))

    # ... and the protocol's evaluate on all items at once (the path non-streaming protocols take).
    suite = load_suite(str(suite_file))
    data = load_items(suite)
    engine = create_engine(ModelSpec.build({"model": "", "engine": "random", "seed": 3}))
    requests = get_protocol("pairwise").requests(data.items)
    scores = dict(zip([r.key for r in requests], engine.score(engine.encode(requests))))
    whole = get_protocol("pairwise").evaluate(data.items, scores, MetricOptions())
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == data.provenance
    assert [m.as_dict() for m in whole.metrics] == results["metrics"]


def test_requests_shared_across_chunks_are_written_once(tmp_path: Path) -> None:
    from tests._reliability import pair
    from tests.helpers import write_suite

    # Every item shares its chosen response (and prompt) with another item: the same request in two chunks.
    records = [pair(i, chosen="The shared answer.", rejected=f"Answer {i}.") | {"prompt": "One question?"}
               for i in range(6)]
    suite = write_suite(tmp_path / "data", records)
    out = _streamed(tmp_path, "shared", suite, chunk_items=2, engine="length")
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["requests"] == 12 and results["counts"]["unique_requests"] == 7
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 7 and scores["request"].is_unique
    assert results["counts"]["items_evaluated"] == 6


def test_generated_chunks_stream_lazily_with_the_whole_digest(tmp_path: Path) -> None:
    from rmbench.data.sources import read_generated, read_generated_chunks
    from rmbench.suite import load_suite

    suite_file = tmp_path / "streaming-small.yaml"
    suite_file.write_text(SUITE)
    source = load_suite(str(suite_file)).sources[0]
    whole = read_generated(source)
    chunks = read_generated_chunks(source, None, 40)
    first = next(chunks)
    assert len(first.records) == 40 and "sha256" not in first.provenance  # not all generated yet
    rest = list(chunks)
    assert [len(c.records) for c in rest] == [40, 40, 30]
    assert first.records + [r for c in rest for r in c.records] == whole.records
    assert first.provenance["sha256"] == whole.provenance["sha256"]
    assert rest[-1].locators[-1] == whole.locators[-1] == "#149"


def test_best_of_n_streams_to_the_same_result(tmp_path: Path) -> None:
    """math-robustness (one correct vs several incorrect) in chunks of 7 items equals one chunk, byte for byte."""
    runs = []
    for chunk_items in (7, 10_000):
        out = tmp_path / f"chunks{chunk_items}"
        run_suite(RunConfig(suite="math-robustness", model=ModelSpec.build({"model": "", "engine": "length"}),
                            out=out, cache=tmp_path / f"{chunk_items}.sqlite", chunk_items=chunk_items,
                            show_progress=False))
        runs.append(out)
    assert (runs[0] / "results.json").read_bytes() == (runs[1] / "results.json").read_bytes()
    results = json.loads((runs[0] / "results.json").read_text())
    assert results["counts"]["items_evaluated"] > 7 and results["extra"]["n_rejected"]
    pd.testing.assert_frame_equal(pd.read_parquet(runs[0] / "items.parquet"), pd.read_parquet(runs[1] / "items.parquet"))
