"""The perturbation plot of a run: the headline metric under each rewrite with its CI, beside the original.

Drawn from results.json's ``perturbations`` alone, so it can be redrawn without scores. Like every rmbench plot it
carries no timestamp or software metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rmbench.atomic import write_with
from rmbench.results.io import as_results

PERTURBATIONS_PNG = "perturbations.png"


def write_perturbation_png(run_dir: Path, document: Mapping[str, Any], title: str = "") -> Path | None:
    """``<run_dir>/perturbations.png``; None when the run had no perturbations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = as_results(document)
    records = results.perturbations
    if not records:
        return None
    # One group per paired metric (a judge's response_order pairs on single_order_accuracy, text rewrites on
    # accuracy): each group's rewrites beside that metric's original value.
    metrics = list(dict.fromkeys(r.metric for r in records))
    labels: list[str] = []
    values: list[float] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    colours: list[str] = []
    groups: list[tuple[int, int]] = []  # (first row, last row) of each metric's group
    for metric in metrics:
        group = [r for r in records if r.metric == metric]
        original = results.metric(metric)
        groups.append((len(labels), len(labels) + len(group)))
        labels.append("original" if len(metrics) == 1 else f"original ({metric})")
        values.append(original.value if original and original.value is not None else group[0].original)
        lows.append(original.ci_low if original else None)
        highs.append(original.ci_high if original else None)
        colours.append("#111827")
        for record in group:
            labels.append(record.label)
            values.append(record.perturbed)
            lows.append(record.perturbed_ci_low)
            highs.append(record.perturbed_ci_high)
            colours.append(_colour(record.change))
    below = [v - lo if lo is not None else 0.0 for v, lo in zip(values, lows, strict=True)]
    above = [hi - v if hi is not None else 0.0 for v, hi in zip(values, highs, strict=True)]
    out = Path(run_dir) / PERTURBATIONS_PNG
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.38 * len(labels)), dpi=110)
    try:
        top = len(labels) - 1
        positions = [top - row for row in range(len(labels))]
        ax.errorbar(values, positions, xerr=[below, above], fmt="none", ecolor="#9ca3af", capsize=3, zorder=2)
        ax.scatter(values, positions, color=colours, s=30, zorder=3)
        for first, last in groups:  # the original's value as a reference line through its group
            ax.vlines(values[first], top - last - 0.4, top - first + 0.4, color="#6b7280", linewidth=1,
                      linestyle="--", zorder=1)
        ax.set_yticks(positions, labels, fontsize=8)
        ax.set_xlim(-0.02, 1.02)  # every paired metric (accuracy, the grid score) is a share
        measured = metrics[0] if len(metrics) == 1 else "each group's metric"
        ax.set_xlabel(f"{measured} (95% CI); red: lower than the original, blue: higher")
        ax.set_title(title or f"{results.suite.name} under meaning-preserving rewrites", fontsize=10)
        ax.grid(True, axis="x", color="#e5e7eb", zorder=0)
        fig.tight_layout()
        write_with(out, lambda p: fig.savefig(p, format="png", metadata={"Software": None}))
    finally:
        plt.close(fig)
    return out


def _colour(change: float) -> str:
    return "#dc2626" if change < 0 else "#2563eb" if change > 0 else "#6b7280"
