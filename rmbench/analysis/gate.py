"""The regression gate (METRICS.md §9): does a candidate run drop a metric compared with a baseline run?

A gated metric fails only when it gets worse by more than the tolerance *and* significantly so at α (one-sided:
evidence that it moved the worse way). With both runs' items.parquet the CI is the paired cluster bootstrap of
``rmbench.analysis.compare`` and the p-value comes from a test that is valid at any n: McNemar's exact test for
0/1 outcomes of one item per prompt, else the paired sign-flip permutation test over prompts. A scope with fewer
than ``GATE_MIN_N`` items is "insufficient data", neither pass nor fail. When either side is a bare results.json the gate falls back to an unpaired normal
approximation built from the two reported CIs, and says so. Unusable input (different suite or version, different
items, a metric missing) raises RmbenchError: a gate must never pass because it compared the wrong things.

Which way is worse comes from the metric's declaration (``rmbench.metrics.declared``): a drop for higher-is-better
metrics, a rise for lower-is-better ones, a move away from the target for target metrics. By default every overall
outcome metric both runs report is gated; fitted parameters and baselines only when named with ``--metric``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from scipy.stats import norm

from rmbench.analysis.compare import (
    DEFAULT_RESAMPLES,
    LoadedRun,
    comparability_warnings,
    compare_runs,
    load_run,
    per_item_metrics,
    suite_mismatch,
)
from rmbench.errors import RmbenchError
from rmbench.metrics.declared import Direction, MetricDeclaration
from rmbench.results.markdown import md_cell
from rmbench.settings import GATE_ALPHA, GATE_MAX_DROP, GATE_MIN_N

DEFAULT_MAX_DROP = GATE_MAX_DROP
DEFAULT_ALPHA = GATE_ALPHA
DEFAULT_MIN_N = GATE_MIN_N


@dataclass(frozen=True)
class GateCheck:
    """One gated metric: the drop, its significance, and the verdict with its reason."""

    metric: str
    scope: str
    baseline: float
    candidate: float
    diff: float  # candidate − baseline
    ci_low: float | None
    ci_high: float | None
    p_drop: float  # one-sided p that the metric got worse (dropped, for a higher-is-better metric)
    method: Literal["paired", "unpaired"]
    n: int
    passed: bool
    reason: str
    direction: str = Direction.HIGHER.value
    #: Fewer than the gate's minimum n items: reported, neither passed nor failed (``passed`` stays True so the
    #: exit code is not a regression).
    insufficient: bool = False
    test: str = ""  # which test gave p_drop

    @property
    def label(self) -> str:
        return self.metric if self.scope == "overall" else f"{self.metric} ({self.scope})"


@dataclass
class GateResult:
    candidate: Path
    baseline: Path
    suite: dict[str, Any]  # name, version, protocol, content_hash
    max_drop: float
    alpha: float
    checks: list[GateCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def parse_metric(text: str) -> tuple[str, str]:
    """``accuracy`` → (accuracy, overall); ``accuracy@subset:chat`` → (accuracy, subset:chat)."""
    name, _, scope = text.partition("@")
    return name, scope or "overall"


def run_gate(
    candidate_path: Path,
    baseline_path: Path,
    *,
    metrics: list[str] | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    alpha: float = DEFAULT_ALPHA,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    max_perturbation_drop: float | None = None,
    min_n: int = DEFAULT_MIN_N,
) -> GateResult:
    if max_drop < 0:
        raise RmbenchError(f"--max-drop {max_drop}: the tolerance cannot be negative")
    if max_perturbation_drop is not None and max_perturbation_drop < 0:
        raise RmbenchError(f"--max-perturbation-drop {max_perturbation_drop}: the tolerance cannot be negative")
    if not 0 < alpha < 1:
        raise RmbenchError(f"--alpha {alpha}: must be between 0 and 1")
    candidate, baseline = load_run(candidate_path), load_run(baseline_path)
    mismatch = suite_mismatch(baseline, candidate)
    if mismatch:
        raise RmbenchError(f"gate input unusable: {mismatch}")
    for option in ("tie_policy", "aggregate"):
        ours, theirs = candidate.options.get(option), baseline.options.get(option)
        if ours != theirs:
            raise RmbenchError(f"gate input unusable: metric option '{option}' differs ({theirs!r} vs {ours!r})")
    gated = [parse_metric(m) for m in metrics] if metrics else _default_metrics(candidate, baseline)
    for name, scope in gated:
        for role, run in (("candidate", candidate), ("baseline", baseline)):
            problem = run.missing_value(name, scope)
            if problem is not None:
                raise RmbenchError(f"gate input unusable: {role} {problem}")
    declarations = {name: _gateable(candidate, name) for name, _ in gated}
    notes = [w for w in comparability_warnings(baseline, candidate) if "content hash" in w]
    paired = candidate.items is not None and baseline.items is not None
    if candidate.items is not None and baseline.items is not None:
        _require_same_items(candidate, baseline)
        notes.append(
            f"paired cluster bootstrap on {len(candidate.items)} shared items ({resamples} resamples, seed {seed})"
        )
    else:
        missing = [str(r.path) for r in (candidate, baseline) if r.items is None]
        notes.append(
            f"unpaired comparison: no items.parquet for {', '.join(missing)}; the test uses the two reported CIs "
            "(normal approximation), which ignores the pairing and so is less sensitive than a paired test"
        )
    checks = []
    comparison = None
    paired_names = set(per_item_metrics(candidate.items)) & set(per_item_metrics(baseline.items)) if paired else set()
    wanted = sorted({name for name, _ in gated if name in paired_names})
    scopes = {scope for _, scope in gated}
    if wanted:
        comparison = compare_runs(
            baseline, candidate, metrics=wanted, wanted_scopes=scopes, resamples=resamples, seed=seed,
            small_n_tests=True,
        )
    # Evidence of a rise is the swapped comparison's evidence of a drop (same seed, same resamples).
    rising = sorted({n for n in wanted if declarations[n].direction is not Direction.HIGHER})
    reverse = (
        compare_runs(candidate, baseline, metrics=rising, wanted_scopes=scopes, resamples=resamples, seed=seed,
                     small_n_tests=True)
        if rising
        else None
    )
    for name, scope in gated:
        declaration = declarations[name]
        difference = comparison.find(name, scope) if comparison else None
        if difference is not None and difference.p_drop_small_n is not None:
            swapped = reverse.find(name, scope) if reverse else None
            p_rise = swapped.p_drop_small_n if swapped is not None else None
            check = _verdict(name, declaration, scope, difference.value_a, difference.value_b, difference.ci_low,
                             difference.ci_high, difference.p_drop_small_n, p_rise, "paired", difference.n, max_drop,
                             alpha)
            checks.append(replace(check, test=difference.drop_test or ""))
        else:
            if paired:
                notes.append(f"'{name}' ({scope}) has no per-item column: gated unpaired from the reported CIs")
            checks.append(_unpaired(declaration, name, scope, candidate, baseline, max_drop, alpha))
    if max_perturbation_drop is not None:
        checks += _perturbation_checks(candidate, max_perturbation_drop, alpha)
        notes.append(
            f"perturbation rows: the candidate under each rewrite against its own original items (tolerance "
            f"{max_perturbation_drop:g}; paired CI and p-value as recorded in its results.json)"
        )
    checks = [_sufficient(c, min_n) for c in checks]
    short = [c.label for c in checks if c.insufficient]
    if short:
        notes.append(
            f"insufficient data (fewer than {min_n} items, METRICS.md §9): {', '.join(short)}; neither pass nor fail"
        )
    skipped = _not_gated_by_default(candidate, baseline) if not metrics else []
    if skipped:
        notes.append(f"not gated by default (fitted parameters, baselines, context): {', '.join(skipped)}")
    return GateResult(candidate.path, baseline.path, candidate.suite.model_dump(), max_drop, alpha, checks, notes)


def _perturbation_checks(candidate: LoadedRun, max_drop: float, alpha: float) -> list[GateCheck]:
    """One check per perturbation of the candidate: does the rewrite drop the headline metric by more than
    ``max_drop``, significantly? A run without perturbations is unusable input, never a vacuous pass."""
    records = candidate.results.perturbations
    if not records:
        raise RmbenchError(
            f"gate input unusable: --max-perturbation-drop needs perturbations, and {candidate.path} has none "
            "(run it with --perturb or a suite with perturbations:)"
        )
    checks = []
    for record in records:
        if record.p_drop is None:
            raise RmbenchError(
                f"gate input unusable: perturbation '{record.label}' of {candidate.path} has no bootstrap p-value "
                "(run with bootstrap resamples)"
            )
        checks.append(
            _verdict(record.metric, _gateable(candidate, record.metric), f"perturbation:{record.label}",
                     record.original, record.perturbed, record.change_ci_low, record.change_ci_high, record.p_drop,
                     None, "paired", record.n, max_drop, alpha)
        )
    return checks


def _sufficient(check: GateCheck, min_n: int) -> GateCheck:
    """Below the minimum n no test is trusted either way: a one-item subset that flips is not a regression."""
    if check.n >= min_n:
        return check
    return replace(
        check, passed=True, insufficient=True,
        reason=f"insufficient data: n = {check.n} < {min_n} items; neither pass nor fail ({check.reason})",
    )


def _gateable(run: LoadedRun, name: str) -> MetricDeclaration:
    """The metric's declaration; one without a better direction cannot be gated."""
    declaration = run.declaration(name)
    if declaration.direction is Direction.NONE:
        raise RmbenchError(f"gate input unusable: metric '{name}' has no better direction ({declaration.description})")
    return declaration


