"""How scores become metrics, and the numbers that come out: the options a suite and a run set, and one value.

These are the metrics layer's vocabulary, below suites, protocols and results (all of which name them); they import
nothing from rmbench, so any layer may use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rmbench.settings import BOOTSTRAP_SEED, CONFIDENCE, MIN_RESAMPLES, RUN_RESAMPLES

TiePolicy = Literal["expected", "strict"]
OTHER_POLICY: dict[str, TiePolicy] = {"expected": "strict", "strict": "expected"}
Aggregation = Literal["min", "prod", "last", "mean", "max", "geometric_mean", "mean_logit", "mean_odd"]


class Section(BaseModel):
    """A group of subsets scored together (RewardBench v1 sections, RM-Bench domains)."""

    model_config = ConfigDict(extra="forbid")

    subsets: list[str] = Field(description="Subset names in this section.")
    weights: dict[str, float] | Literal["equal"] | None = Field(
        None,
        description="Explicit per-subset weights, or 'equal' (the unweighted mean of the subsets present); "
        "default = weight by example count.",
    )


class MetricOptions(BaseModel):
    """Options that change how scores become metrics; recorded in results.json."""

    model_config = ConfigDict(extra="forbid")

    tie_policy: TiePolicy = "expected"
    aggregate: Aggregation = Field(
        "min", description="PRM step aggregation (METRICS.md §3; geometric_mean, mean_logit, mean_odd: RewardMATH's)."
    )
    sections: dict[str, Section] | None = Field(
        None, description="Overall = unweighted mean of sections; without sections, the mean over all items."
    )
    bootstrap_resamples: int = Field(RUN_RESAMPLES, ge=MIN_RESAMPLES, description="METRICS.md §9: at least 1,000.")
    confidence: float = Field(CONFIDENCE, gt=0, lt=1)
    seed: int = Field(BOOTSTRAP_SEED, description="Bootstrap seed (not the engine seed: changing it re-scores nothing).")
    params: dict[str, Any] = Field(default_factory=dict, description="Protocol-specific options.")


@dataclass(frozen=True)
class MetricValue:
    """One reported number with its CI and provenance."""

    name: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str = "bootstrap-percentile"
    scope: str = "overall"  # "overall", "section:<name>" or "subset:<name>"
    #: Tie-aware metrics only (METRICS.md §0): tied comparisons in this scope, and the value under the other policy.
    ties: int | None = None
    other_policy_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "scope": self.scope,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "method": self.method,
        }
        if self.ties is not None:
            record |= {"ties": self.ties, "other_policy_value": self.other_policy_value}
        return record
