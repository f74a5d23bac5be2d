"""The run configuration and the defaults rmbench shares, in one place.

``RunConfig`` is everything a run needs; ``rmbench run`` and the Python API (``run_suite(RunConfig(...))``) both
validate into it. Options that describe the machine rather than the experiment (cache, data directory, executor,
chunk size, progress bars) may also come from ``RMBENCH_*`` environment variables (``EnvSettings``): an explicit
value wins, then the environment, then the default here, whichever way the run was started. The report commands
(compare, gate, correlate) take their bootstrap and gate defaults from here as well, so no default is written twice.

Seeds: ``ModelSpec.seed`` is the *engine* seed (random baseline, judges; part of the cache key, so changing it
re-scores), ``MetricOptions.seed`` the *bootstrap* seed (CIs, drawn orders; changing it re-scores nothing).

Nothing heavy is imported here: ``rmbench --help`` reads these defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec

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


#: RunConfig fields that the environment may set (the others say what to run, not where).
_FROM_ENVIRONMENT: Final = frozenset(
    {"cache", "data_dir", "chunk_items", "executor", "workers", "ray_address", "show_progress"}
)


class RunConfig(BaseModel):
    """Everything a run needs. The CLI and the Python API both validate into this one model."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(description="Suite name (see `rmbench suites list`) or path to a suite YAML file.")
    model: ModelSpec
    ensemble: list[ModelSpec] = Field(
        default_factory=list, description="More RMs scored alongside `model` (protocols that take several)."
    )
    gold_model: ModelSpec | None = Field(None, description="A gold RM (overoptimization), same engine and cache.")
    out: Path | None = Field(None, description="Run directory; default runs/<suite>/<model-slug>.")
    data_dir: Path | None = Field(None, description="Local data directory standing in for the hub ($RMBENCH_DATA_DIR).")
    cache: Path = Field(DEFAULT_CACHE, description="SQLite score cache shared by runs ($RMBENCH_CACHE).")
    limit: int | None = Field(None, gt=0, description="Keep only the first N items (smoke tests).")
    token_budget: int | None = Field(None, gt=0, description="Padded tokens per batch; default per engine.")
    metric_overrides: dict[str, Any] = Field(
        default_factory=dict, description="MetricOptions fields over the suite's: tie_policy, aggregate, seed..."
    )
    executor: str = Field(DEFAULT_EXECUTOR, description="Where batches are scored: local or ray ($RMBENCH_EXECUTOR).")
    workers: int | None = Field(None, gt=0, description="Ray: engine actors (default one per GPU, else per node).")
    ray_address: str | None = Field(None, description="Ray: cluster to join ('auto'); default $RAY_ADDRESS or local.")
    chunk_items: int = Field(
        CHUNK_ITEMS, gt=0, description="Items scored and evaluated at a time by streaming protocols."
    )
    show_progress: bool = Field(True, description="Progress bars ($RMBENCH_SHOW_PROGRESS).")
    engine_parity: bool = Field(True, description="vLLM runs: check against hf on a canary (rmbench.parity).")

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, data: Any) -> Any:
        """Fields not given explicitly come from ``RMBENCH_*`` variables where set (explicit > environment >
        default), for ``RunConfig(...)`` and ``RunConfig.model_validate`` alike."""
        if not isinstance(data, dict):
            return data
        given = {k: v for k, v in env_settings().given().items() if k in _FROM_ENVIRONMENT}
        return given | data

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        from rmbench.executors import EXECUTORS

        if value not in EXECUTORS:
            raise ValueError(EXECUTORS.unknown_message(value))
        return EXECUTORS.canonical(value)

    @field_validator("metric_overrides")
    @classmethod
    def _valid_metric_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Fail when the config is built, not after the data is loaded: every key must be a valid MetricOptions
        field (the merge with the suite's options happens in the run)."""
        from rmbench.protocols.base import MetricOptions

        try:
            MetricOptions.model_validate(value)
        except ValidationError as error:
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
        return value

    def executor_options(self) -> dict[str, Any]:
        """Options for ``rmbench.executors.create_executor`` (None values are dropped there)."""
        return {"workers": self.workers, "address": self.ray_address}
