"""Correlation between two scores across models (METRICS.md §9): Spearman ρ, Kendall τ, Pearson r.

One side is always a metric read from run directories; the other is another metric (possibly of another suite) or a
downstream table (CSV with columns ``model,score``). Models are matched by an explicit label — the run directory's
name or the model spec — and the matching (who was paired, who was left out on each side) is part of the result, so
a silent mismatch cannot shrink n. Each coefficient gets a bootstrap CI over models; n < 5 is flagged.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats

from rmbench.analysis.compare import LoadedRun, load_run
from rmbench.errors import RmbenchError
from rmbench.metrics.bootstrap import LINEAR, check_resamples, resample_indices
from rmbench.metrics.declared import Direction
from rmbench.settings import CONFIDENCE, PAIRED_RESAMPLES

LabelBy = Literal["dir", "model"]
METHODS = ("spearman", "kendall", "pearson")
SMALL_N = 5


@dataclass(frozen=True)
class MetricRef:
    """``[suite/]metric[@scope]``, e.g. ``accuracy``, ``rewardmath/mrr``, ``rm-bench/accuracy@section:chat``."""

    name: str
    suite: str | None = None
    scope: str = "overall"

    @classmethod
    def parse(cls, text: str) -> MetricRef:
        head, _, scope = text.partition("@")
        suite, _, name = head.rpartition("/")
        if not name:
            raise RmbenchError(f"metric '{text}': expected [suite/]metric[@scope]")
        return cls(name=name, suite=suite or None, scope=scope or "overall")

    def __str__(self) -> str:
        text = f"{self.suite}/{self.name}" if self.suite else self.name
        return text if self.scope == "overall" else f"{text}@{self.scope}"


def expand_runs(patterns: list[str], base: Path | None = None, how: str | None = None) -> list[Path]:
    """Run directories from paths and globs (relative to ``base``), sorted, each at most once. ``how`` says how the
    runs get there (e.g. a leaderboard's build script), for the message when a pattern matches nothing."""
    found: list[Path] = []
    for pattern in patterns:
        full = str(base / pattern) if base is not None and not Path(pattern).is_absolute() else pattern
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not matches:
            where = Path(full).resolve() if not glob.has_magic(full) else Path(full).parent.resolve() / Path(full).name
            raise RmbenchError(
                f"runs: '{pattern}' matches no run directory (looked for {where})"
                + (f"; {how}" if how else "; run `rmbench run --out DIR` (or evaluate-scores) to create runs there")
            )
        found += [Path(m) for m in matches if Path(m).is_dir() or Path(m).name.endswith(".json")]
    return sorted(dict.fromkeys(found))


def run_label(run: LoadedRun, label_by: LabelBy) -> str:
    """``dir``: the run directory's name; ``model``: the model spec's model (or engine and seed for baselines)."""
    if label_by == "dir":
        return run.name
    spec = run.results.model.spec
    if spec.model:
        return spec.model
    return spec.engine if spec.engine != "random" else f"random-seed{(spec.model_extra or {}).get('seed', 0)}"


def metric_values(runs: list[LoadedRun], ref: MetricRef, label_by: LabelBy) -> dict[str, float]:
    """label → value for the runs that have the metric (and belong to ``ref.suite`` when it is given)."""
    values: dict[str, float] = {}
    where: dict[str, Path] = {}
    for run in runs:
        if ref.suite is not None and run.suite.name != ref.suite:
            continue
        metric = run.metric(ref.name, ref.scope)
        if metric is None or metric.value is None:
            continue
        label = run_label(run, label_by)
        if label in values:
            raise RmbenchError(
                f"two runs are labelled '{label}' for {ref}: {where[label]} and {run.path}; "
                "label by the other key (--label-by) or name the suite ([suite/]metric)"
            )
        values[label], where[label] = metric.value, run.path
    if not values:
        raise RmbenchError(f"no run reports metric {ref}")
    return values


def metric_gaps(runs: list[LoadedRun], ref: MetricRef) -> list[str]:
    """Why each run of ``ref``'s suite has no value for it, naming the file and the field (what a too-small match
    says it left out)."""
    problems = (run.missing_value(ref.name, ref.scope) for run in runs if ref.suite is None or run.suite.name == ref.suite)
    return [problem for problem in problems if problem is not None]


def metric_direction(runs: list[LoadedRun], ref: MetricRef) -> Direction:
    """The declared direction of ``ref`` (of the protocol of the first run that reports it)."""
    for run in runs:
        if (ref.suite is None or run.suite.name == ref.suite) and run.metric(ref.name, ref.scope) is not None:
            return run.declaration(ref.name).direction
    raise RmbenchError(f"no run reports metric {ref}")


def direction_warnings(directions: dict[str, Direction]) -> list[str]:
    """How to read the sign when a side is not higher-is-better (side → its direction)."""
    warnings = []
    for side, direction in directions.items():
        if direction is Direction.LOWER:
            warnings.append(f"{side} is lower-is-better: a negative correlation means the two agree on which is better")
        elif direction is not Direction.HIGHER:
            warnings.append(f"{side} has direction '{direction.value}': the sign of a correlation does not say which "
                            "models are better")
    return warnings


def read_downstream(path: Path) -> dict[str, float]:
    """A downstream table: CSV with columns ``model`` and ``score`` (other columns are ignored)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise RmbenchError(f"{path}: cannot read downstream CSV: {exc}") from exc
    if not rows or not {"model", "score"} <= set(rows[0]):
        raise RmbenchError(f"{path}: expected a CSV with columns 'model' and 'score'")
    values: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        label = row["model"].strip()
        if label in values:
            raise RmbenchError(f"{path}, line {line}: model '{label}' appears twice")
        try:
            values[label] = float(row["score"])
        except ValueError as exc:
            raise RmbenchError(f"{path}, line {line}: score {row['score']!r} is not a number") from exc
    return values


@dataclass(frozen=True)
class Coefficient:
    method: str
    value: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    degenerate_resamples: int  # resamples where one side was constant (no correlation defined), left out of the CI


@dataclass
class Correlation:
    x_name: str
    y_name: str
    labels: list[str]
    x: list[float]
    y: list[float]
    coefficients: list[Coefficient]
    only_x: list[str]
    only_y: list[str]
    label_by: str
    resamples: int
    seed: int
    confidence: float
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def small_n(self) -> bool:
        return self.n < SMALL_N

    def coefficient(self, method: str) -> Coefficient:
        return next(c for c in self.coefficients if c.method == method)

    def as_dict(self) -> dict[str, Any]:
        return {
            "x": self.x_name,
            "y": self.y_name,
            "n": self.n,
            "small_n": self.small_n,
            "label_by": self.label_by,
            "matching": {"matched": self.labels, "only_x": self.only_x, "only_y": self.only_y},
            "points": [{"model": m, "x": x, "y": y} for m, x, y in zip(self.labels, self.x, self.y)],
            "coefficients": [asdict(c) for c in self.coefficients],
            "bootstrap": {
                "resamples": self.resamples, "seed": self.seed, "confidence": self.confidence, "over": "models"
            },
            "warnings": self.warnings,
        }


def _coefficients(x: np.ndarray, y: np.ndarray) -> dict[str, tuple[float, float]]:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {m: (float("nan"), float("nan")) for m in METHODS}
    spearman = stats.spearmanr(x, y)
    kendall = stats.kendalltau(x, y)
    pearson = stats.pearsonr(x, y)
    return {
        "spearman": (float(spearman.statistic), float(spearman.pvalue)),
        "kendall": (float(kendall.statistic), float(kendall.pvalue)),
        "pearson": (float(pearson.statistic), float(pearson.pvalue)),
    }


def resampled_coefficients(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Pearson r, Spearman ρ and Kendall τ-b (as scipy defines them) for each row of (resamples × models) arrays.

    Vectorized because a bootstrap needs thousands of them; a row where one side is constant gives NaN. A model
    drawn twice is a tie with itself, which τ-b and the average ranks of ρ handle as scipy does.
    """

    def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r: np.ndarray = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        return r

    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        kendall = (sx * sy).sum(axis=(1, 2)) / np.sqrt(np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2)))
    return {
        "spearman": pearson(stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)),
        "kendall": kendall,
        "pearson": pearson(x, y),
    }


