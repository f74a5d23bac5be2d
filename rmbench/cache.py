"""Content-addressed score cache in SQLite (WAL mode).

Key = (model fingerprint, request key). A score is written as soon as its batch is done, in its own transaction, so a
run killed at any point resumes from the last finished batch, and concurrent runs sharing one cache never corrupt it.
Rows are immutable: INSERT OR IGNORE keeps the first score written, so two processes racing on the same request
cannot leave duplicates.

Faults are named, never tracebacks: a file that is not an SQLite database (garbage, truncated) or a failed write is
a ``CacheError`` that says which file and what to do. A cache the process may not write is opened read-only; it
serves every score it holds, and only a run that needs a new score fails.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rmbench.errors import CacheError
from rmbench.requests import Score

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    model      TEXT NOT NULL,
    request    TEXT NOT NULL,
    value      REAL,
    steps      TEXT,
    n_tokens   INTEGER NOT NULL,
    truncated  INTEGER NOT NULL,
    hidden     BLOB,
    PRIMARY KEY (model, request)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_facts (
    model      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (model, name)
) WITHOUT ROWID;
"""

def _is_read_only_error(exc: sqlite3.OperationalError, path: Path) -> bool:
    """Opening failed because this process may not write the file or its directory (not because it is corrupt)."""
    text = str(exc)
    return ("readonly" in text or "unable to open" in text) and path.exists()


_LOOKUP_CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds


class ScoreCache:
    """Maps (model fingerprint, request key) to a stored ``Score``."""

    def __init__(self, path: Path, timeout_s: float = 60.0):
        self.path = path
        self.read_only = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"score cache {path}: cannot create its directory: {exc.strerror or exc}") from exc
        with self._guard("open"):
            try:
                self._db = self._open_writable(path, timeout_s)
            except sqlite3.OperationalError as exc:
                if not _is_read_only_error(exc, path):
                    raise
                self._db = self._open_read_only(path)
                self.read_only = True

    @staticmethod
    def _open_writable(path: Path, timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    @staticmethod
    def _open_read_only(path: Path) -> sqlite3.Connection:
        """Read-only, and immutable when the directory is not writable either (WAL readers need a -shm file)."""
        for query in ("mode=ro", "immutable=1"):
            db = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute("SELECT COUNT(*) FROM scores").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
        raise sqlite3.OperationalError("attempt to write a readonly database")

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """SQLite and OS faults as one named error with what to do about it."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not a database" in text or "malformed" in text or "no such table" in text:
                raise CacheError(
                    f"score cache {self.path} is corrupt ({text}); move it aside or delete it (its scores are "
                    "recomputed), or pass --cache with another file"
                ) from exc
            if "readonly" in text or "read-only" in text:
                raise CacheError(
                    f"score cache {self.path} is read-only and this run needs to add scores to it; make it writable "
                    "or pass --cache with a writable file"
                ) from exc
            raise CacheError(f"score cache {self.path}: cannot {action}: {text}") from exc
        except OSError as exc:
            raise CacheError(f"score cache {self.path}: cannot {action}: {exc.strerror or exc}") from exc

    def get_many(self, model: str, keys: Sequence[str], *, need_hidden: bool = False) -> dict[str, Score]:
        """Cached scores for ``keys`` (missing keys are absent). With ``need_hidden``, rows without a hidden state
        count as missing, so they get scored again with one."""
        found: dict[str, Score] = {}
        with self._guard("read"):
            self._lookup(model, keys, need_hidden, found)
        return found

    def _lookup(self, model: str, keys: Sequence[str], need_hidden: bool, found: dict[str, Score]) -> None:
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = list(keys[start : start + _LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT request, value, steps, n_tokens, truncated, hidden FROM scores "
                f"WHERE model = ? AND request IN ({marks})",
                [model, *chunk],
            )
            for request, value, steps, n_tokens, truncated, hidden in rows:
                if need_hidden and hidden is None:
                    continue
                found[request] = Score(
                    value=float("nan") if value is None else value,
                    steps=tuple(json.loads(steps)) if steps else (),
                    n_tokens=n_tokens,
                    truncated=bool(truncated),
                    hidden=None if hidden is None else np.frombuffer(hidden, dtype=np.float32),
                )

    def put_many(self, model: str, scored: Iterable[tuple[str, Score]]) -> None:
        """Store scores in one transaction. NaN is stored as NULL (SQLite has no NaN) and read back as NaN."""
        rows = [
            (
                model,
                key,
                score.value if score.value == score.value else None,
                json.dumps(list(score.steps)) if score.steps else None,
                score.n_tokens,
                int(score.truncated),
                None if score.hidden is None else np.asarray(score.hidden, dtype=np.float32).tobytes(),
            )
            for key, score in scored
        ]
        if not rows:
            return
        if self.read_only:
            raise CacheError(
                f"score cache {self.path} is read-only and this run needs {len(rows)} score(s) it does not hold; "
                "make it writable or pass --cache with a writable file"
            )
        with self._guard("write"), self._db:  # one transaction: a batch is cached whole or not at all
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(model, request) DO UPDATE SET hidden = excluded.hidden "
                "WHERE scores.hidden IS NULL AND excluded.hidden IS NOT NULL",
                rows,
            )

    def get_fact(self, model: str, name: str) -> Any:
        """A fact recorded about the engine of fingerprint ``model`` (``info``, ``default_batch_tokens``, ``parity``),
        or None: what results.json takes from a live engine, so a fully cached re-run needs no model."""
        with self._guard("read"):
            try:
                row = self._db.execute(
                    "SELECT value FROM engine_facts WHERE model = ? AND name = ?", (model, name)
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if self.read_only and "no such table" in str(exc):
                    return None
                raise
        return None if row is None else json.loads(row[0])

    def put_fact(self, model: str, name: str, value: Any) -> None:
        """Record a fact (JSON) once: the first value written is kept, so every later run reports the same one.
        A read-only cache records none (the run's results do not depend on it)."""
        if self.read_only:
            return
        with self._guard("write"):
            self._db.execute(
                "INSERT OR IGNORE INTO engine_facts VALUES (?, ?, ?)", (model, name, json.dumps(value))
            )

    def count(self, model: str | None = None) -> int:
        with self._guard("read"):
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM scores WHERE model = ?", (model,)).fetchone()[0])

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity check: an empty list when every page and index is sound."""
        with self._guard("check"):
            rows = [r[0] for r in self._db.execute("PRAGMA integrity_check").fetchall()]
        return [] if rows == ["ok"] else rows

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
