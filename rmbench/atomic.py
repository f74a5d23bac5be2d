"""Atomic file writes: a reader sees the old file or the complete new one, never a partial file.

Files that belong together (a run directory) are staged: every one is written and fsynced beside its target first,
and only then are they renamed over their targets, back to back, in the order given. A failure or kill while
writing leaves all targets as they were, not a new scores file beside an old results file; the temporaries of a
killed writer are removed by the next write of the same target.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a leftover of a dead one may be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_stale(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by writers that were killed mid-write (their pid, in the name, is
    gone); a live writer's temporary is left alone. Returns what was removed."""
    removed = []
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 :].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def temporary_beside(target: Path) -> Path:
    """A new empty hidden file beside ``target``, named ``.NAME.PID.RANDOM.tmp`` so that a later writer can remove it
    if this process is killed. Created like any file (mode 0o666 less the umask), not 0o600 as ``tempfile.mkstemp``
    would, because it becomes the result file that others read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    while True:
        tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_paths(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield one temporary path per target; when the block succeeds, all are fsynced, then each is renamed over its
    target in order (put the file whose presence means "complete" last). Temporary files are removed on failure."""
    temporaries: list[Path] = []
    try:
        temporaries.extend(temporary_beside(target) for target in targets)
        yield list(temporaries)
        for tmp in temporaries:
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
        for tmp, target in zip(temporaries, targets):
            os.replace(tmp, target)
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed over ``target``."""
    with atomic_paths([target]) as (tmp,):
        yield tmp


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, obj: Any) -> None:
    """Deterministic JSON: sorted keys, fixed indentation, NaN written as null."""
    write_text(target, json_document(obj))


def json_document(obj: Any) -> str:
    """The text ``write_json`` writes: ``dumps_json`` and a final newline."""
    return dumps_json(obj) + "\n"


def write_with(target: Path, writer: Callable[[Path], None]) -> None:
    """Atomically write ``target`` with a function that writes to a given path (e.g. ``DataFrame.to_parquet``)."""
    with atomic_path(target) as tmp:
        writer(tmp)


def dumps_json(obj: Any) -> str:
    return json.dumps(_nan_to_none(obj), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return None
    if isinstance(obj, dict):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _nan_to_none(obj.item())
    return obj
