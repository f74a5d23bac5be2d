"""The ``rmbench`` command. Each command group lives in its own module; heavy imports happen inside commands,
so ``rmbench --help`` and ``rmbench suites list`` answer without importing torch."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from rmbench.cli.output import make_console
from rmbench.errors import RmbenchError

app = typer.Typer(
    name="rmbench",
    help="Reward-model evaluation: declarative suites, one batched scoring engine, honest metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = make_console(stderr=True)


def _register() -> None:
    from rmbench.cli import cache as cache_cmd
    from rmbench.cli import check_engine as check_engine_cmd
    from rmbench.cli import contrast as contrast_cmd
    from rmbench.cli import devtools as devtools_cmd
    from rmbench.cli import reports as reports_cmd
    from rmbench.cli import rescore as rescore_cmd
    from rmbench.cli import results as results_cmd
    from rmbench.cli import run as run_cmd
    from rmbench.cli import scores as scores_cmd
    from rmbench.cli import suites as suites_cmd

    app.command("run")(run_cmd.run)
    app.command("engines")(run_cmd.engines)
    app.command("protocols")(run_cmd.protocols)
    app.command("perturbations")(run_cmd.perturbations)
    app.command("evaluate-scores")(scores_cmd.evaluate_scores)
    app.command("rescore")(rescore_cmd.rescore)
    app.add_typer(suites_cmd.app, name="suites")
    app.add_typer(cache_cmd.app, name="cache")
    reports_cmd.register(app)
    results_cmd.register(app)
    contrast_cmd.register(app)
    check_engine_cmd.register(app)
    devtools_cmd.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: exit 0 done, 1 only for a regression the gate found, 2 for anything else (one clear
    line; RMBENCH_TRACEBACK=1 re-raises unexpected errors), 130 when interrupted."""
    try:
        # Without standalone mode click *returns* a raised typer.Exit's code instead of raising it.
        returned = app(args=argv, standalone_mode=False)
    except RmbenchError as exc:
        # Escaped: messages hold brackets that are not markup ("pip install 'rmbench[vllm]'", "fields[0]").
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print(
            "interrupted: every batch scored before the interrupt is kept in the score cache and no output was "
            "half-written; run the same command again to resume from the cache",
            highlight=False, soft_wrap=True,
        )
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is not None and _is_usage_error(exc):
            # A flag of the wrong type, unknown or missing: one line, like every other bad input (exit 2).
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            err_console.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}", highlight=False, soft_wrap=True)
            return int(code)
        if code is not None and hasattr(exc, "show"):  # e.g. a bare command group: its help is the answer
            exc.show()
            return int(code)
        return _unexpected(exc)
    return returned if isinstance(returned, int) else 0


def _unexpected(exc: Exception) -> int:
    """Exit 1 means "the gate found a regression" and nothing else, so every other failure exits 2 with one line:
    an OS error names its file; anything else is a bug, shown in full with RMBENCH_TRACEBACK=1."""
    import os

    if os.environ.get("RMBENCH_TRACEBACK"):
        raise exc
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        message = f"{where}{exc.strerror or exc}"
    else:
        message = (
            f"unexpected {type(exc).__name__}: {exc} (a bug in rmbench: please report it with the command; "
            "RMBENCH_TRACEBACK=1 shows where it happened)"
        )
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return 2


def _is_usage_error(exc: Exception) -> bool:
    """Click's UsageError, but not NoArgsIsHelpError (a bare command shows its help). By class name: typer vendors
    click, so the classes are not importable from one stable place."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "UsageError" in names and "NoArgsIsHelpError" not in names


if __name__ == "__main__":
    sys.exit(main())
