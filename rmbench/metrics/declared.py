"""Every metric rmbench reports, declared once: what it means, which way is better, how its CI is computed, and
whether it is an outcome of the reward model or a fitted parameter.

Readers take a metric's direction from here: the gate (a lower-is-better metric regresses when it rises, a target
metric when it moves away from its target), compare, correlate and leaderboards (ranking). A name that is not
declared is an error (``UndeclaredMetricError``), never a silent "higher is better". Names with a number in them
(``gold_bon_16``) are declared once as a pattern (``gold_bon_{n}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cache

from rmbench.errors import RmbenchError


class Direction(str, Enum):
    """Which way a metric improves."""

    HIGHER = "higher"  # higher is better
    LOWER = "lower"  # lower is better
    TARGET = "target"  # best at a target value; worse the further away (e.g. a position-bias rate at 0.5)
    NONE = "none"  # no better value: context for reading other metrics (the proxy's own view of its picks)


class Kind(str, Enum):
    """What a metric is; the gate's default gates outcomes only."""

    OUTCOME = "outcome"  # how well the reward model does: gated by default
    PARAMETER = "parameter"  # a parameter fitted to the outcomes (the Gao fit's alpha, beta...): shown, not gated
    BASELINE = "baseline"  # a reference that does not depend on the reward model (majority class): not gated


class CI(str, Enum):
    """How a metric's confidence interval is computed."""

    CLUSTER_BOOTSTRAP = "percentile bootstrap over items, resampled by prompt cluster"
    PROMPT_BOOTSTRAP = "percentile bootstrap over prompts (best-of-n pools)"
    REFIT_BOOTSTRAP = "percentile bootstrap over prompts, the fit redone on every resample"
    FIXED_PROBE_BOOTSTRAP = "percentile bootstrap over test items by prompt cluster, probes held fixed"


class UndeclaredMetricError(RmbenchError):
    """A metric name no declaration covers: its direction, and so any verdict on it, is unknown."""


@dataclass(frozen=True)
class MetricDeclaration:
    """One metric (or a family ``name_{n}``): the contract every reader interprets its numbers by."""

    name: str
    description: str
    direction: Direction
    ci: CI
    kind: Kind = Kind.OUTCOME
    target: float | None = None  # Direction.TARGET only

    def __post_init__(self) -> None:
        if (self.direction is Direction.TARGET) != (self.target is not None):
            raise ValueError(f"metric '{self.name}': a target value goes with direction 'target' and only with it")

    @property
    def gated_by_default(self) -> bool:
        """Outcomes with a better direction; fitted parameters, baselines and context metrics only when asked."""
        return self.kind is Kind.OUTCOME and self.direction is not Direction.NONE

    @property
    def recorded_method(self) -> str:
        """The ``method`` results.json records for this metric's CI."""
        from rmbench.metrics.bootstrap import INVERTED_CDF, LINEAR

        if self.ci is CI.FIXED_PROBE_BOOTSTRAP:
            return f"{LINEAR.method}, probes fixed"
        return INVERTED_CDF.method if self.ci in (CI.PROMPT_BOOTSTRAP, CI.REFIT_BOOTSTRAP) else LINEAR.method

    def badness(self, value: float) -> float:
        """A number that grows as the metric gets worse, for ranking and regression checks (not for NONE)."""
        if self.direction is Direction.HIGHER:
            return -value
        if self.direction is Direction.LOWER:
            return value
        if self.direction is Direction.TARGET:
            assert self.target is not None
            return abs(value - self.target)
        raise ValueError(f"metric '{self.name}' has no better direction")

    def worsening(self, baseline: float, candidate: float) -> float:
        """How much worse ``candidate`` is than ``baseline`` (negative: better), in the metric's own units."""
        return self.badness(candidate) - self.badness(baseline)


