"""The GPU benchmark's workload: RewardBench-2-shaped (one prompt, four responses) requests with real text lengths.

RewardBench 2 is ~1.9k prompts of one correct and three incorrect responses (more for Ties); the shipped data holds
only a 20-record Ties sample of it, too few for a length distribution. So the prompts and responses come from the
shipped HH-RLHF harmless-base test pairs: group ``i`` is pair ``i``'s conversation with its chosen and rejected
response plus two responses of other pairs. Every request is real text, groups share a prompt as in RewardBench 2,
and each group's first two requests are a real HH-RLHF pair (for the hf-vs-vLLM verdict agreement).

Without the shared data the workload is synthetic (word counts drawn from a fixed log-normal, words from the tiny
models' vocabulary); ``Workload.source`` says which, and the benchmark writes it into its results.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmbench.requests import ScoreRequest

#: Responses per prompt, as in RewardBench 2's non-Ties subsets (1 chosen, 3 rejected).
PER_PROMPT = 4


@dataclass(frozen=True)
class Workload:
    requests: list[ScoreRequest]
    #: (chosen index, rejected index) into ``requests``: one real preference pair per prompt group.
    pairs: list[tuple[int, int]]
    #: Where the texts came from ("hh_rlhf harmless-base test: <path>" or "synthetic: ...").
    source: str

    def to_json(self) -> list[list[object]]:
        return requests_to_json(self.requests)


def requests_to_json(requests: list[ScoreRequest]) -> list[list[object]]:
    """(prompt turns, response) rows, for handing requests to a measuring process."""
    return [[[list(turn) for turn in r.prompt], r.response] for r in requests]


def requests_from_json(rows: list[list[Any]]) -> list[ScoreRequest]:
    """The requests ``requests_to_json`` wrote."""
    requests = []
    for prompt, response in rows:
        turns = tuple((str(turn[0]), str(turn[1])) for turn in prompt)
        requests.append(ScoreRequest(turns, str(response)))
    return requests


def build_workload(n_requests: int, hh_file: Path | None, *, seed: int = 0) -> Workload:
    """``n_requests`` requests (rounded down to whole groups of ``PER_PROMPT``, at least one group)."""
    groups = max(1, n_requests // PER_PROMPT)
    if hh_file is not None and hh_file.exists():
        conversations = _hh_pairs(hh_file)
        if groups > len(conversations):
            raise SystemExit(f"--requests {n_requests}: {hh_file} has {len(conversations)} pairs, so at most "
                             f"{len(conversations) * PER_PROMPT} requests")
        source = f"hh_rlhf harmless-base test (first {groups} of {len(conversations)} pairs): {hh_file}"
    else:
        conversations = _synthetic_pairs(groups, seed)
        source = ("synthetic: log-normal word counts (prompt median 60, response median 45 words), because "
                  f"{hh_file} was not found; lengths are not measured data")
    rng = random.Random(seed)
    responses = [response for _, chosen, rejected in conversations for response in (chosen, rejected)]
    requests: list[ScoreRequest] = []
    pairs: list[tuple[int, int]] = []
    for prompt, chosen, rejected in conversations[:groups]:
        others = [r for r in rng.sample(responses, PER_PROMPT) if r not in (chosen, rejected)][: PER_PROMPT - 2]
        pairs.append((len(requests), len(requests) + 1))
        requests += [ScoreRequest(prompt, text) for text in (chosen, rejected, *others)]
    return Workload(requests, pairs, source)


def _hh_pairs(path: Path) -> list[tuple[tuple[tuple[str, str], ...], str, str]]:
    from rmbench.transforms import get_transform

    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [
        (tuple((turn["role"], turn["content"]) for turn in r["prompt"]), r["chosen"], r["rejected"])
        for r in get_transform("hh_rlhf")(records)
    ]


def _synthetic_pairs(groups: int, seed: int) -> list[tuple[tuple[tuple[str, str], ...], str, str]]:
    from rmbench.devtools.tiny_models import _WORDS

    rng = random.Random(seed)

    def text(median: float) -> str:
        return " ".join(rng.choices(_WORDS, k=max(1, round(rng.lognormvariate(0, 0.8) * median))))

    return [((("user", text(60)),), text(45), text(45)) for _ in range(groups)]
