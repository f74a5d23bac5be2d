"""The defaults rmbench shares and the ``RMBENCH_*`` environment settings, below everything that uses them.

Options that describe the machine rather than the experiment (cache, data directory, executor, chunk size,
progress bars, suite directories) may come from ``RMBENCH_*`` variables (``EnvSettings``). Data sources and the
suite registry read them here; the run configuration (``rmbench.runner.config.RunConfig``) layers explicit values over
them. Nothing heavy is imported here: ``rmbench --help`` reads these defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rmbench.errors import RmbenchError

# --- defaults shared by the run, the CLI and the report commands --------------------------------------------------

DEFAULT_CACHE: Final = Path(".rmbench-cache/scores.sqlite")
#: Items per chunk of a streamed run: a chunk's texts, requests and scores take tens of MB, and scoring batches are
#: packed from 4,096-request chunks anyway, so larger chunks would buy nothing.
CHUNK_ITEMS: Final = 10_000
DEFAULT_EXECUTOR: Final = "local"
#: METRICS.md §9: no bootstrap CI from fewer resamples.
MIN_RESAMPLES: Final = 1000
#: A run's metric CIs (``MetricOptions.bootstrap_resamples``).
RUN_RESAMPLES: Final = 1000
#: compare, gate and correlate: a p-value reads the tail of the resampled distribution, so it takes more draws.
PAIRED_RESAMPLES: Final = 2000
CONFIDENCE: Final = 0.95
BOOTSTRAP_SEED: Final = 0
#: The regression gate (METRICS.md §9): a drop up to GATE_MAX_DROP never fails; a larger one fails when significant.
GATE_MAX_DROP: Final = 0.01
GATE_ALPHA: Final = 0.05
#: METRICS.md §9, small samples: a gated scope with fewer items is "insufficient data", neither pass nor fail.
GATE_MIN_N: Final = 30

ENV_PREFIX: Final = "RMBENCH_"


class ConfigError(RmbenchError):
    """A configuration value (flag, environment variable or ``RunConfig`` field) is invalid (exit code 2)."""


class EnvSettings(BaseSettings):
    """The ``RMBENCH_*`` environment variables, one per field (``RMBENCH_CACHE``, ``RMBENCH_DATA_DIR``...).

    None means "not set": the default then comes from ``RunConfig``, so it is written once.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True, frozen=True)

    cache: Path | None = Field(default=None, description="SQLite score cache shared by runs.")
    data_dir: Path | None = Field(default=None, description="Local data directory standing in for the hub.")
    chunk_items: int | None = Field(default=None, gt=0, description="Items per chunk of a streamed run.")
    executor: str | None = Field(default=None, description="Where batches are scored: local or ray.")
    workers: int | None = Field(default=None, gt=0, description="Ray: engine actors.")
    ray_address: str | None = Field(default=None, description="Ray: cluster to join ('auto').")
    show_progress: bool | None = Field(default=None, description="Progress bars (0 in CI logs).")
    suites_path: str | None = Field(default=None, description="More suite directories, os.pathsep-separated.")
    plugins: str | None = Field(
        default=None,
        description="Directories searched for user transforms (``transform: file.py:function``), os.pathsep-separated.",
    )

    def given(self) -> dict[str, Any]:
        """The variables that are set, by field name."""
        return self.model_dump(exclude_none=True)


def env_settings() -> EnvSettings:
    """The ``RMBENCH_*`` variables as they are now (read on every call: tests and long-lived processes change them);
    an invalid one is a ``ConfigError`` naming the variable."""
    try:
        return EnvSettings()
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}={e['input']!r}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"environment: {problems}") from None
