"""Output for pipes and logs: nothing cut at 80 columns, --json listings, `suites show` valid YAML, progress as log
lines when stderr is not a terminal, and --no-progress silencing transformers' bars too."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rmbench.cli import app
from rmbench.cli.output import make_console
from rmbench.scoring import LogProgress
from rmbench.suite import list_suites, load_suite, parse_suite

runner = CliRunner()


def test_suites_list_is_not_cut_in_a_pipe() -> None:
    lines = runner.invoke(app, ["suites", "list"]).output.splitlines()
    assert lines[0].split("\t") == ["name", "version", "protocol", "sources", "description"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    for suite in list_suites():  # one tab-separated line per suite, the description's first line whole
        assert rows[suite.name][1:3] == [suite.version, suite.protocol]
        assert rows[suite.name][4] == " ".join((suite.description or "").split("\n")[0].split())
    assert "…" not in "\n".join(lines)


def test_long_lines_are_not_wrapped_in_a_pipe() -> None:
    buffer = io.StringIO()
    console = make_console()
    console.file = buffer
    console.print("pair_accuracy_consistency " * 20, highlight=False)
    assert buffer.getvalue().count("\n") == 1


@pytest.mark.parametrize("command", [["suites", "list"], ["engines"], ["protocols"]])
def test_json_listings(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all("name" in row and "description" in row for row in rows)


def test_suites_show_is_valid_yaml_that_loads_as_the_same_suite() -> None:
    for name in ("rm-bench", "rewardbench2", "hh-rlhf-harmless"):
        text = runner.invoke(app, ["suites", "show", name]).stdout
        assert yaml.safe_load(text)["name"] == name
        assert parse_suite(text, "shown").content_hash == load_suite(name).content_hash
        shown = json.loads(runner.invoke(app, ["suites", "show", name, "--json"]).stdout)
        assert shown["content_hash"] == load_suite(name).content_hash


def test_log_progress_lines_have_done_total_rate_and_eta() -> None:
    now = [0.0]
    stream = io.StringIO()
    with LogProgress(interval=10, stream=stream, clock=lambda: now[0]) as progress:
        task = progress.add_task("scoring", total=100)
        for _ in range(10):
            now[0] += 3
            progress.advance(task, 10)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("scoring: 0/100 (0%)")
    assert len(lines) == 4  # at the start, after >= 10 s (at 12 and 24 s), and at the end
    assert "40/100 (40%) · 3.3/s" in lines[1] and "ETA 0:00:18" in lines[1]
    assert lines[-1].startswith("scoring: 100/100 (100%)")


def test_transformers_loading_bar_is_silenced(tiny_rm: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from transformers.utils import logging as hf_logging

    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec

    hf_logging.enable_progress_bar()  # as in a fresh process, before rmbench creates its first engine
    capfd.readouterr()
    create_engine(ModelSpec(model=str(tiny_rm)))
    assert "Loading weights" not in capfd.readouterr().err
