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

from rmbench.modelspec import ModelSpec

# The shared defaults and the environment settings live in rmbench.settings (below the data layer, which reads
# them); re-exported here, where the run, the CLI and the report commands have always found them.
from rmbench.settings import (  # noqa: F401
    BOOTSTRAP_SEED,
    CHUNK_ITEMS,
    CONFIDENCE,
    DEFAULT_CACHE,
    DEFAULT_EXECUTOR,
    ENV_PREFIX,
    GATE_ALPHA,
    GATE_MAX_DROP,
    GATE_MIN_N,
    MIN_RESAMPLES,
    PAIRED_RESAMPLES,
    RUN_RESAMPLES,
    ConfigError,
    EnvSettings,
    env_settings,
)

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
    out: Path | None = Field(
        None, description="Run directory; default runs/<suite>/<model-slug>[@revision][-options hash]."
    )
    force: bool = Field(False, description="Replace a run directory that holds a different run.")
    data_dir: Path | None = Field(None, description="Local data directory standing in for the hub ($RMBENCH_DATA_DIR).")
    cache: Path = Field(DEFAULT_CACHE, description="SQLite score cache shared by runs ($RMBENCH_CACHE).")
    limit: int | None = Field(None, gt=0, description="Keep only the first N items (smoke tests).")
    subsets: list[str] | None = Field(
        None, description="Run only these subsets of the suite (sections and overall over what ran; recorded)."
    )
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
    perturbations: list[str] | None = Field(
        None,
        description="Meaning-preserving rewrites to score beside the original, 'name' or 'name:side' "
        "(rmbench.perturbations); default the suite's `perturbations:`, [] for none.",
    )
    engine_parity: bool = Field(True, description="vLLM runs: check against hf on a canary (rmbench.runner.parity).")

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
        from rmbench.metrics.options import MetricOptions

        try:
            MetricOptions.model_validate(value)
        except ValidationError as error:
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
        return value

    @field_validator("perturbations")
    @classmethod
    def _known_perturbations(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            from rmbench.errors import SuiteError
            from rmbench.perturbations import parse_specs

            try:
                parse_specs(value)  # unknown names and sides fail here, before any data is read
            except SuiteError as error:
                raise ValueError(str(error)) from None
        return value

    def executor_options(self) -> dict[str, Any]:
        """Options for ``rmbench.executors.create_executor`` (None values are dropped there)."""
        return {"workers": self.workers, "address": self.ray_address}
