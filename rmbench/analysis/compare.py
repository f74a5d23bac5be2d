"""Paired comparison of two runs of the same suite (METRICS.md §9): B − A on the items both runs share.

Every mean-type metric is recomputed from the per-item columns of ``items.parquet`` on the shared items only, for
the overall scope (sectioned mean when the suite has sections), each section and each subset. The CI is a paired
bootstrap that resamples clusters (prompts) once for both runs, so the correlation between the runs is kept; for
0/1 outcomes McNemar's exact test on the discordant items is reported beside it. This module computes; it does
not print (see ``rmbench.cli.reports``) and it does not decide (see ``rmbench.analysis.gate``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from rmbench.errors import RmbenchError
from rmbench.metrics import declared, stats
from rmbench.metrics.bootstrap import LINEAR, check_resamples, paired_difference
from rmbench.metrics.options import Section
from rmbench.metrics.stats import sectioned_mean_sign_flips
from rmbench.results.io import RESULTS, read_results
from rmbench.results.rundir import ITEMS
from rmbench.results.schema import MetricRecord, RunResults, SuiteIdentity
from rmbench.settings import CONFIDENCE, PAIRED_RESAMPLES

KEY_COLUMNS = ("item_id", "subset", "cluster")
DEFAULT_RESAMPLES = PAIRED_RESAMPLES


@dataclass(frozen=True)
class LoadedRun:
    """A run directory (or a bare results.json): the typed results and, when present, the per-item outcomes."""

    path: Path
    results: RunResults
    items: pd.DataFrame | None

    @property
    def suite(self) -> SuiteIdentity:
        return self.results.suite

    @property
    def name(self) -> str:
        """The run directory's name (the results file's directory for a bare results.json)."""
        return (self.path if self.path.is_dir() else self.path.resolve().parent).name

    @property
    def file(self) -> Path:
        """The results.json itself: what an error about its content names."""
        return self.path / RESULTS if self.path.is_dir() else self.path

    def metric(self, name: str, scope: str = "overall") -> MetricRecord | None:
        return self.results.metric(name, scope)

    def missing_value(self, name: str, scope: str = "overall") -> str | None:
        """Why this run has no value for ``name`` in ``scope``, naming the file and the field; None when it has one."""
        for index, record in enumerate(self.results.metrics):
            if record.name == name and record.scope == scope:
                if record.value is not None:
                    return None
                return f"{self.file}: metrics[{index}].value is null (metric '{name}', scope {scope})"
        known = ", ".join(sorted(set(self.results.metric_names()))) or "none"
        return f"{self.file}: metrics has no metric '{name}' in scope {scope} (it has {known})"

    def declaration(self, name: str) -> declared.MetricDeclaration:
        """How to read metric ``name`` of this run (its direction, kind); undeclared names are an error."""
        return declared.declared(name, self.suite.protocol)

    @property
    def options(self) -> dict[str, Any]:
        """The metric options as results.json records them."""
        return self.results.metric_options.model_dump()


def load_run(path: Path) -> LoadedRun:
    """Read results.json (checking its schema version) and items.parquet when the run directory has one."""
    path = Path(path)
    if not path.exists():
        raise RmbenchError(f"{path}: no such run directory or results file")
    if path.is_dir() and not (path / RESULTS).exists():
        raise RmbenchError(f"{path}: not a run directory (no {RESULTS}; was the run interrupted?)")
    results = read_results(path)
    items_file = (path if path.is_dir() else path.parent) / ITEMS
    items = None
    # A bare results.json is only paired with the items.parquet beside it when that file is its own run directory's.
    if items_file.exists() and (path.is_dir() or path.name == RESULTS):
        items = pd.read_parquet(items_file)
        missing = [c for c in KEY_COLUMNS if c not in items.columns]
        if missing:
            raise RmbenchError(f"{items_file}: missing column(s) {', '.join(missing)}")
        if items["item_id"].duplicated().any():
            raise RmbenchError(f"{items_file}: duplicate item_id values")
    return LoadedRun(path=path, results=results, items=items)


def suite_mismatch(a: LoadedRun, b: LoadedRun) -> str | None:
    """Why two runs cannot be compared at all (different suite or suite version), or None."""
    sa, sb = a.suite, b.suite
    if sa.name != sb.name:
        return f"different suites: suite.name is '{sa.name}' in {a.file}, '{sb.name}' in {b.file}"
    if sa.version != sb.version:
        return (
            f"different versions of suite '{sa.name}': suite.version is '{sa.version}' in {a.file}, "
            f"'{sb.version}' in {b.file}"
        )
    return None


def comparability_warnings(a: LoadedRun, b: LoadedRun) -> list[str]:
    """Differences that do not forbid a comparison but change what it means."""
    warnings = []
    if a.suite.content_hash != b.suite.content_hash:
        warnings.append(
            f"suite content hash differs ({a.suite.content_hash} vs {b.suite.content_hash}): "
            "the suite file changed without a version bump"
        )
    for option in ("tie_policy", "aggregate", "sections"):
        va, vb = a.options.get(option), b.options.get(option)
        if va != vb:
            warnings.append(f"metric option '{option}' differs: {va!r} vs {vb!r}")
    return warnings


def per_item_metrics(items: pd.DataFrame) -> list[str]:
    """Numeric per-item outcome columns (everything but the keys), in file order."""
    return [c for c in items.columns if c not in KEY_COLUMNS and pd.api.types.is_numeric_dtype(items[c])]


# --- sectioned means, keeping every resample -----------------------------------------------------------------------


def sectioned_mean_draws(
    frame: pd.DataFrame, columns: list[str], sections: dict[str, Any] | None, *, resamples: int, seed: int
) -> stats.ScopeDraws:
    """``stats.sectioned_mean_draws`` for the sections as results.json records them: p-values need every resample.

    A scope therefore means exactly what it means in results.json (sections, explicit weights, unsectioned
    subsets), and the draws of a column B − A are the paired draws of the difference of the two means.
    """
    parsed = {name: Section.model_validate(spec) for name, spec in sections.items()} if sections else None
    return stats.sectioned_mean_draws(frame, columns, parsed, resamples=resamples, seed=seed)


# --- the comparison -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """B − A for one metric in one scope, on the shared items where both runs have a value."""

    metric: str
    scope: str
    n: int
    value_a: float
    value_b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # two-sided, paired bootstrap
    p_drop: float | None  # one-sided: evidence that B < A (the gate reads this)
    mcnemar_p: float | None = None  # exact, two-sided; only for 0/1 outcomes
    a_only_correct: int | None = None  # discordant pairs: A right, B wrong
    b_only_correct: int | None = None  # discordant pairs: B right, A wrong
    method: str = f"paired cluster {LINEAR.method}"  # the percentile rule that made the CI and the p-values
    #: The metric's declared direction (higher, lower, target, none); None for a per-item column that is not a
    #: declared metric (e.g. probing's probe_correct), whose change has no better side.
    direction: str | None = None
    #: True when B is better than A by the declared direction, False when worse, None when it cannot say.
    improved: bool | None = None
    #: Evidence that B < A from a test valid at any n (only with ``small_n_tests``; the gate reads it): McNemar's
    #: exact one-sided test for 0/1 outcomes of one item per prompt, else the paired sign-flip permutation test
    #: over prompts. ``drop_test`` names which.
    p_drop_small_n: float | None = None
    drop_test: str | None = None


@dataclass
class Comparison:
    a: Path
    b: Path
    suite: dict[str, Any]
    shared: int
    only_a: int
    only_b: int
    resamples: int
    seed: int
    confidence: float
    differences: list[Difference]
    warnings: list[str] = field(default_factory=list)

    def find(self, metric: str, scope: str = "overall") -> Difference | None:
        return next((d for d in self.differences if d.metric == metric and d.scope == scope), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a),
            "b": str(self.b),
            "suite": self.suite,
            "items": {"shared": self.shared, "only_a": self.only_a, "only_b": self.only_b},
            "bootstrap": {"resamples": self.resamples, "seed": self.seed, "confidence": self.confidence},
            "differences": [asdict(d) for d in self.differences],
            "warnings": self.warnings,
        }


def compare_runs(
    a: LoadedRun,
    b: LoadedRun,
    *,
    metrics: list[str] | None = None,
    wanted_scopes: set[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    small_n_tests: bool = False,
) -> Comparison:
    """Paired B − A for every shared per-item metric in every scope (or only ``wanted_scopes``).

    ``small_n_tests`` adds each difference's ``p_drop_small_n`` (the gate's test, valid at any n).

    Raises RmbenchError when the runs are not comparable (different suite or version, no items.parquet).
    """
    check_resamples(resamples)
    mismatch = suite_mismatch(a, b)
    if mismatch:
        raise RmbenchError(f"cannot compare: {mismatch}")
    for run in (a, b):
        if run.items is None:
            raise RmbenchError(f"{run.path}: no {ITEMS}; a paired comparison needs the per-item outcomes")
    assert a.items is not None and b.items is not None
    names = [m for m in per_item_metrics(a.items) if m in set(per_item_metrics(b.items))]
    if metrics is not None:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise RmbenchError(
                f"metric(s) {', '.join(unknown)} not a per-item column of both runs; available: {', '.join(names)}"
            )
        names = [m for m in names if m in metrics]
    if not names:
        raise RmbenchError(f"cannot compare: {a.path} and {b.path} have no per-item metric column in common")
    joined = a.items[[*KEY_COLUMNS, *names]].merge(
        b.items[["item_id", *names]], on="item_id", suffixes=("_a", "_b"), how="inner", sort=False
    )
    joined = joined.sort_values("item_id", kind="stable").reset_index(drop=True)
    ids_a, ids_b = set(a.items["item_id"]), set(b.items["item_id"])
    if joined.empty:
        raise RmbenchError(f"cannot compare: {a.path} and {b.path} share no item_id")

    sections = a.options.get("sections")
    differences = []
    # Usually every metric has a value on every item; a metric with gaps is computed on its own rows.
    for valid, group in _by_valid_rows(joined, names):
        rows = joined[valid].reset_index(drop=True)
        frame = rows[list(KEY_COLUMNS)].copy()
        for m in group:
            frame[f"{m}_a"], frame[f"{m}_b"] = rows[f"{m}_a"], rows[f"{m}_b"]
            frame[f"{m}_diff"] = rows[f"{m}_b"] - rows[f"{m}_a"]
        columns = [f"{m}_{side}" for m in group for side in ("a", "b", "diff")]
        table = sectioned_mean_draws(frame, columns, sections, resamples=resamples, seed=seed)
        flips = (
            sectioned_mean_sign_flips(frame, [f"{m}_diff" for m in group], sections, resamples=resamples, seed=seed)
            if small_n_tests
            else None
        )
        for i, label in enumerate(table.labels):
            if wanted_scopes is not None and label not in wanted_scopes:
                continue
            in_scope = frame["subset"].astype(str).isin(table.subsets[i]).to_numpy()
            for j, metric in enumerate(group):
                a_col, b_col, d_col = 3 * j, 3 * j + 1, 3 * j + 2
                difference = _difference(
                    metric, label, table.n[i], table.point[i, a_col], table.point[i, b_col],
                    table.draws[:, i, d_col], confidence,
                    frame.loc[in_scope, f"{metric}_a"].to_numpy(), frame.loc[in_scope, f"{metric}_b"].to_numpy(),
                )
                if flips is not None:
                    one_per_prompt = not frame.loc[in_scope, "cluster"].astype(str).duplicated().any()
                    difference = _with_small_n_test(difference, flips, flips.labels.index(label), j, one_per_prompt)
                differences.append(difference)
    order = {name: k for k, name in enumerate(names)}
    rank = {"overall": 0, "section": 1, "subset": 2}
    differences.sort(key=lambda d: (order[d.metric], rank[d.scope.split(":")[0]], d.scope))
    differences = [_with_direction(d, a.suite.protocol) for d in differences]
    warnings = comparability_warnings(a, b)
    return Comparison(
        a=a.path,
        b=b.path,
        suite=a.suite.model_dump(),
        shared=len(joined),
        only_a=len(ids_a - ids_b),
        only_b=len(ids_b - ids_a),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        differences=differences,
        warnings=warnings,
    )


def _with_small_n_test(
    difference: Difference, flips: stats.SignFlips, scope: int, column: int, one_per_prompt: bool
) -> Difference:
    """Attach the one-sided drop test that stays valid at small n (METRICS.md §9, small samples)."""
    a_only, b_only = difference.a_only_correct, difference.b_only_correct
    if one_per_prompt and a_only is not None and b_only is not None:
        discordant = a_only + b_only
        p = 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5, alternative="greater").pvalue)
        return replace(difference, p_drop_small_n=p, drop_test="McNemar exact (one-sided)")
    kind = "exact" if flips.exact else f"{len(flips.flips)} random sign patterns"
    return replace(
        difference,
        p_drop_small_n=flips.p_lower(scope, column),
        drop_test=f"paired sign-flip permutation over prompts ({kind})",
    )


def _with_direction(difference: Difference, protocol: str) -> Difference:
    """The difference read by its metric's declaration: which way is better, and whether B is."""
    declaration = declared.find(difference.metric, protocol)
    if declaration is None:
        return difference
    improved = None
    if declaration.direction is not declared.Direction.NONE:
        change = declaration.worsening(difference.value_a, difference.value_b)
        improved = None if change == 0 else change < 0
    return replace(difference, direction=declaration.direction.value, improved=improved)


