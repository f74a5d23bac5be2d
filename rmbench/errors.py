"""Errors that reach the user. Each names where the bad input is (file, record, field) so it can be fixed."""

from __future__ import annotations


class RmbenchError(Exception):
    """Base class for errors rmbench reports to the user (exit code 2: the input is unusable)."""

    exit_code = 2


class SuiteError(RmbenchError):
    """A suite YAML file is malformed or fails validation."""


class DataError(RmbenchError):
    """A data record is missing a field, has the wrong type, or cannot be loaded."""

    def __init__(self, message: str, *, source: str | None = None, record: object = None, field: str | None = None):
        where = []
        if source is not None:
            where.append(f"file {source}")
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source, self.record, self.field = source, record, field


class ModelSpecError(RmbenchError):
    """A model spec is invalid or the model cannot be loaded as specified."""


class ScoreError(RmbenchError):
    """Scores are unusable (e.g. every score NaN)."""


class CacheError(RmbenchError):
    """The score cache cannot be read or written (corrupt, read-only, on a full disk)."""
