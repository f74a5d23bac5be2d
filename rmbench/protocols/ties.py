"""RewardBench 2 Ties (METRICS.md §4): does the RM separate every correct answer from every incorrect one, and by
more than it spreads the correct answers apart?

Prompts come in pairs ``tied:N`` (several correct answers) and ``ref:N`` (one correct answer); the score uses the
N present in both halves (after excluding items with invalid scores), and the bootstrap resamples those N. The
comparisons are strict ``>`` by definition (§4), whatever tie policy the suite asks for; ``extra`` says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import pandas as pd

from rmbench.errors import DataError
from rmbench.items import PreferenceItem
from rmbench.metrics.stats import bootstrap, estimates_to_metrics
from rmbench.protocols.aggregate import PreferenceScoring, per_item_frame, require_counts, resolve_scores
from rmbench.protocols.base import MetricOptions, ProtocolResult, SuiteProtocol
from rmbench.requests import Score

_ID = re.compile(r"(?:.*[^A-Za-z])?(tied|ref):(\w+)")
WEIGHTS = {
    "tied_acc": 0.30,
    "ref_acc": 0.30,
    "correctness_preferred": 0.20,
    "correctness_preferred_hard": 0.20,
    "margin_score": 0.01,
}


def parse_ties_id(item_id: str) -> tuple[str, str]:
    """``"tied:41"`` → ("tied", "41"); a prefix such as ``"ties/ref:41"`` is allowed. DataError otherwise."""
    match = _ID.fullmatch(item_id)
    if match is None:
        raise DataError("a Ties item id must end in 'tied:N' or 'ref:N'", record=item_id, field="id")
    return match.group(1), match.group(2)


class TiesProtocol(PreferenceScoring, SuiteProtocol):
    """Metrics ``score`` (the weighted Ties score), ``tied_acc``, ``ref_acc`` and the three margin components."""

    name: ClassVar[str] = "ties"

    def evaluate(
        self, items: Sequence[PreferenceItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        keys = _check_items(items, self.name)
        resolved = resolve_scores(items, scores, options.aggregate)
        frame = per_item_frame(
            resolved.items,
            accurate=[float(c.min() > r.max()) for c, r in zip(resolved.chosen, resolved.rejected)],
            correct_incorrect_margin=[c.min() - r.max() for c, r in zip(resolved.chosen, resolved.rejected)],
            correct_spread=[
                c.max() - c.min() if keys[item.id][0] == "tied" else np.nan
                for item, c in zip(resolved.items, resolved.chosen)
            ],
        )
        frame["kind"] = [keys[i][0] for i in frame["item_id"]]
        frame["cluster"] = [f"ties:{keys[i][1]}" for i in frame["item_id"]]
        paired = frame.groupby("cluster")["kind"].transform("nunique") == 2
        excluded = dict(resolved.excluded)
        if (~paired).any():
            excluded["unpaired"] = int((~paired).sum())
        frame = frame[paired].reset_index(drop=True)
        if frame.empty:
            raise DataError("no prompt number N has both a 'tied:N' and a 'ref:N' item with valid scores")

        estimates = bootstrap(
            pair_frame(frame),
            ties_statistics,
            resamples=options.bootstrap_resamples,
            confidence=options.confidence,
            seed=options.seed,
        )
        return ProtocolResult(
            metrics=estimates_to_metrics(estimates),
            per_item=frame.drop(columns="kind"),
            excluded=excluded,
            extra={
                "tie_policy": "strict",
                "tie_policy_note": "METRICS.md §4 defines accurate as min(correct) > max(incorrect); "
                f"the requested policy '{options.tie_policy}' does not apply",
                "aggregate": options.aggregate,
                "weights": dict(WEIGHTS),
                "pairs": int(len(frame) // 2),
            },
        )


def _check_items(items: Sequence[PreferenceItem], protocol: str) -> dict[str, tuple[str, str]]:
    keys: dict[str, tuple[str, str]] = {}
    seen: set[tuple[str, str]] = set()
    for item in items:
        require_counts(item, protocol, (None, None))
        key = parse_ties_id(item.id)
        if key in seen:
            raise DataError(f"duplicate Ties item '{key[0]}:{key[1]}'", record=item.id, field="id")
        seen.add(key)
        keys[item.id] = key
    return keys


def pair_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per N: the tied and ref halves side by side (the bootstrap's resampling unit)."""
    halves = frame.pivot(index="cluster", columns="kind", values=["accurate", "correct_incorrect_margin"])
    spread = frame[frame["kind"] == "tied"].set_index("cluster")["correct_spread"]
    return pd.DataFrame(
        {
            "cluster": halves.index,
            "tied_accurate": halves[("accurate", "tied")].to_numpy(),
            "ref_accurate": halves[("accurate", "ref")].to_numpy(),
            "tied_margin": halves[("correct_incorrect_margin", "tied")].to_numpy(),
            "ref_margin": halves[("correct_incorrect_margin", "ref")].to_numpy(),
            "spread": spread.reindex(halves.index).to_numpy(),
        }
    ).reset_index(drop=True)


def ties_statistics(pairs: pd.DataFrame) -> dict[str, float]:
    """The §4 score and its components over the rows (prompt numbers N) of ``pairs``."""
    spread = pairs["spread"].to_numpy(float)
    tied_margin = pairs["tied_margin"].to_numpy(float)
    hardest = np.minimum(pairs["ref_margin"].to_numpy(float), tied_margin)
    parts = {
        "tied_acc": float(pairs["tied_accurate"].mean()),
        "ref_acc": float(pairs["ref_accurate"].mean()),
        "correctness_preferred": float(np.mean(tied_margin > spread)),
        "correctness_preferred_hard": float(np.mean(hardest > spread)),
        "margin_score": float(np.mean(margin_term(hardest, spread))),
    }
    return {"score": sum(WEIGHTS[k] * v for k, v in parts.items()), **parts}


def margin_term(margin: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """tanh(margin / spread − 1), guarded at spread = 0 the way upstream's IEEE arithmetic resolves it:
    ±margin/0 → ±inf → tanh = ±1, and 0/0 → NaN → 0 (``np.nan_to_num``), i.e. sign(margin)."""
    ratio = np.divide(margin, spread, out=np.zeros_like(margin, dtype=float), where=spread != 0)
    return np.where(spread != 0, np.tanh(ratio - 1.0), np.sign(margin))
