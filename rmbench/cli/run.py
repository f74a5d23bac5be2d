"""`rmbench run` (score a model on a suite), `rmbench engines` and `rmbench protocols`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from rmbench.cli.flags import AGGREGATE_HELP, choices, validated
from rmbench.cli.output import make_console
from rmbench.engines import ENGINES
from rmbench.executors import EXECUTORS
from rmbench.modelspec import ModelSpec
from rmbench.registry import Registry
from rmbench.runner.config import CHUNK_ITEMS, DEFAULT_CACHE, DEFAULT_EXECUTOR, ConfigError, RunConfig

console = make_console()


def run(
    suite: str = typer.Option(..., "--suite", "-s", help="Suite name (rmbench suites list) or YAML path."),
    model: list[str] = typer.Option(
        [], "--model", "-m", help="Model path or hub id (empty for baselines). Repeat for an ensemble."
    ),
    gold_model: str | None = typer.Option(None, help="Gold RM for overoptimization curves (path or hub id)."),
    gold_engine: str | None = typer.Option(None, help="Engine for --gold-model (default: --engine)."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        "-e",
        help=f"{' | '.join(ENGINES.names())} (rmbench engines); default {ModelSpec.model_fields['engine'].default}.",
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Model spec YAML; flags override its keys."),
    revision: str | None = typer.Option(None, help="Hub revision of the model."),
    chat_template: str | None = typer.Option(None, help="Chat template override: Jinja string, file, or 'plain'."),
    max_length: int | None = typer.Option(None, help="Max tokens per input (longer ones are truncated, counted)."),
    truncation_side: str | None = typer.Option(None, help=f"{choices(ModelSpec, 'truncation_side')}."),
    dtype: str | None = typer.Option(None, help=f"{choices(ModelSpec, 'dtype')}."),
    padding_side: str | None = typer.Option(None, help=f"{choices(ModelSpec, 'padding_side')}."),
    reward_index: int | None = typer.Option(None, help="Which output logit is the reward."),
    activation: str | None = typer.Option(None, help=f"{choices(ModelSpec, 'activation')}."),
    step_tag: str | None = typer.Option(None, help="Process RMs: step tag token."),
    seed: int | None = typer.Option(
        None, help="Engine seed (random baseline, judges): part of the cache key, so a new one re-scores."
    ),
    bootstrap_seed: int | None = typer.Option(
        None, help="Bootstrap seed (CIs, drawn orders; default: the suite's): a new one re-scores nothing."
    ),
    judge_template: str | None = typer.Option(None, help="Judge engines: mt_bench | verdict_only | a YAML path."),
    reference_model: str | None = typer.Option(None, help="DPO engines: the reference policy (path or hub id)."),
    beta: float | None = typer.Option(None, help="DPO engines: beta (default 0.1)."),
    reference_free: bool | None = typer.Option(
        None, "--reference-free/--with-reference", help="DPO engines: beta * log pi(y|x) alone, no reference."
    ),
    served_model: str | None = typer.Option(
        None, help="Served engines: the model name the server serves (checked against its models list)."
    ),
    tokenizer: str | None = typer.Option(
        None, help="Served engines: tokenizer (path or hub id) that renders the chat template client-side."
    ),
    api_key_env: str | None = typer.Option(
        None, help="Served engines: environment variable holding the API key (the key itself is never recorded)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory (default runs/<suite>/<model>[@revision][-options hash])."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a run directory that holds a different run."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Local data directory standing in for the hub (default $RMBENCH_DATA_DIR)."
    ),
    cache: Path | None = typer.Option(
        None, help=f"Score cache (SQLite); default $RMBENCH_CACHE, else {DEFAULT_CACHE}."
    ),
    limit: int | None = typer.Option(None, help="Only the first N items."),
    subset: str | None = typer.Option(
        None, "--subset", help="Comma-separated subsets to run (e.g. chat,code): sections and overall over what ran."
    ),
    batch_tokens: int | None = typer.Option(None, help="Padded-token budget per batch (default per engine)."),
    chunk_items: int | None = typer.Option(
        None, help=f"Streaming protocols: items per chunk (default $RMBENCH_CHUNK_ITEMS, else {CHUNK_ITEMS})."
    ),
    tie_policy: str | None = typer.Option(None, help="expected | strict (default: the suite's)."),
    aggregate: str | None = typer.Option(None, help=AGGREGATE_HELP),
    executor: str | None = typer.Option(
        None, help=f"{' | '.join(EXECUTORS.names())}: score here, or shard over Ray actors (default $RMBENCH_EXECUTOR, "
        f"else {DEFAULT_EXECUTOR})."
    ),
    workers: int | None = typer.Option(None, help="Ray: engine actors (default one per GPU, else one per node)."),
    ray_address: str | None = typer.Option(
        None, help="Ray: cluster to join, e.g. 'auto' after `ray start --head` (default: $RAY_ADDRESS, else local)."
    ),
    parity: bool = typer.Option(
        True, "--parity/--no-parity", help="vLLM engines: check scores against hf on a canary set first (recorded)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Show progress bars (default $RMBENCH_SHOW_PROGRESS, else on)."
    ),
    perturb: list[str] | None = typer.Option(
        None,
        "--perturb",
        help="Also score the suite under meaning-preserving rewrites: NAME[:both|chosen|rejected][,...] "
        "(rmbench perturbations lists them; replaces the suite's perturbations:; 'none' for none).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of a table."),
) -> None:
    """Score a model on a suite and write a run directory (results.json, scores.parquet, report.md)."""
    from rmbench.atomic import dumps_json
    from rmbench.protocols.base import MetricOptions
    from rmbench.results.markdown import console_table, perturbation_table
    from rmbench.runner.run import run_suite

    spec_flags: dict[str, Any] = {
        "engine": engine,
        "revision": revision,
        "chat_template": chat_template,
        "max_length": max_length,
        "truncation_side": truncation_side,
        "dtype": dtype,
        "padding_side": padding_side,
        "reward_index": reward_index,
        "activation": activation,
        "step_tag": step_tag,
        "seed": seed,
        "judge_template": judge_template,
        "reference_model": reference_model,
        "beta": beta,
        "reference_free": reference_free,
        "server": server_flags(served_model=served_model, tokenizer=tokenizer, api_key_env=api_key_env),
    }
    specs = [_model_spec(spec, spec_flags, name) for name in (model or [""])]
    gold = None
    if gold_model is not None:
        gold_flags = spec_flags | {"engine": gold_engine or engine, "revision": None}
        gold = _model_spec(None, gold_flags, gold_model, {"engine": "--gold-engine", "model": "--gold-model"})
    overrides = _given({"tie_policy": tie_policy, "aggregate": aggregate, "seed": bootstrap_seed})
    validated(MetricOptions, overrides, {"seed": "--bootstrap-seed"})
    run_flags = {
        "out": out,
        "force": force or None,
        "data_dir": data_dir,
        "cache": cache,
        "limit": limit,
        "subsets": [name.strip() for name in subset.split(",") if name.strip()] if subset is not None else None,
        "token_budget": batch_tokens,
        "chunk_items": chunk_items,
        "executor": executor,
        "workers": workers,
        "ray_address": ray_address,
        "show_progress": False if json_out else progress,
        "perturbations": None if perturb is None else [p for p in perturb if p.strip().lower() != "none"],
    }
    config = validated(
        RunConfig,
        {
            "suite": suite,
            "model": specs[0],
            "ensemble": specs[1:],
            "gold_model": gold,
            "metric_overrides": overrides,
            "engine_parity": parity,
            **_given(run_flags),
        },
        {
            "token_budget": "--batch-tokens",
            "show_progress": "--progress",
            "engine_parity": "--parity",
            "perturbations": "--perturb",
        },
    )
    for trusted in [*specs, *([gold] if gold is not None else [])]:
        if trusted.trust_remote_code:
            make_console(stderr=True).print(
                escape(
                    f"notice: model '{trusted.model}' runs Python code from its own repository "
                    "(trust_remote_code: true); results.json records it in model.spec"
                ),
                highlight=False, soft_wrap=True,
            )
    outcome = run_suite(config)
    from rmbench.cli.suites import _data_warnings

    left_out = (outcome.results.get("extra") or {}).get("unsectioned_subsets")
    warnings = _data_warnings(outcome.results["data"])
    if left_out:
        warnings.append(
            f"subset(s) {', '.join(map(str, left_out))} are in no section of metrics.sections, so overall leaves "
            "them out (results.json extra.unsectioned_subsets); add them to a section"
        )
    for warning in warnings:
        make_console(stderr=True).print(f"[yellow]warning[/] {warning}", highlight=False)
    if json_out:
        typer.echo(dumps_json(outcome.results))
        return
    console.print(console_table(outcome.results))
    perturbed = perturbation_table(outcome.results)
    if perturbed is not None:
        console.print(perturbed)
    hits, unique = outcome.execution["cache_hits"], outcome.results["counts"]["unique_requests"]
    console.print(f"cache hits {hits}/{unique} · run directory [bold]{escape(str(outcome.out))}[/]", highlight=False)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The flags given on the command line: a flag left out leaves the field to $RMBENCH_* or its default."""
    return {k: v for k, v in values.items() if v is not None}