def _by_valid_rows(joined: pd.DataFrame, names: list[str]) -> list[tuple[np.ndarray, list[str]]]:
    """Group metrics by the rows where both runs have a value."""
    groups: dict[bytes, tuple[np.ndarray, list[str]]] = {}
    for m in names:
        valid = (joined[f"{m}_a"].notna() & joined[f"{m}_b"].notna()).to_numpy()
        groups.setdefault(valid.tobytes(), (valid, []))[1].append(m)
    return [(valid, group) for valid, group in groups.values() if valid.any()]


def _difference(
    metric: str,
    scope: str,
    n: int,
    value_a: float,
    value_b: float,
    draws: np.ndarray,
    confidence: float,
    outcomes_a: np.ndarray,
    outcomes_b: np.ndarray,
) -> Difference:
    paired = paired_difference(draws, confidence, LINEAR)
    return Difference(
        metric=metric,
        scope=scope,
        n=n,
        value_a=float(value_a),
        value_b=float(value_b),
        diff=float(value_b - value_a),
        ci_low=paired.ci_low,
        ci_high=paired.ci_high,
        p_value=paired.p_value,
        p_drop=paired.p_drop,
        **_mcnemar(outcomes_a, outcomes_b),
    )


def _mcnemar(va: np.ndarray, vb: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test: under H0 a discordant item is equally likely to favour either run."""
    binary = np.isin(va, (0.0, 1.0)).all() and np.isin(vb, (0.0, 1.0)).all()
    if not binary or va.size == 0:
        return {}
    a_only = int(np.count_nonzero((va == 1) & (vb == 0)))
    b_only = int(np.count_nonzero((va == 0) & (vb == 1)))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(b_only, discordant, 0.5).pvalue)
    return {"mcnemar_p": p, "a_only_correct": a_only, "b_only_correct": b_only}