def _shared_overall(candidate: LoadedRun, baseline: LoadedRun) -> list[str]:
    return [n for n in candidate.results.metric_names("overall") if baseline.metric(n) is not None]


def _default_metrics(candidate: LoadedRun, baseline: LoadedRun) -> list[tuple[str, str]]:
    """Every overall outcome metric both runs report (not fitted parameters, baselines or context metrics)."""
    shared = [(n, "overall") for n in _shared_overall(candidate, baseline) if candidate.declaration(n).gated_by_default]
    if not shared:
        listed = "; ".join(
            f"{role} {run.file} metrics has {', '.join(run.results.metric_names('overall')) or 'none'}"
            for role, run in (("candidate", candidate), ("baseline", baseline))
        )
        raise RmbenchError(f"gate input unusable: the runs share no overall outcome metric ({listed})")
    return shared


def _not_gated_by_default(candidate: LoadedRun, baseline: LoadedRun) -> list[str]:
    return [n for n in _shared_overall(candidate, baseline) if not candidate.declaration(n).gated_by_default]


def _require_same_items(candidate: LoadedRun, baseline: LoadedRun) -> None:
    assert candidate.items is not None and baseline.items is not None
    ids_c, ids_b = set(candidate.items["item_id"]), set(baseline.items["item_id"])
    if ids_c != ids_b:
        raise RmbenchError(
            f"gate input unusable: different items ({len(ids_b & ids_c)} shared, {len(ids_b - ids_c)} only in the "
            f"baseline, {len(ids_c - ids_b)} only in the candidate); gate runs of the same items (same --limit, "
            "no invalid scores), or use `rmbench compare` to look at the shared ones"
        )


