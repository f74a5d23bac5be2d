"""A board is published whole (issue 15): `rmbench leaderboard build` SIGKILLed at its write points (the fsync of
every staged file, and of the directory after the swap) leaves readers the old complete board or the new one,
never a mix of reports, md, csv and html from two builds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._reliability import KILL_AT_FSYNC_ENV, ROOT, pair
from tests.helpers import cli, subprocess_env, write_suite

KILLED = -9


def _visible(directory: Path) -> dict[str, bytes]:
    """What a reader of the published board sees: every file not under a hidden (staging, swapped-out) path."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and p.suffix != ".yaml"
    }


@pytest.fixture(scope="module")
def boards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A board directory holding the old board (2 models), and the bytes of the old and of the new (3 models)."""
    root = tmp_path_factory.mktemp("publish")
    suite = write_suite(root / "suite", [pair(i, chosen="A longer answer." * (1 + i % 3)) for i in range(8)],
                        name="pub")
    for label in ("a", "b", "c"):
        assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length" if label != "b" else "random",
                    "--cache", str(root / "c.sqlite"), "--out", str(root / "runs" / label)]) == 0
    config = "name: board\ntitle: Board\nruns: ['runs/{pattern}']\ncolumns:\n  - {{suite: pub, metric: accuracy}}\n"
    new_dir, board_dir = root / "new", root / "board"
    for directory, pattern in ((new_dir, "*"), (board_dir, "[ab]")):
        directory.mkdir()
        (directory / "runs").symlink_to(root / "runs")
        (directory / "board.yaml").write_text(config.format(pattern=pattern))
        assert cli(["leaderboard", "build", str(directory / "board.yaml")]) == 0
    new, old = _visible(new_dir), _visible(board_dir)
    assert old != new and len([k for k in new if k.startswith("board/reports/")]) == 3
    (board_dir / "board.yaml").write_text(config.format(pattern="*"))  # the next build adds model c
    return board_dir, old, new


#: 3 staged reports, then md, csv and html (fsyncs 1-6), then the directory after the swap (7).
@pytest.mark.parametrize("fsync_call", [1, 5, 7])
def test_killed_board_build_leaves_old_or_new_board(
    boards: tuple[Path, dict[str, bytes], dict[str, bytes]], fsync_call: int
) -> None:
    board_dir, old, new = boards
    before = _visible(board_dir)
    assert before in (old, new)
    command = [sys.executable, "-m", "tests._reliability", "leaderboard", "build", str(board_dir / "board.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=subprocess_env({KILL_AT_FSYNC_ENV: str(fsync_call)}))
    after = _visible(board_dir)
    assert done.returncode == KILLED, done.stderr
    # Killed while staging: the published board untouched; killed after the swap: the new board, whole.
    assert after == (new if fsync_call == 7 else before), f"mixed board after a kill at fsync {fsync_call}"
    # The next build sweeps the killed build's staging directory and publishes the new board.
    assert cli(["leaderboard", "build", str(board_dir / "board.yaml")]) == 0
    assert _visible(board_dir) == new and not [p for p in board_dir.iterdir() if p.name.startswith(".board.")]
    for name in ("board.md", "board.csv", "board.html"):
        (board_dir / name).write_bytes(old[name])  # back to the old board for the next kill point
    shutil.rmtree(board_dir / "board")
    for rel, data in old.items():
        if rel.startswith("board/"):
            (board_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (board_dir / rel).write_bytes(data)
