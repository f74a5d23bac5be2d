"""`rmbench devtools tiny-model`: build the tiny random-weight models the docs and tests use, offline, in seconds."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Developer tools: tiny offline models for trying engines without a download.", no_args_is_help=True)

#: kind -> (builder in rmbench.devtools.tiny_models, the engine that scores it, what it is)
KINDS = {
    "classifier": ("build_tiny_llama_classifier", "hf", "Llama sequence classifier (outcome RM)"),
    "prm": ("build_tiny_llama_token_classifier", "hf-prm", "Llama token classifier read at step tags (process RM)"),
    "causal-lm": ("build_tiny_causal_lm", "dpo", "Llama causal LM (DPO implicit reward, judge plumbing)"),
    "bert": ("build_tiny_bert_classifier", "hf", "BERT sequence classifier (encoder RM)"),
}


def tiny_model(
    out: Path = typer.Argument(..., help="Directory to write the model and tokenizer to."),
    kind: str = typer.Option("classifier", "--kind", help=" | ".join(KINDS) + "."),
    seed: int = typer.Option(0, "--seed", help="Weight seed (the same seed gives the same weights)."),
) -> None:
    """Build a tiny random-weight model (scores are meaningless: for trying engines and pipelines offline)."""
    from rmbench.errors import RmbenchError
    from rmbench.suite_schema import did_you_mean

    if kind not in KINDS:
        raise RmbenchError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}{did_you_mean(kind, KINDS)}")
    import rmbench.devtools.tiny_models as tiny

    builder, engine, what = KINDS[kind]
    path = getattr(tiny, builder)(out, seed=seed)
    typer.echo(f"wrote a tiny {what} to {path}; try: rmbench run --suite math-robustness --engine {engine} --model {path}")


def register(main: typer.Typer) -> None:
    app.command("tiny-model")(tiny_model)
    main.add_typer(app, name="devtools")
