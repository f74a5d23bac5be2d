"""RM-Bench style grid (METRICS.md §5): chosen and rejected responses each in 3 styles.

Per item the 3×3 matrix M[i][j] is the pairwise outcome (§1, tie policy applies) of chosen-in-style-i against
rejected-in-style-j; hard / normal / easy are the means of its upper triangle / diagonal / lower triangle (upper:
the chosen answer is plainer than the rejected one, so style works against substance). A domain is a section of
the suite (e.g. ``safety`` = ``safety-refuse`` + ``safety-response`` pooled) or, without sections, a subset; the
overall value is the unweighted mean over domains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rmbench.items import PreferenceItem
from rmbench.metrics.stats import SectionedMeans, pairwise_outcome, sectioned_means, sectioned_metrics
from rmbench.metrics.tie_effect import TIES, other_column, other_policy, with_tie_effect
from rmbench.protocols.aggregate import PreferenceScoring, checked_scores, per_item_frame
from rmbench.protocols.base import MetricOptions, ProtocolResult, ResponseCounts, Section, SuiteProtocol, TiePolicy
from rmbench.requests import Score

STYLES = ("concise", "detailed", "markdown")
METRICS = ("hard", "normal", "easy", "score")
_CELLS = {f"cell_{i}{j}": (i, j) for i in range(len(STYLES)) for j in range(len(STYLES))}


class StyleGridProtocol(PreferenceScoring, SuiteProtocol):
    """Metrics ``hard``, ``normal``, ``easy`` and ``score`` = mean(hard, normal, easy); the grid in extra."""

    name: ClassVar[str] = "rmbench_grid"
    headline: ClassVar[str | None] = "score"
    response_counts: ClassVar[ResponseCounts | None] = (len(STYLES), len(STYLES))

    def evaluate(
        self, items: Sequence[PreferenceItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        resolved = checked_scores(items, scores, options, self.name, self.counts)
        chosen, rejected = np.stack(resolved.chosen), np.stack(resolved.rejected)
        grid = style_grid(chosen, rejected, options.tie_policy)
        frame = per_item_frame(resolved.items, **grid_summary(grid))
        other = grid_summary(style_grid(chosen, rejected, other_policy(options.tie_policy)))
        tie_effect = frame.assign(
            **{other_column(name): values for name, values in other.items()},
            **{TIES: (chosen[:, :, None] == rejected[:, None, :]).sum(axis=(1, 2))},
        )

        domains, synthesized = _domains(options.sections, sorted(frame["subset"].astype(str).unique()))
        table = sectioned_metrics(frame, list(METRICS), options, sections=domains)
        cells = per_item_frame(resolved.items, **{name: grid[:, i, j] for name, (i, j) in _CELLS.items()})
        cell_table = sectioned_means(cells, list(_CELLS), domains, resamples=0)  # point values: the mean grid
        metrics = [m for m in table.metric_values() if not (synthesized and m.scope.startswith("section:"))]
        metrics = with_tie_effect(metrics, tie_effect, domains)
        return ProtocolResult(
            metrics=metrics,
            per_item=frame,
            excluded=resolved.excluded,
            extra={
                "tie_policy": options.tie_policy,
                "aggregate": options.aggregate,
                "styles": list(STYLES),
                "grid": _matrix(cell_table, "overall"),
                "grid_by_domain": {
                    scope.split(":", 1)[1]: _matrix(cell_table, scope)
                    for scope in cell_table.estimates
                    if scope.startswith("section:")
                },
                "domains": {name: list(section.subsets) for name, section in domains.items()},
                **table.notes(),
            },
        )


def style_grid(chosen: np.ndarray, rejected: np.ndarray, policy: TiePolicy) -> np.ndarray:
    """(n, 3, 3) pairwise outcomes: [k, i, j] = chosen style i vs rejected style j of item k."""
    return pairwise_outcome(chosen[:, :, None], rejected[:, None, :], policy)


def grid_summary(grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per item hard (i < j), normal (i = j), easy (i > j) and their mean."""
    size = grid.shape[1]
    upper, diagonal, lower = np.triu_indices(size, 1), np.diag_indices(size), np.tril_indices(size, -1)
    hard = grid[:, upper[0], upper[1]].mean(axis=1)
    normal = grid[:, diagonal[0], diagonal[1]].mean(axis=1)
    easy = grid[:, lower[0], lower[1]].mean(axis=1)
    return {"hard": hard, "normal": normal, "easy": easy, "score": (hard + normal + easy) / 3.0}


def _domains(sections: Mapping[str, Section] | None, subsets: list[str]) -> tuple[dict[str, Section], bool]:
    """The suite's sections, or one domain per subset (then flagged, so subset values are not reported twice)."""
    if sections:
        return dict(sections), False
    return {s: Section(subsets=[s]) for s in subsets}, True


def _matrix(table: SectionedMeans, scope: str) -> list[list[Any]]:
    values = table.estimates[scope]
    return [[values[f"cell_{i}{j}"].value for j in range(len(STYLES))] for i in range(len(STYLES))]
