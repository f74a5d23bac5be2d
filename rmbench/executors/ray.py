"""Scale-out on Ray: ``--executor ray`` spreads the unscored requests over actors, one engine per GPU or CPU worker.

The driver keeps the queue, the cache and the counts; each actor holds one engine. Requests go out in the scheduler's
own chunks (``rmbench.batching.CHUNK_REQUESTS``); every actor gets the whole chunk, packs it exactly as a local run
would, and scores its share of the batches (every n-th). Re-tokenizing a chunk on each actor costs little next to
the forward passes, and it buys what matters: the batches, and so the scores to the last bit, are those of a local
run, so results.json is byte-identical whichever executor ran. Actors do not write the SQLite cache: on a multi-node
cluster they do not share the driver's disk, SQLite's WAL mode is unsafe on network filesystems, and one writer never
waits on a lock. The driver caches each share as it returns, so a killed run resumes from there; two chunks are in
flight, so no actor idles while the driver writes.

Ray joins the cluster at ``--ray-address`` (or ``RAY_ADDRESS``; ``auto`` finds the one ``ray start --head`` left on
this node), else starts a local one. Every actor must see the same model: their fingerprints are compared before
any scoring, so a node with different files fails the run instead of mixing scores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from rmbench.batching import ScoredBatch
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

#: Chunks whose shares are queued on the actors at once, so each has its next share before it finishes one.
IN_FLIGHT = 2


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ModelSpecError("--executor ray needs Ray: pip install 'rmbench[ray]'") from exc
    return ray


class ScoringActor:
    """One engine on one worker (a Ray actor); stateless between calls apart from the loaded model."""

    def __init__(self, spec: ModelSpec, threads: int | None):
        import sys

        from rmbench.engines import create_engine

        self.engine = create_engine(spec)
        if threads and "torch" in sys.modules:  # baselines never import torch; do not make them
            sys.modules["torch"].set_num_threads(threads)

    def describe(self) -> tuple[str, int, dict[str, Any]]:
        return self.engine.fingerprint, self.engine.default_batch_tokens, self.engine.info()

    def score(
        self, chunk: list[ScoreRequest], token_budget: int, hidden: bool, share: int, shares: int
    ) -> list[ScoredBatch]:
        """Score this actor's share of one chunk's batches."""
        from rmbench.batching import score_batches

        return list(score_batches(self.engine, chunk, token_budget, hidden=hidden, share=share, shares=shares))


class RayExecutor:
    """Actors with one engine each; ``scored_batches`` gives each actor its share of every chunk."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        workers: int | None = None,
        address: str | None = None,
    ):
        ray = _ray()
        self.actors: list[Any] = []
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            address = address or os.environ.get("RAY_ADDRESS") or None
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise ModelSpecError(f"--ray-address {address}: no Ray cluster to join ({exc})") from exc
        try:
            self._placement = _placement(ray, spec, workers)
        except Exception:
            self.close()
            raise
        remote = ray.remote(ScoringActor).options(**self._placement["options"])
        threads = None if self._placement["gpus_per_actor"] else int(self._placement["options"]["num_cpus"])
        self.actors = [remote.remote(spec, threads) for _ in range(self._placement["actors"])]
        try:
            described = ray.get([actor.describe.remote() for actor in self.actors])
        except ray.exceptions.RayActorError as exc:  # the engine failed to load on a worker: the spec's fault
            self.close()
            raise ModelSpecError(f"a Ray worker could not load the model: {exc}") from exc
        except BaseException:
            self.close()
            raise
        if len({fingerprint for fingerprint, _, _ in described}) > 1:
            self.close()
            raise ModelSpecError(
                "Ray actors loaded different models for one spec (different files on different nodes?): "
                f"fingerprints {sorted({d[0] for d in described})}"
            )
        self.fingerprint: str = described[0][0]
        self.default_batch_tokens: int = described[0][1]
        self._info: dict[str, Any] = described[0][2]

    @classmethod
    def from_spec(cls, spec: ModelSpec, **options: Any) -> RayExecutor:
        return cls(spec, **options)

    def info(self) -> dict[str, Any]:
        return self._info

    def describe(self) -> dict[str, Any]:
        return {
            "executor": "ray",
            "actors": self._placement["actors"],
            "nodes": self._placement["nodes"],
            "gpus_per_actor": self._placement["gpus_per_actor"],
            "cpus_per_actor": self._placement["options"].get("num_cpus"),
        }

    def scored_batches(
        self, todo: Sequence[ScoreRequest], token_budget: int, *, hidden: bool = False
    ) -> Iterator[ScoredBatch]:
        from rmbench.batching import CHUNK_REQUESTS

        ray = _ray()
        chunks = (todo[start : start + CHUNK_REQUESTS] for start in range(0, len(todo), CHUNK_REQUESTS))
        shares = len(self.actors)
        pending: dict[Any, int] = {}  # task -> its chunk's number
        unfinished: dict[int, int] = {}  # chunk number -> shares not yet returned

        def submit_chunk() -> None:
            chunk = next(chunks, None)
            if chunk is None:
                return
            number = len(unfinished)
            chunk_ref = ray.put(list(chunk))  # stored once, read by every actor
            for share, actor in enumerate(self.actors):
                pending[actor.score.remote(chunk_ref, token_budget, hidden, share, shares)] = number
            unfinished[number] = shares

        for _ in range(IN_FLIGHT):
            submit_chunk()
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            number = pending.pop(ready)
            batches = ray.get(ready)
            unfinished[number] -= 1
            if not unfinished[number]:
                submit_chunk()
            yield from batches

    def close(self) -> None:
        """Stop the actors (frees their GPUs for the next model of a run); shut Ray down if this started it."""
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _placement(ray: Any, spec: ModelSpec, workers: int | None) -> dict[str, Any]:
    """How many actors with which resources: one per GPU when the cluster has GPUs (unless the spec says cpu),
    else one per node, each with as many CPU threads as fit on the smallest node. Asking for more than the
    cluster has is an error, not a silent hang."""
    resources = ray.cluster_resources()
    alive = [node for node in ray.nodes() if node.get("Alive")]
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if gpus and spec.device != "cpu":
        count = workers or gpus
        if count > gpus:
            raise ModelSpecError(f"{count} Ray workers with one GPU each, but the cluster has {gpus} GPUs")
        return {"actors": count, "nodes": len(alive), "gpus_per_actor": 1, "options": {"num_gpus": 1, "num_cpus": 1}}
    if spec.device == "cuda":
        raise ModelSpecError("device 'cuda' was asked for but the Ray cluster has no GPU")
    count = workers or max(1, len(alive))
    if count > cpus:
        raise ModelSpecError(f"{count} Ray workers need a CPU each, but the cluster has {cpus} CPUs")
    smallest_node = min((int(node.get("Resources", {}).get("CPU", 0)) for node in alive), default=cpus)
    threads = max(1, min(cpus // count, smallest_node))
    options = {"num_cpus": threads, "num_gpus": 0, "scheduling_strategy": "SPREAD"}
    return {"actors": count, "nodes": len(alive), "gpus_per_actor": 0, "options": options}
