"""`rmbench check-engine`: does an engine (vLLM, or a served endpoint) give the same scores as hf for this model?

A served engine (``--engine vllm-server --model http://HOST:PORT --local-model PATH``) is compared with the same
weights loaded here by hf, which proves the endpoint serves what its name says (rmbench.runner.parity).

Exit codes: 0 within tolerance, 1 not, 2 unusable input (RmbenchError, mapped by rmbench.cli.main).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from rmbench.cli.output import make_console


def register(app: typer.Typer) -> None:
    """Add ``check-engine`` to the main ``rmbench`` app."""
    app.command("check-engine")(check_engine)


def check_engine(
    model: str = typer.Option(..., "--model", "-m", help="Model path or hub id."),
    engine: str = typer.Option(
        "vllm", "--engine", "-e", help="The engine to check (default vllm: the one whose runs are parity-checked)."
    ),
    reference: str = typer.Option("hf", "--reference", help="The engine it must agree with."),
    tolerance: float | None = typer.Option(
        None, help="Largest allowed |score difference| (default by dtype: 1e-4 float32, 1e-2 float16, 5e-2 bfloat16)."
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Model spec YAML; flags override its keys."),
    revision: str | None = typer.Option(None, help="Hub revision of the model."),
    chat_template: str | None = typer.Option(None, help="Chat template override: Jinja string, file, or 'plain'."),
    max_length: int | None = typer.Option(None, help="Max tokens per input (longer ones are truncated)."),
    dtype: str | None = typer.Option(None, help="auto | float32 | bfloat16 | float16."),
    reward_index: int | None = typer.Option(None, help="Which output logit is the reward."),
    activation: str | None = typer.Option(None, help="none | sigmoid | tanh | log_sigmoid."),
    step_tag: str | None = typer.Option(None, help="Process RMs: step tag token (checks per-step scores)."),
    local_model: str | None = typer.Option(
        None, help="Served engines: the same model as a local path or hub id, which the reference engine loads."
    ),
    served_model: str | None = typer.Option(None, help="Served engines: the model name the server serves."),
    tokenizer: str | None = typer.Option(None, help="Served engines: tokenizer that renders requests client-side."),
    api_key_env: str | None = typer.Option(None, help="Served engines: environment variable holding the API key."),
    json_out: bool = typer.Option(False, "--json", help="Print the parity record (as in results.json) as JSON."),
) -> None:
    """Score a built-in canary of chat requests with two engines and compare: exit 1 if they disagree."""
    from rmbench.atomic import dumps_json
    from rmbench.cli.flags import validated
    from rmbench.modelspec import ModelSpec
    from rmbench.runner.parity import check_engines

    flags: dict[str, Any] = {
        "model": model,
        "revision": revision,
        "chat_template": chat_template,
        "max_length": max_length,
        "dtype": dtype,
        "reward_index": reward_index,
        "activation": activation,
        "step_tag": step_tag,
        "engine": engine,
    }
    server = {"served_model": served_model, "tokenizer": tokenizer, "api_key_env": api_key_env}
    if any(v is not None for v in server.values()):
        flags["server"] = {k: v for k, v in server.items() if v is not None}
    values = {k: v for k, v in flags.items() if v is not None}
    validated(ModelSpec, values)  # a bad value is reported as its flag (--dtype), not as a key of the merged spec
    if spec is not None and "server" in values:  # flags override keys of the file's server options
        from rmbench.cli.run import merged_server

        values["server"] = merged_server(spec, values["server"])
    model_spec = ModelSpec.from_yaml(spec, **values) if spec is not None else ModelSpec.build(values)
    from rmbench.cli.run import _check_model
    from rmbench.engines.devices import require_vllm

    _check_model(model_spec.model_copy(update={"engine": reference}), "--model")  # the reference loads the model
    for name in (engine, reference):  # before the reference model loads: a missing vLLM is known now
        require_vllm(model_spec.model_copy(update={"engine": name}))
    report = check_engines(
        model_spec, engines=(reference, engine), tolerance=tolerance, reference_model=local_model
    )
    if json_out:
        typer.echo(dumps_json(report.as_dict()))
    else:
        console = make_console()
        table = Table(title=escape(f"{model}: {engine} vs {reference} ({report.dtype})"))
        for column in ("request", "tokens", reference, engine, "|diff|"):
            table.add_column(column, justify="left" if column == "request" else "right")
        for row in report.requests:
            table.add_row(
                escape(row.label), str(row.n_tokens[0]), _values(row.reference), _values(row.candidate), f"{row.diff:.2e}"
            )
        console.print(table)
        verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
        console.print(
            f"max |diff| {report.max_abs_diff:.2e} vs tolerance {report.tolerance:.0e}: {verdict}", highlight=False
        )
    if not report.passed:
        raise typer.Exit(1)


def _values(values: tuple[float, ...]) -> str:
    """A score, or the step scores of a process RM."""
    return " ".join(f"{v:+.6f}" for v in values)
