"""PNG plots of overoptimization curves: gold and proxy score of the best-of-n pick against d = sqrt(KL_bon(n)).

Drawn from the JSON-ready data the ``overoptimization`` protocol puts in ``extra["curves"]`` (also stored in a run's
results.json), so a plot can be redrawn from a run directory without scoring anything. Same conventions as
``rmbench.report.plots``: Agg backend, no timestamp or software metadata, so the same data gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rmbench.atomic import write_with

CURVES_PNG = "overoptimization.png"
_COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563")


def write_curve_png(run_dir: Path, extra: Mapping[str, Any], title: str = "") -> Path | None:
    """``<run_dir>/overoptimization.png`` from a protocol result's ``extra`` (or results.json's); None when the
    result has no curves (another protocol)."""
    curves = extra.get("curves")
    if not curves:
        return None
    gold = extra.get("gold", {}).get("source", "?")
    subtitle = f"pool K = {extra.get('pool_size', len(curves['n']))} · gold: {gold} · bands: 95% bootstrap CI over prompts"
    return curve_png(curves, Path(run_dir) / CURVES_PNG, title=title or "best-of-n overoptimization", subtitle=subtitle)


def merge_curves(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One ``curves`` mapping from several runs of one overoptimization suite (model label → that run's
    ``extra["curves"]``), each run's scopes relabelled by model, so a leaderboard can draw all models on one plot.
    The runs must share the pool (same n and d), which runs of one suite version do."""
    merged: dict[str, Any] = {}
    for model, curves in sorted(runs.items()):
        if not merged:
            merged = {key: value for key, value in curves.items() if key != "scopes"} | {"scopes": {}}
        elif list(curves["n"]) != list(merged["n"]) or list(curves["d"]) != list(merged["d"]):
            raise ValueError(f"run '{model}' has another best-of-n pool (n, d) than the others; rebuild the runs")
        for scope, curve in curves["scopes"].items():
            name = model if scope == "overall" else f"{model} {_label(scope, curve)}"
            merged["scopes"][name] = dict(curve) | {"label": name}
    return merged


def _label(scope: str, curve: Mapping[str, Any]) -> str:
    if scope.startswith("ensemble:"):
        return f"ensemble {scope.removeprefix('ensemble:')}"
    return str(curve["label"])


def curve_png(curves: Mapping[str, Any], out: Path, *, title: str, subtitle: str = "") -> Path:
    """Left: mean gold of the best-of-n pick per proxy/ensemble (CI band, dashed Gao fit, dotted peak), with the
    gold-picked ceiling. Right: the proxy's own gain over n = 1 in units of its within-prompt SD, so proxies on
    different scales share one axis. The top axis marks n."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d = np.asarray(curves["d"], dtype=float)
    ns = list(curves["n"])
    fig, (gold_ax, proxy_ax) = plt.subplots(1, 2, figsize=(11.5, 4.8), dpi=110)
    try:
        if curves.get("gold_oracle"):
            gold_ax.plot(d, curves["gold_oracle"], color="#9ca3af", linestyle=":", linewidth=1.2,
                         label="ceiling: best-of-n by gold")
        grid = np.linspace(0.0, float(d[-1]), 100)
        for i, (scope, curve) in enumerate(curves["scopes"].items()):
            color = _COLORS[i % len(_COLORS)]
            fit = curve["fit"]
            gold = np.asarray(curve["gold"], dtype=float)
            gold_ax.plot(d, gold, marker="o", markersize=3, color=color, linewidth=1.5, label=_label(scope, curve))
            gold_ax.fill_between(d, curve["gold_ci_low"], curve["gold_ci_high"], color=color, alpha=0.12, linewidth=0)
            gold_ax.plot(grid, gold[0] + grid * (fit["alpha"] - fit["beta"] * grid), color=color, linestyle="--",
                         linewidth=1)
            if fit["status"] == "reached" and fit["d_star"] is not None and 0 < fit["d_star"] <= d[-1]:
                gold_ax.axvline(fit["d_star"], color=color, linestyle=":", linewidth=1)
                gold_ax.annotate(f"n*={fit['n_star']}", (fit["d_star"], gold.max()), xytext=(3, 4),
                                 textcoords="offset points", fontsize=7, color=color)
            sd = float(curve["proxy_within_prompt_sd"]) or 1.0
            proxy = np.asarray(curve["proxy"], dtype=float)
            base = proxy[0]
            proxy_ax.plot(d, (proxy - base) / sd, marker="o", markersize=3, color=color, linewidth=1.5,
                          label=_label(scope, curve))
            proxy_ax.fill_between(d, np.asarray(curve["proxy_gain_ci_low"]) / sd,
                                  np.asarray(curve["proxy_gain_ci_high"]) / sd, color=color, alpha=0.12, linewidth=0)
        ticks = [n for n in ns if n & (n - 1) == 0 or n == ns[-1]]
        for ax, ylabel in ((gold_ax, "gold score of the best-of-n pick"),
                           (proxy_ax, "proxy gain over n = 1 (within-prompt SDs)")):
            top = ax.secondary_xaxis("top")
            top.set_xticks([float(d[n - 1]) for n in ticks])
            top.set_xticklabels([str(n) for n in ticks], fontsize=7)
            top.set_xlabel("n", fontsize=8)
            ax.set_xlabel("d = sqrt(KL_bon(n))")
            ax.set_ylabel(ylabel)
            ax.grid(True, color="#e5e7eb")
        gold_ax.set_title("gold (dashed: fit d(α − βd))", fontsize=9)
        proxy_ax.set_title("proxy", fontsize=9)
        gold_ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"{title}\n{subtitle}" if subtitle else title, fontsize=10)
        fig.tight_layout()
        write_with(out, lambda p: fig.savefig(p, format="png", metadata={"Software": None}))
    finally:
        plt.close(fig)
    return out
