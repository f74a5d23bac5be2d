"""Atomic file writes: a reader sees the old file or the complete new one, never a partial file.

A directory whose files belong together (a run directory) is published whole (``publish_directory``): built aside
as a hidden sibling, every file fsynced, then swapped with the published one in one step (``renameat2`` with
``RENAME_EXCHANGE`` on Linux; elsewhere two renames, and a swap killed between them is rolled back by the next
publish), the parent fsynced, the old copy deleted. A reader sees the old directory or the new one, never a mix.
The temporaries of a killed writer are removed by the next write of the same target.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import secrets
import shutil
import sys
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


# --- whole directories ----------------------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make the renames inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _aside(target: Path, kind: str) -> Path:
    """A hidden sibling of ``target``: ``.NAME.PID.RANDOM.KIND`` (``new``: being built; ``old``: swapped out)."""
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def _leftovers(target: Path) -> list[tuple[Path, str]]:
    """(path, kind) of the staging (``new``) and swapped-out (``old``) directories of dead writers of ``target``."""
    found = []
    for path in target.parent.glob(f".{target.name}.*.*.*"):
        parts = path.name[len(target.name) + 2 :].split(".")  # PID.RANDOM.KIND (a longer name is another target's)
        if len(parts) != 3:
            continue
        pid, _, kind = parts
        if kind in ("new", "old") and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.append((path, kind))
    return found


def recover_directory(target: Path) -> list[Path]:
    """Repair what a writer killed while publishing ``target`` left: a swap killed between its two renames (target
    gone, the old copy aside) is rolled back, so the old directory is published again; staging and swapped-out
    copies are deleted. Returns what was removed or restored."""
    touched = []
    leftovers = _leftovers(target)
    if not target.exists():
        old = next((path for path, kind in leftovers if kind == "old"), None)
        if old is not None:
            os.rename(old, target)
            fsync_dir(target.parent)
            touched.append(old)
            leftovers = [(path, kind) for path, kind in leftovers if path != old]
    for path, _ in leftovers:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        touched.append(path)
    return touched


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # an old C library
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):  # a file system without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(root)


def publish_directory(
    target: Path, build: Callable[[Path], object], *, own: Callable[[str], bool], last: str
) -> None:
    """Build a directory with ``build(staging)`` beside ``target`` and publish it whole in place of ``target``.

    ``own(name)`` says which entries of an existing ``target`` belong to what is published. When every entry does,
    the directories are swapped (a reader sees the old or the new one, never a mix) and the old one deleted. A
    directory that also holds other files (``--out`` pointed at a user's folder) is never swapped away: its own
    files are replaced one by one, ``last`` (the file whose presence means "complete") removed first and renamed
    in last, so no complete-looking mix exists at any moment, and the other files stay; so is the working directory
    (``--out .``). A failure while building leaves ``target`` untouched."""
    target = target.resolve()  # a symlink stays the user's (its directory is published); '.' gets a real name
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(target))
    staging = _aside(target, "new")
    staging.mkdir()
    try:
        build(staging)
        _fsync_tree(staging)
        if target.exists() or not _rename_new(staging, target):
            # The working directory (or one holding it) is never swapped: the process would be left inside the copy
            # that is deleted.
            if all(own(entry.name) for entry in target.iterdir()) and not Path.cwd().is_relative_to(target):
                _swap(staging, target)
            else:
                _replace_own(staging, target, own, last)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _rename_new(staging: Path, target: Path) -> bool:
    """Rename ``staging`` to a ``target`` that did not exist; False when a concurrent writer published it first."""
    try:
        os.rename(staging, target)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def _swap(staging: Path, target: Path) -> None:
    """Publish ``staging`` as ``target``; afterwards ``staging`` holds (or is) nothing that is published."""
    if _exchange(staging, target):
        return  # staging now holds the old directory, deleted by the caller
    old = _aside(target, "old")
    os.rename(target, old)  # killed here: the next publish (recover_directory) renames old back
    os.rename(staging, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _replace_own(staging: Path, target: Path, own: Callable[[str], bool], last: str) -> None:
    (target / last).unlink(missing_ok=True)
    fsync_dir(target)
    for entry in target.iterdir():  # the earlier publication's files that this one does not have
        if own(entry.name) and entry.is_file() and not (staging / entry.name).exists():
            entry.unlink()
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == last):
        os.replace(entry, target / entry.name)
    fsync_dir(target)


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