def _unpaired(
    declaration: MetricDeclaration,
    name: str,
    scope: str,
    candidate: LoadedRun,
    baseline: LoadedRun,
    max_drop: float,
    alpha: float,
) -> GateCheck:
    """Normal approximation: each CI half-width is z·SE, the SEs of independent runs add in quadrature."""
    c, b = candidate.metric(name, scope), baseline.metric(name, scope)
    assert c is not None and b is not None and c.value is not None and b.value is not None
    ses = []
    for run, metric in ((candidate, c), (baseline, b)):
        if metric.ci_low is None or metric.ci_high is None:
            raise RmbenchError(f"gate input unusable: {run.path} reports no CI for '{name}' ({scope})")
        confidence = run.results.metric_options.confidence
        ses.append((metric.ci_high - metric.ci_low) / (2 * norm.ppf(0.5 + confidence / 2)))
    if c.n != b.n:
        raise RmbenchError(
            f"gate input unusable: different items for '{name}' ({scope}): n = {b.n} in the baseline, {c.n} in "
            "the candidate"
        )
    diff = c.value - b.value
    se = math.hypot(*ses)
    p_drop = float(norm.cdf(diff / se)) if se > 0 else (0.0 if diff < 0 else 1.0)
    p_rise = float(norm.cdf(-diff / se)) if se > 0 else (0.0 if diff > 0 else 1.0)
    z = norm.ppf(0.975)
    check = _verdict(name, declaration, scope, b.value, c.value, diff - z * se, diff + z * se, p_drop, p_rise,
                     "unpaired", c.n, max_drop, alpha)
    return replace(check, test="normal approximation from the two reported CIs")


