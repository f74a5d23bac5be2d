"""`--executor ray` on a local two-CPU Ray cluster: the same results.json as a local run, the driver-only cache
writes that let an interrupted run resume, and clear errors for placements the cluster cannot hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rmbench.cache import ScoreCache
from rmbench.errors import ModelSpecError
from rmbench.executors import create_executor
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest
from rmbench.runner.run import RunConfig, run_suite
from rmbench.scoring import score_requests

ray = pytest.importorskip("ray")

SUITE = """\
name: ray-synthetic
version: "1"
description: synthetic pairs for the Ray executor test
protocol: pairwise
sources:
  - generator:
      name: synthetic_pairs
      params: {n_pairs: 48, seed: 3, pairs_per_prompt: 2, prompt_words: [4, 20], response_words: [3, 30]}
fields:
  subset: subset
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One small local cluster for the whole module (starting Ray costs seconds); executors join it."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray-suite") / "ray-synthetic.yaml"
    path.write_text(SUITE)
    return path


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rmbench.devtools.tiny_models import build_tiny_llama_classifier

    return build_tiny_llama_classifier(tmp_path_factory.mktemp("ray-tiny-rm"), seed=0)


def _config(suite: Path, model: Path, out: Path, cache: Path, **executor: object) -> RunConfig:
    spec = ModelSpec(model=str(model))
    # A small token budget makes many batches, so both actors get a share of the one chunk.
    return RunConfig(
        suite=str(suite), model=spec, out=out, cache=cache, token_budget=400, show_progress=False, **executor
    )


@pytest.mark.slow
def test_ray_run_writes_the_same_results_as_a_local_run(
    ray_cluster: None, suite_file: Path, tiny_rm: Path, tmp_path: Path
) -> None:
    local = run_suite(_config(suite_file, tiny_rm, tmp_path / "local", tmp_path / "local.sqlite"))
    sharded = run_suite(
        _config(suite_file, tiny_rm, tmp_path / "ray", tmp_path / "ray.sqlite", executor="ray", workers=2)
    )
    assert sharded.execution["executor"] == {
        "executor": "ray",
        "actors": 2,
        "nodes": 1,
        "gpus_per_actor": 0,
        "cpus_per_actor": 1,
    }
    assert local.execution["executor"] == {"executor": "local"}
    assert sharded.execution["scored"] == local.results["counts"]["unique_requests"] == 96
    assert sharded.execution["batches"] == local.execution["batches"] >= 4  # the local run's batches, shared out
    assert (tmp_path / "ray" / "results.json").read_bytes() == (tmp_path / "local" / "results.json").read_bytes()
    for name in ("scores.parquet", "items.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / name), pd.read_parquet(tmp_path / "local" / name))
    with ScoreCache(tmp_path / "ray.sqlite") as cache:
        assert cache.count() == 96


class _DiesAfter(ScoreCache):
    """A cache whose driver 'dies' (raises) on its n-th batch write, as a killed run would stop there."""

    def __init__(self, path: Path, writes: int):
        super().__init__(path)
        self.writes_left = writes

    def put_many(self, model, scored):  # type: ignore[no-untyped-def]
        if self.writes_left == 0:
            raise KeyboardInterrupt
        self.writes_left -= 1
        super().put_many(model, scored)


def _requests(n_prompts: int) -> list[ScoreRequest]:
    return [
        ScoreRequest(user_turn(f"Question {p}: how many words is this?"), "word " * (1 + (p * 7 + r) % 23))
        for p in range(n_prompts)
        for r in range(3)
    ]


def test_interrupted_ray_scoring_resumes_from_the_driver_cache(ray_cluster: None, tmp_path: Path) -> None:
    requests = _requests(40)  # 120 requests; a budget of 64 tokens makes dozens of batches
    cache_path = tmp_path / "cache.sqlite"
    spec = ModelSpec.build({"model": "", "engine": "length"})
    with create_executor("ray", spec, workers=2) as executor:
        with _DiesAfter(cache_path, writes=3) as dying, pytest.raises(KeyboardInterrupt):
            score_requests(requests, executor, dying, token_budget=64, show_progress=False)
        with ScoreCache(cache_path) as cache:
            kept = cache.count()
            assert 0 < kept < len(requests)
            resumed, stats = score_requests(requests, executor, cache, token_budget=64, show_progress=False)
    assert stats.cache_hits == kept and stats.scored == len(requests) - kept
    assert {key: s.value for key, s in resumed.items()} == {r.key: float(len(r.response)) for r in requests}


def test_placements_the_cluster_cannot_hold_are_errors(ray_cluster: None) -> None:
    with pytest.raises(ModelSpecError, match="3 Ray workers need a CPU each, but the cluster has 2 CPUs"):
        create_executor("ray", ModelSpec.build({"model": "", "engine": "length"}), workers=3)
    with pytest.raises(ModelSpecError, match="device 'cuda' was asked for but the Ray cluster has no GPU"):
        create_executor("ray", ModelSpec.build({"model": "", "engine": "length", "device": "cuda"}))
    assert ray.is_initialized()  # a failed executor leaves a cluster it did not start running


def test_a_model_a_worker_cannot_load_is_a_spec_error(ray_cluster: None, tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="a Ray worker could not load the model"):
        create_executor("ray", ModelSpec(model=str(tmp_path / "no-such-model")))


def test_local_executor_rejects_ray_options() -> None:
    with pytest.raises(ModelSpecError, match="need --executor ray"):
        create_executor("local", ModelSpec.build({"model": "", "engine": "length"}), workers=2)

