"""A run directory is published whole (issue 15, item 5): built aside and swapped in, so a reader never sees an
earlier run's results.json beside a new items.parquet; a swap killed half-way is rolled back by the next publish;
a directory holding other files is never swapped away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rmbench.atomic
from rmbench.atomic import publish_directory, recover_directory
from rmbench.results.rundir import PLOTS, RESULTS, is_run_file


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def _writer(files: dict[str, str]):  # type: ignore[no-untyped-def]
    def build(staging: Path) -> None:
        for name, text in files.items():
            (staging / name).write_text(text)

    return build


OLD = {"items.parquet": "old items", "overoptimization.png": "old plot", RESULTS: "old results"}
NEW = {"items.parquet": "new items", "scores.parquet": "new scores", RESULTS: "new results"}


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_the_new_directory_replaces_the_old_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(rmbench.atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "run"
    publish_directory(out, _writer(OLD), own=is_run_file, last=RESULTS)
    assert _files(out) == OLD
    publish_directory(out, _writer(NEW), own=is_run_file, last=RESULTS)
    assert _files(out) == NEW  # the earlier run's plot went with it: nothing of the old run stays beside the new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or swapped-out copy left


def test_a_failing_build_leaves_the_published_directory_untouched(tmp_path: Path) -> None:
    out = tmp_path / "run"
    publish_directory(out, _writer(OLD), own=is_run_file, last=RESULTS)

    def broken(staging: Path) -> None:
        (staging / "items.parquet").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish_directory(out, broken, own=is_run_file, last=RESULTS)
    assert _files(out) == OLD and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_swap_killed_between_its_renames_is_rolled_back(tmp_path: Path) -> None:
    """Without RENAME_EXCHANGE the swap is two renames; killed between them, the run directory is missing, the old
    copy aside and the complete new one staged. The next publish (or ``recover_directory``) restores the old."""
    out, pid = tmp_path / "run", _dead_pid()
    old, new = tmp_path / f".run.{pid}.0badc0de.old", tmp_path / f".run.{pid}.0ddba11.new"
    for directory, files in ((old, OLD), (new, NEW)):
        directory.mkdir()
        _writer(files)(directory)
    stray = tmp_path / f".run.{pid}.5ca1ab1e.new"  # a build killed while writing: incomplete, swept
    stray.mkdir()
    (stray / "items.parquet").write_text("half")
    other = tmp_path / f".run.v2.{pid}.0badc0de.old"  # another target's ("run.v2"): not this publish's business

    other.mkdir()
    assert sorted(p.name for p in recover_directory(out)) == sorted([old.name, new.name, stray.name])
    assert _files(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", other.name])


def test_a_live_writers_staging_is_left_alone(tmp_path: Path) -> None:
    import os

    live = tmp_path / f".run.{os.getppid()}.0badc0de.new"
    live.mkdir()
    publish_directory(tmp_path / "run", _writer(NEW), own=is_run_file, last=RESULTS)
    assert live.is_dir()


def test_a_directory_with_other_files_is_never_swapped_away(tmp_path: Path) -> None:
    """``--out`` at a user's folder (``--force``): their files stay; the run's own files are replaced, results.json
    removed first and renamed in last, and the earlier run's plot removed."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    publish_directory(out, _writer(OLD), own=is_run_file, last=RESULTS)
    publish_directory(out, _writer(NEW), own=is_run_file, last=RESULTS)
    assert _files(out) == NEW | {"notes.txt": "mine"}


def test_a_symlinked_run_directory_stays_a_link(tmp_path: Path) -> None:
    real, link = tmp_path / "real", tmp_path / "link"
    publish_directory(real, _writer(OLD), own=is_run_file, last=RESULTS)
    link.symlink_to(real)
    publish_directory(link, _writer(NEW), own=is_run_file, last=RESULTS)
    assert link.is_symlink() and _files(real) == NEW


def test_run_directory_file_names_match_the_plot_writers() -> None:
    from rmbench.report.curves import CURVES_PNG
    from rmbench.report.perturbations import PERTURBATIONS_PNG

    assert set(PLOTS) == {CURVES_PNG, PERTURBATIONS_PNG}
    assert is_run_file(".results.json.123.0badc0de.tmp") and not is_run_file("notes.txt")


def test_the_working_directory_is_published_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--out .``: the directory the process stands in is never swapped away (and deleted) under it."""
    out = tmp_path / "here"
    publish_directory(out, _writer(OLD), own=is_run_file, last=RESULTS)
    monkeypatch.chdir(out)
    publish_directory(Path("."), _writer(NEW), own=is_run_file, last=RESULTS)
    assert Path.cwd() == out.resolve() and _files(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]