def _worse_way(declaration: MetricDeclaration, baseline: float, candidate: float) -> str:
    """``down`` or ``up``: the way this move would make the metric worse (for a target metric: the side the
    candidate ended on, since moving further that way moves away from the target)."""
    if declaration.direction is Direction.LOWER:
        return "up"
    if declaration.direction is Direction.TARGET:
        assert declaration.target is not None
        side = candidate - declaration.target if candidate != declaration.target else candidate - baseline
        return "up" if side > 0 else "down"
    return "down"


def _verdict(
    name: str,
    declaration: MetricDeclaration,
    scope: str,
    baseline: float,
    candidate: float,
    ci_low: float | None,
    ci_high: float | None,
    p_drop: float,
    p_rise: float | None,
    method: Literal["paired", "unpaired"],
    n: int,
    max_drop: float,
    alpha: float,
) -> GateCheck:
    """Pass unless the metric got worse (by its declared direction) by more than ``max_drop``, significantly."""
    diff = candidate - baseline
    way = _worse_way(declaration, baseline, candidate)
    p_worse = p_drop if way == "down" else p_rise
    assert p_worse is not None, "a rise needs the reversed comparison's p-value"
    worse = declaration.worsening(baseline, candidate)
    moved = {Direction.HIGHER: "dropped", Direction.LOWER: "rose"}.get(declaration.direction)
    moved = moved or f"moved away from target {declaration.target:g}"
    too_large, significant = worse > max_drop, p_worse < alpha
    if too_large and significant:
        reason = f"{moved} by {worse:.4f} > tolerance {max_drop:g}, significant (p = {p_worse:.4g} < α = {alpha:g})"
    elif too_large:
        reason = (
            f"{moved} by {worse:.4f} > tolerance {max_drop:g}, but not significant (p = {p_worse:.4g} ≥ α = {alpha:g})"
        )
    elif worse > 0:
        reason = f"{moved} by {worse:.4f}, within tolerance {max_drop:g} (p = {p_worse:.4g})"
    else:
        reason = (
            f"no drop (change {diff:+.4f}, p = {p_worse:.4g})"
            if declaration.direction is Direction.HIGHER
            else f"not worse (change {diff:+.4f}, {declaration.direction.value} is better, "
            f"p = {p_worse:.4g})"
        )
    return GateCheck(name, scope, baseline, candidate, diff, ci_low, ci_high, p_worse, method, n,
                     passed=not (too_large and significant), reason=reason, direction=declaration.direction.value)


