"""Run directories never collide: default names distinguish revision and options, '.'/'..' never become names,
a directory holding a different run is refused without --force (before any model loads), the same run is idempotent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rmbench.modelspec import ModelSpec
from rmbench.runner.config import RunConfig
from rmbench.runner.outdir import RunDirectoryError, default_out
from rmbench.runner.run import run_suite
from tests.helpers import write_suite

RECORDS = [{"id": f"r{n}", "prompt": "Q?", "chosen": "a longer answer" * (n + 1), "rejected": "short"} for n in range(4)]


def spec(**keys: object) -> ModelSpec:
    return ModelSpec.build({"model": "org/rm", **keys})


def test_default_name_distinguishes_revision_and_options() -> None:
    release, candidate = default_out("s", spec(revision="v1.0")), default_out("s", spec(revision="abc123def4567890"))
    assert release != candidate and release.name == "rm@v1.0" and candidate.name == "rm@abc123def456"
    plain = default_out("s", spec())
    assert plain == Path("runs/s/rm")
    variants = {plain, default_out("s", spec(max_length=512)), default_out("s", spec(), limit=10),
                default_out("s", spec(), metric_overrides={"tie_policy": "strict"}), default_out("s", spec(), subsets=["a"])}
    assert len(variants) == 5
    assert default_out("s", spec(max_length=512)) == default_out("s", spec(max_length=512))  # deterministic


@pytest.mark.parametrize("model", [".", "..", "./", "../"])
def test_dot_and_dotdot_never_become_names(model: str) -> None:
    name = default_out("s", ModelSpec.build({"model": model})).name
    assert name not in ("", ".", "..")
    assert name == Path(model).resolve().name or name == "hf"


def _run(suite: Path, out: Path | None, tmp_path: Path, **config: object) -> Path:
    length = ModelSpec.build({"model": "", "engine": "length"})
    outcome = run_suite(
        RunConfig(suite=str(suite), model=length, out=out, cache=tmp_path / "c.sqlite", show_progress=False,
                  data_dir=tmp_path, **config)  # type: ignore[arg-type]
    )
    return outcome.out


def test_different_run_is_refused_without_force_and_same_run_is_idempotent(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RECORDS, name="mine")
    out = tmp_path / "run"
    first = (_run(suite, out, tmp_path) / "results.json").read_bytes()
    assert (_run(suite, out, tmp_path) / "results.json").read_bytes() == first  # same run again: fine
    with pytest.raises(RunDirectoryError, match=r"holds a different run \(differs in: limit\).*--force"):
        _run(suite, out, tmp_path, limit=2)
    assert (out / "results.json").read_bytes() == first  # untouched
    _run(suite, out, tmp_path, limit=2, force=True)
    assert json.loads((out / "results.json").read_text())["limit"] == 2


def test_non_run_directory_is_refused(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RECORDS, name="mine")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        _run(suite, busy, tmp_path)


def test_default_directories_of_a_smoke_and_a_full_run_differ(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RECORDS, name="mine")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        full, smoke = _run(suite, None, tmp_path), _run(suite, None, tmp_path, limit=2)
    finally:
        os.chdir(cwd)
    assert full != smoke and full.parent == smoke.parent == Path("runs/mine")