_B, _P, _R, _F = CI.CLUSTER_BOOTSTRAP, CI.PROMPT_BOOTSTRAP, CI.REFIT_BOOTSTRAP, CI.FIXED_PROBE_BOOTSTRAP
_H, _L, _N = Direction.HIGHER, Direction.LOWER, Direction.NONE
_M = MetricDeclaration

#: Protocol (as named in suite YAML, plus ``evaluate-scores`` for imported score files) → the metrics it can emit.
DECLARATIONS: dict[str, tuple[MetricDeclaration, ...]] = {
    "pairwise": (
        _M("accuracy", "share of pairs where chosen outscores rejected (ties per the tie policy)", _H, _B),
    ),
    "pairwise_judge": (
        _M("accuracy", "the verdict both presentation orders agree on; disagreement counts as a tie", _H, _B),
        _M("position_consistency", "share of pairs judged the same in both orders", _H, _B),
        _M("single_order_accuracy", "accuracy of one verdict in a seeded random order", _H, _B),
        _M(
            "first_position_rate", "share of verdicts for whichever response was shown first (0.5: no position bias)",
            Direction.TARGET, _B, target=0.5,
        ),
    ),
    "best_of_n": (
        _M("accuracy", "share of items whose good response outscores every bad one (METRICS.md §2)", _H, _B),
        _M("mrr", "mean reciprocal rank of the good response among all responses", _H, _B),
    ),
    "evaluate-scores": (
        _M("accuracy", "one-vs-many accuracy of a published score file (METRICS.md §2)", _H, _B),
        _M("mrr", "mean reciprocal rank of the correct solution in a published score file", _H, _B),
        _M(
            "best_of_4_accuracy", "§2 accuracy against 3 of the incorrect solutions, averaged over every draw", _H, _B
        ),
        _M("pairwise_accuracy", "pairwise-judge files: share of the comparisons judged correctly", _H, _B),
    ),
    "ties": (
        _M("score", "RewardBench 2 Ties score: the weighted sum of the five parts (METRICS.md §4)", _H, _B),
        _M("tied_acc", "tied prompts: every correct answer outscores every incorrect one", _H, _B),
        _M("ref_acc", "reference prompts: the correct answer outscores every incorrect one", _H, _B),
        _M("correctness_preferred", "correct-incorrect margin (tied) exceeds the correct spread", _H, _B),
        _M(
            "correctness_preferred_hard", "the smaller of both margins exceeds the correct answers' spread", _H, _B
        ),
        _M("margin_score", "mean tanh(margin / spread - 1): how far margins exceed the spread", _H, _B),
    ),
    "rmbench_grid": (
        _M("hard", "chosen in a plainer style than rejected (upper triangle of the style grid)", _H, _B),
        _M("normal", "chosen and rejected in the same style (the grid's diagonal)", _H, _B),
        _M("easy", "chosen in a richer style than rejected (lower triangle)", _H, _B),
        _M("score", "mean of hard, normal and easy", _H, _B),
    ),
    "contrast": (
        _M("response_consistency", "both instructions prefer their own response (METRICS.md §6)", _H, _B),
        _M("instruction_consistency", "both responses prefer their own instruction", _H, _B),
        _M("response_q1", "instruction q1 prefers its own response r1 over r2", _H, _B),
        _M("response_q2", "instruction q2 prefers its own response r2 over r1", _H, _B),
        _M("instruction_r1", "response r1 scores higher under q1 than under q2", _H, _B),
        _M("instruction_r2", "response r2 scores higher under q2 than under q1", _H, _B),
    ),
    "probing": (
        _M("probe_accuracy", "test accuracy of a logistic probe on the RM's hidden states", _H, _F),
        _M(
            "majority_accuracy", "test accuracy of always predicting the train split's majority class", _H, _F,
            kind=Kind.BASELINE,
        ),
        _M("probe_gain", "probe accuracy minus majority accuracy", _H, _F),
        _M("pair_accuracy", "pairwise accuracy of the reward on test pairs with different labels", _H, _F),
        _M("pair_accuracy_conf_low", "pair accuracy where few probes back the decision", _H, _F),
        _M("pair_accuracy_conf_mid", "pair accuracy where some probes back the decision", _H, _F),
        _M("pair_accuracy_conf_high", "pair accuracy where most probes back the decision", _H, _F),
        _M(
            "confidence_gap", "pair accuracy at high minus low probe confidence: does probe backing predict success",
            _H, _F,
        ),
    ),
    "step_level": (
        _M("prm_score", "PRMBench PRMScore: 0.5·F1 of correct steps + 0.5·F1 of erroneous steps (METRICS.md §10)", _H, _B),
        _M("f1_correct_steps", "step-level F1 of the correct steps (steps scored above the threshold)", _H, _B),
        _M("f1_error_steps", "step-level F1 of the erroneous steps (steps scored at or below the threshold)", _H, _B),
        _M("first_error_acc_error", "erroneous solutions whose first flagged step is the earliest error", _H, _B),
        _M("first_error_acc_correct", "correct solutions with no step flagged", _H, _B),
        _M("first_error_f1", "ProcessBench F1: harmonic mean of the two first-error accuracies", _H, _B),
        _M("first_error_hit", "per solution: the earliest error (or its absence) was found exactly", _H, _B),
    ),
    "overoptimization": (
        _M("gold_bon_{n}", "expected gold score of the proxy's best-of-n pick", _H, _P),
        _M("proxy_bon_{n}", "the proxy's own score of its best-of-n pick", _N, _P),
        _M("gold_gain", "gold of best-of-K minus gold of best-of-1: what optimizing the proxy buys", _H, _P),
        _M(
            "proxy_gain", "proxy of best-of-K minus best-of-1: the gain the proxy believes in", _N, _P
        ),
        _M(
            "alpha", "Gao fit d(alpha - beta d) of the gold gain: initial slope", _H, _R, kind=Kind.PARAMETER
        ),
        _M(
            "beta", "Gao fit of the gold gain: curvature (overoptimization strength)", _L, _R, kind=Kind.PARAMETER
        ),
        _M("d_star", "peak of the fitted gold gain, alpha / (2 beta), in sqrt(KL)", _H, _R, kind=Kind.PARAMETER),
        _M("n_star", "n where the fitted gold gain stops growing", _H, _R, kind=Kind.PARAMETER),
    ),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(name).replace(re.escape("{n}"), r"\d+") + "$")