def server_flags(**flags: str | None) -> dict[str, Any] | None:
    """The ``server`` options given as flags (None when none was): merged over a spec file's ``server``."""
    given = _given(flags)
    return given or None


def _model_spec(
    spec_file: Path | None, flags: dict[str, Any], model: str, renamed: dict[str, str] | None = None
) -> ModelSpec:
    """The spec from ``--spec`` and the flags (flags win). The flags are validated on their own first, so a bad
    value is reported as the flag that set it (``--dtype``), not as a key of the merged spec."""
    import rmbench.engines  # the registry as it is now (tests and plugins may extend it)

    values = _given(flags)
    validated(ModelSpec, {"model": model, **values}, renamed)
    known = rmbench.engines.ENGINES
    if values.get("engine") is not None and values["engine"] not in known:
        flag = (renamed or {}).get("engine", "--engine")
        raise ConfigError(f"{flag} {values['engine']!r}: {known.unknown_message(values['engine'])}")
    values |= {"model": model} if model else {}
    if spec_file is not None and "server" in values:  # flags override keys of the file's server options
        values["server"] = merged_server(spec_file, values["server"])
    built = ModelSpec.from_yaml(spec_file, **values) if spec_file is not None else ModelSpec.build({"model": "", **values})
    _check_model(built, (renamed or {}).get("model", "--model"))
    return built