# --- reports for CI systems -----------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def summary_markdown(result: GateResult) -> str:
    """A job-summary page: verdict first, then one row per gated metric."""
    suite = result.suite
    verdict = "✅ PASSED" if result.passed else "❌ FAILED"
    if result.passed and result.checks and all(c.insufficient for c in result.checks):
        verdict = "⚠️ NO VERDICT (insufficient data)"
    failed = [c for c in result.checks if not c.passed]
    lines = [
        f"## rmbench gate: {verdict}",
        "",
        f"Suite **{suite['name']}** v{suite['version']} · candidate `{result.candidate}` vs baseline "
        f"`{result.baseline}` · tolerance {result.max_drop:g} · α = {result.alpha:g}",
        "",
    ]
    if failed:
        lines += [f"- **{md_cell(c.label)}** {md_cell(c.reason)}" for c in failed] + [""]
    lines += [
        "| metric | better | baseline | candidate | Δ | 95% CI of Δ | p (worse) | n | test | result |",
        "|---|---|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for c in result.checks:
        ci = f"[{_num(c.ci_low)}, {_num(c.ci_high)}]"
        status = "**FAIL**" if not c.passed else "insufficient data" if c.insufficient else "pass"
        lines.append(
            f"| {md_cell(c.label)} | {c.direction} | {_num(c.baseline)} | {_num(c.candidate)} | {c.diff:+.4f} | {ci} "
            f"| {c.p_drop:.4g} | {c.n} "
            f"| {c.method} | {status} |"
        )
    lines += ["", "A metric fails only when it gets worse (by its declared direction) by more than the tolerance *and* "
              "significantly so at α."]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def error_markdown(message: str) -> str:
    return f"## rmbench gate: ⚠️ UNUSABLE INPUT\n\n{message}\n\nThe gate did not compare anything (exit code 2).\n"


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one test case per gated metric, a <failure> for each failed gate."""
    suite_name = f"rmbench-gate.{result.suite['name']}"
    failures = sum(not c.passed for c in result.checks)
    skipped = sum(c.insufficient for c in result.checks)
    root = ET.Element("testsuites", name="rmbench gate", tests=str(len(result.checks)), failures=str(failures))
    suite = ET.SubElement(
        root, "testsuite", name=suite_name, tests=str(len(result.checks)), failures=str(failures), errors="0",
        skipped=str(skipped),
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("candidate", str(result.candidate)),
        ("baseline", str(result.baseline)),
        ("suite_version", str(result.suite["version"])),
        ("max_drop", f"{result.max_drop:g}"),
        ("alpha", f"{result.alpha:g}"),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=check.label, time="0")
        detail = (
            f"baseline {_num(check.baseline)}, candidate {_num(check.candidate)}, change {check.diff:+.4f} "
            f"(95% CI [{_num(check.ci_low)}, {_num(check.ci_high)}]), one-sided p = {check.p_drop:.4g}, "
            f"n = {check.n}, {check.method}: {check.test or 'test'}"
        )
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=f"{check.label} {check.reason}", type="RegressionGate")
            failure.text = detail
        elif check.insufficient:
            ET.SubElement(case, "skipped", message=check.reason).text = detail
        else:
            ET.SubElement(case, "system-out").text = f"{check.reason}; {detail}"
    ET.SubElement(suite, "system-out").text = "\n".join(result.notes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def error_junit_xml(message: str) -> str:
    """One errored test case, so a CI system shows why the gate could not run."""
    root = ET.Element("testsuites", name="rmbench gate", tests="1", failures="0", errors="1")
    suite = ET.SubElement(root, "testsuite", name="rmbench-gate", tests="1", failures="0", errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="rmbench-gate", name="gate input", time="0")
    ET.SubElement(case, "error", message=message, type="UnusableInput").text = message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