@cache
def _index() -> tuple[tuple[re.Pattern[str], MetricDeclaration, str], ...]:
    return tuple((_pattern(d.name), d, protocol) for protocol, ds in DECLARATIONS.items() for d in ds)


def find(name: str, protocol: str | None = None) -> MetricDeclaration | None:
    """The declaration of ``name`` (of ``protocol``, when given and it declares the name), or None."""
    matches = [(d, p) for pattern, d, p in _index() if pattern.match(name)]
    for declaration, owner in matches:
        if owner == protocol:
            return declaration
    return matches[0][0] if matches else None


def declared(name: str, protocol: str | None = None) -> MetricDeclaration:
    """The declaration of ``name``; an undeclared name is an error, never a default direction."""
    declaration = find(name, protocol)
    if declaration is None:
        known = sorted({d.name for _, d, _ in _index()})
        raise UndeclaredMetricError(
            f"metric '{name}' is not declared (rmbench.metrics.declared); known: {', '.join(known)}"
        )
    return declaration


def _check_consistent() -> None:
    """A name declared by several protocols must mean the same direction and kind everywhere: readers that do not
    know the protocol (a leaderboard column, correlate) may take any of them."""
    seen: dict[str, MetricDeclaration] = {}
    for _, d, _ in _index():
        first = seen.setdefault(d.name, d)
        if (first.direction, first.kind, first.target) != (d.direction, d.kind, d.target):
            raise ValueError(f"metric '{d.name}' is declared with different directions or kinds")


_check_consistent()