def correlate(
    x: dict[str, float],
    y: dict[str, float],
    *,
    x_name: str,
    y_name: str,
    label_by: str = "dir",
    resamples: int = PAIRED_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    directions: dict[str, Direction] | None = None,
    left_out: Sequence[str] = (),
) -> Correlation:
    """Correlate the models present on both sides; bootstrap CIs resample models with replacement (seeded).

    ``directions`` (side name → declared direction) adds a warning on how to read the sign for a side that is not
    higher-is-better. ``left_out`` (runs without a value, from ``metric_gaps``) is named when too few models match."""
    check_resamples(resamples)
    labels = sorted(set(x) & set(y))
    only_x, only_y = sorted(set(x) - set(y)), sorted(set(y) - set(x))
    if len(labels) < 3:
        raise RmbenchError(
            f"only {len(labels)} model(s) matched between {x_name} and {y_name} (need ≥ 3); "
            f"unmatched: {only_x} vs {only_y}" + "".join(f"; left out: {gap}" for gap in left_out)
        )
    xs = np.array([x[m] for m in labels])
    ys = np.array([y[m] for m in labels])
    point = _coefficients(xs, ys)
    # Every model is its own cluster: the same seeded draws as every other bootstrap in rmbench.
    index = np.concatenate(list(resample_indices(len(labels), resamples, seed)))
    draws = resampled_coefficients(xs[index], ys[index])
    coefficients = []
    for method in METHODS:
        sample = draws[method]
        finite = sample[np.isfinite(sample)]
        low, high = (float(v) for v in LINEAR.interval(finite, confidence)) if finite.size else (None, None)
        value, p_value = point[method]
        coefficients.append(Coefficient(method, value, low, high, p_value, int(sample.size - finite.size)))
    warnings = direction_warnings(directions or {})
    if len(labels) < SMALL_N:
        warnings.append(f"only {len(labels)} models: correlations across fewer than {SMALL_N} models mean little")
    for side, names in (("x", only_x), ("y", only_y)):
        if names:
            warnings.append(f"{len(names)} model(s) only on the {side} side, left out: {', '.join(names)}")
    return Correlation(
        x_name, y_name, labels, xs.tolist(), ys.tolist(), coefficients, only_x, only_y, label_by, resamples, seed,
        confidence, warnings,
    )


def load_runs(patterns: list[str]) -> list[LoadedRun]:
    return [load_run(p) for p in expand_runs(patterns)]


def correlation_markdown(result: Correlation) -> str:
    """A short report: the coefficients with CIs, n, warnings and the matched models."""
    level = f"{result.confidence:.0%}"
    lines = [
        f"# Correlation: {result.x_name} vs {result.y_name}",
        "",
        f"n = {result.n} models (matched by {result.label_by}); {level} CIs from {result.resamples} bootstrap "
        f"resamples over models (seed {result.seed}).",
        "",
        f"| coefficient | value | {level} CI | p |",
        "|---|---:|---|---:|",
    ]
    for c in result.coefficients:
        ci = "—" if c.ci_low is None else f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
        lines.append(f"| {c.method} | {c.value:.3f} | {ci} | {c.p_value:.2g} |")
    lines += [""] + [f"- ⚠️ {w}" for w in result.warnings] + (["" ] if result.warnings else [])
    lines += ["| model | x | y |", "|---|---:|---:|"]
    lines += [f"| {m} | {xv:.4f} | {yv:.4f} |" for m, xv, yv in zip(result.labels, result.x, result.y)]
    return "\n".join(lines) + "\n"