def merged_server(spec_file: Path, flags: dict[str, Any]) -> dict[str, Any]:
    """A spec file's ``server`` mapping with the server flags over it."""
    import yaml

    try:
        data = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return flags  # ModelSpec.from_yaml reports the unreadable file
    server = data.get("server") if isinstance(data, dict) else None
    return {**server, **flags} if isinstance(server, dict) else flags


#: Engines that score without a model: a --model given to them would be recorded but never used.
MODEL_FREE = frozenset({"length", "random", "random-prm", "arith-prm"})


def _check_model(spec: ModelSpec, flag: str) -> None:
    """Before any model loads: a model given to an engine that ignores it, and a local path that does not exist
    (which would otherwise be tried as a hub repo id), are errors that say what to do."""
    import os

    if spec.engine in MODEL_FREE and spec.model:
        raise ConfigError(
            f"{flag} {spec.model!r}: engine '{spec.engine}' scores without a model, so it would be ignored (and "
            f"recorded as the spec's model); drop {flag}, or choose a model engine (rmbench engines)"
        )
    model = spec.model
    if "://" in model:  # a served engine's URL
        return
    looks_local = model.startswith(("./", "../", "/", "~", ".\\")) or model in (".", "..") or model.count("/") > 1
    if model and looks_local and not os.path.exists(os.path.expanduser(model)):
        raise ConfigError(
            f"{flag} {model}: no such file or directory (a local model is a directory with config.json and the "
            "weights; a hub model is 'org/name', with --revision to pin it)"
        )


def engines(json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout.")) -> None:
    """List the scoring engines (--engine NAME)."""
    _listing(ENGINES, json_out)


def protocols(json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout.")) -> None:
    """List the scoring protocols (a suite's ``protocol:``)."""
    from rmbench.protocols import PROTOCOLS

    _listing(PROTOCOLS, json_out)


def perturbations(json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout.")) -> None:
    """List the meaning-preserving rewrites (--perturb NAME[:side], a suite's ``perturbations:``)."""
    from rmbench.perturbations import PERTURBATIONS

    _listing(PERTURBATIONS, json_out)


def _listing(registry: Registry[Any], json_out: bool = False) -> None:
    if json_out:
        import json

        rows = [{"name": name, "description": description} for name, description in registry.listing()]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max(map(len, registry.names()))
    for name, description in registry.listing():
        console.print(f"{name:{width}s}  {description}", highlight=False, soft_wrap=True)
