"""`rmbench evaluate-scores`: published score files in, metrics out (no model, no engine)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from rmbench.cli.flags import AGGREGATE_HELP
from rmbench.cli.output import make_console
from rmbench.runner.config import BOOTSTRAP_SEED

if TYPE_CHECKING:
    from rmbench.protocols.base import MetricOptions
    from rmbench.results.schema import RunResults

console = make_console()
err_console = make_console(stderr=True)

#: The shipped suite whose benchmark RewardMATH score files were scored on: an imported run carries its identity
#: (name, version, protocol, content hash), so it compares and ranks beside runs of that suite.
REWARDMATH_SUITE = "rewardmath"


def evaluate_scores(
    path: Path = typer.Argument(..., help="A score file (json or json.gz)."),
    format: str = typer.Option("rewardmath", "--format", help="Score-file format: rewardmath."),
    aggregate: str | None = typer.Option(None, help=AGGREGATE_HELP),
    tie_policy: str | None = typer.Option(
        None, help="expected | strict (default: the rewardmath suite's, strict: RewardMATH counts a tie as wrong)."
    ),
    missing_verdict: str = typer.Option("exclude", help="Pairwise files: exclude | incorrect (upstream's choice)."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--bootstrap-seed", "--seed", help="Bootstrap seed."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write a run directory (for leaderboards)."),
    label: str | None = typer.Option(None, help="Model label in the run directory (default: from the file name)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON object (n, accuracy, mrr, CIs, ...)."),
) -> None:
    """Accuracy and MRR (fractions in [0, 1], 95% bootstrap CIs) from RewardMATH's published score files."""
    from rmbench.atomic import dumps_json
    from rmbench.cli.flags import validated
    from rmbench.errors import RmbenchError
    from rmbench.external.rewardmath import evaluate_score_file
    from rmbench.protocols.base import MetricOptions
    from rmbench.results.markdown import console_table
    from rmbench.suite import load_suite

    if format != "rewardmath":
        raise RmbenchError(f"unknown score-file format '{format}'. Known: rewardmath")
    overrides = {k: v for k, v in {"aggregate": aggregate, "tie_policy": tie_policy}.items() if v is not None}
    # The benchmark's own rule by default (METRICS.md §0), as a run of the rewardmath suite would use it.
    suite_options = load_suite(REWARDMATH_SUITE).metrics.model_dump(include={"tie_policy", "aggregate"})
    options = validated(MetricOptions, suite_options | {"seed": seed} | overrides, {"seed": "--bootstrap-seed"})
    evaluation = evaluate_score_file(path, options, missing_verdict=missing_verdict)  # type: ignore[arg-type]
    for warning in evaluation.info.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

    document = _results_document(path, label, options, evaluation)
    if out is not None:
        from rmbench.results.rundir import write_imported_run

        write_imported_run(out, document, evaluation.result)
    if json_out:
        overall = [m for m in document.metrics if m.scope == "overall"]
        summary: dict[str, object] = {m.name: m.value for m in overall}
        summary |= {f"{m.name}_ci": [m.ci_low, m.ci_high] for m in overall}
        summary.setdefault("mrr", None)
        summary |= {
            "n": int(evaluation.result.per_item.shape[0]),
            "format": evaluation.info.format,
            "score_type": evaluation.info.score_type,
            "tie_policy": options.tie_policy,
            "aggregate": options.aggregate,
            "excluded": evaluation.result.excluded,
            "warnings": evaluation.info.warnings,
        }
        typer.echo(dumps_json(summary))
    else:
        console.print(console_table(document))


def _results_document(path: Path, label: str | None, options: MetricOptions, evaluation: Any) -> RunResults:
    from rmbench.results.io import build_results
    from rmbench.suite import load_suite

    suite = load_suite(REWARDMATH_SUITE)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = label or path.name.split(".")[0].removesuffix("_reward")
    n = int(evaluation.result.per_item.shape[0])
    return build_results(
        suite={"name": suite.name, "version": suite.version, "protocol": suite.protocol,
               "content_hash": suite.content_hash},
        data=[{"kind": "score_file", "path": path.name, "sha256": digest, "records": evaluation.info.n_records}],
        model={"spec": {"model": name, "engine": "external"}, "fingerprint": digest[:16], "engine": {}},
        engine_options={},
        metric_options=options.model_dump(),
        limit=None,
        metrics=[m.as_dict() for m in evaluation.result.metrics],
        excluded=evaluation.result.excluded,
        counts={
            "items": evaluation.info.n_problems,
            "items_evaluated": n,
            "requests": 0,
            "unique_requests": 0,
            "truncated": 0,
            "invalid_scores": sum(evaluation.result.excluded.values()),
            "padding_efficiency": None,
        },
        extra=evaluation.result.extra,
        omit_models=True,
    )
