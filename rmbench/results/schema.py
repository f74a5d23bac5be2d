"""The results.json contract: one pydantic model that every writer goes through and every reader gets back.

The model's JSON dump (``rmbench.results.io.dumps_results``) is byte-for-byte the results.json rmbench has always
written: keys sorted, two-space indentation, and the few keys that were written only when set (a run's parity check,
its ``models`` list, the token counts an imported score file has no tokens for) still left out when unset. Shapes
rmbench owns forbid unknown keys; shapes owned by something else (an engine's ``info()``, a data source's
provenance, a protocol's ``extra``) are typed only as far as rmbench relies on them.

Floats are finite or null: results.json writes NaN as null, so a NaN or infinity in a file is corruption.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from rmbench import RESULTS_SCHEMA_VERSION
from rmbench.metrics.options import MetricOptions

#: A finite float; results.json writes an undefined value as null, never NaN.
Number = Annotated[float, Field(allow_inf_nan=False)]


class _Record(BaseModel):
    """Base of the shapes rmbench owns: unknown keys are an error, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    #: Optional keys written only when given (even as null): writers have always left these out rather than write
    #: null, except ``models``, which a one-model run writes as null and an imported score file leaves out.
    omit_when_unset: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        unset = self.omit_when_unset - self.model_fields_set
        return {k: v for k, v in dumped.items() if not (k in unset and v is None)}


class _Open(BaseModel):
    """Base of shapes another component owns: the keys rmbench reads are typed, the rest kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class SuiteIdentity(_Record):
    """Which suite produced the numbers; two runs compare only when name and version agree."""

    name: str
    version: str
    protocol: str
    content_hash: str = Field(description="sha256 of the suite YAML: a changed file without a version bump shows.")


class DataSource(_Open):
    """Provenance of one data source (local file, hub split, generator, score file...), as the loader recorded it."""

    kind: str


class ModelSpecRecord(_Open):
    """The model spec as given (``ModelSpec.model_dump()``; ``engine: external`` for imported score files)."""

    model: str | None
    engine: str


class ModelRecord(_Record):
    """The scored model: its spec, the fingerprint of everything that changes a score, and the engine's report."""

    omit_when_unset: ClassVar[frozenset[str]] = frozenset({"parity"})

    spec: ModelSpecRecord
    fingerprint: str
    engine: dict[str, Any] = Field(description="The engine's info(): device, dtype, model class...")
    parity: dict[str, Any] | None = Field(None, description="vLLM runs: the check against hf (rmbench.runner.parity).")


class ModelEntry(_Record):
    """One model of a multi-model run (ensemble members, gold model)."""

    label: str
    role: Literal["proxy", "gold"]
    spec: ModelSpecRecord
    fingerprint: str


class EngineOptions(_Record):
    """Options of the scoring engine that a run used (none for imported score files)."""

    omit_when_unset: ClassVar[frozenset[str]] = frozenset({"token_budget"})

    token_budget: int | None = Field(None, description="Padded tokens per batch.")


class MetricRecord(_Record):
    """One number: a metric in one scope with its confidence interval. Null means undefined (no data).

    Tie-aware metrics (pairwise, best-of-n, grid) also say how many comparisons tied in the scope and what the value
    is under the other tie policy (METRICS.md §0); other metrics, and files written before, leave both out."""

    omit_when_unset: ClassVar[frozenset[str]] = frozenset({"ties", "other_policy_value"})

    name: str
    scope: str = Field(description="overall, section:<name> or subset:<name>.")
    value: Number | None
    ci_low: Number | None
    ci_high: Number | None
    n: int = Field(ge=0, description="Items (or prompts) the value is computed over.")
    method: str = Field(description="How the CI was computed.")
    ties: int | None = Field(None, ge=0, description="Tied comparisons in this scope (tie-aware metrics only).")
    other_policy_value: Number | None = Field(
        None, description="The value under the other tie policy (expected <-> strict); equal to value without ties."
    )

    @property
    def label(self) -> str:
        return self.name if self.scope == "overall" else f"{self.name}@{self.scope}"


class Counts(_Record):
    """What was scored: items, requests, tokens, truncation and invalid scores."""

    omit_when_unset: ClassVar[frozenset[str]] = frozenset({"real_tokens", "padded_tokens"})

    items: int
    items_evaluated: int
    requests: int
    unique_requests: int
    real_tokens: int | None = None
    padded_tokens: int | None = None
    padding_efficiency: Number | None
    truncated: int
    invalid_scores: int


class PerturbationRecord(_Record):
    """The suite under one meaning-preserving rewrite, paired item by item with the original (rmbench.runner.perturb)."""

    name: str = Field(description="The rewrite (``rmbench perturbations`` lists them).")
    side: Literal["both", "chosen", "rejected"] = Field(description="Which responses were rewritten.")
    label: str = Field(description="``name`` or ``name:side``: how the run was asked for it.")
    target: Literal["response", "prompt", "order"] = Field(
        description="What the rewrite changes: response texts, the shared prompt, or the order a judge sees them in."
    )
    metric: str = Field(
        description="The per-item outcome that is paired: the protocol's headline, or for an order rewrite its "
        "order-sensitive outcome (a pairwise judge's single_order_accuracy)."
    )
    n: int = Field(ge=0, description="Items evaluated both with and without the rewrite.")
    original: Number = Field(description="The metric on those items, original texts.")
    perturbed: Number = Field(description="The metric on those items, rewritten texts.")
    perturbed_ci_low: Number | None
    perturbed_ci_high: Number | None
    change: Number = Field(description="perturbed − original.")
    change_ci_low: Number | None = Field(description="Paired cluster bootstrap CI of the change.")
    change_ci_high: Number | None
    p_drop: Number | None = Field(description="One-sided bootstrap p-value that the rewrite lowers the metric.")
    flip_rate: Number = Field(description="Share of items whose outcome changed under the rewrite.")
    flips: int = Field(ge=0)
    excluded: dict[str, int] = Field(description="Rewritten items left out, by reason.")
    method: str


class GitState(_Record):
    commit: str | None
    dirty: bool | None


class Environment(_Record):
    """What produced the numbers: Python, package versions, git state (volatile: not part of the numbers)."""

    python: str
    packages: dict[str, str]
    git: GitState


class RunResults(_Record):
    """A run's results.json."""

    omit_when_unset: ClassVar[frozenset[str]] = frozenset({"models", "perturbations"})

    schema_version: Literal[1] = Field(description=f"Version of this contract ({RESULTS_SCHEMA_VERSION}).")
    rmbench_version: str
    suite: SuiteIdentity
    data: list[DataSource]
    model: ModelRecord
    models: list[ModelEntry] | None = Field(
        None, description="Every model of a multi-model run; null for a one-model run, absent for imported scores."
    )
    engine_options: EngineOptions
    metric_options: MetricOptions
    limit: int | None
    metrics: list[MetricRecord]
    excluded: dict[str, int] = Field(description="Items left out, by reason.")
    counts: Counts
    extra: dict[str, Any] = Field(description="Protocol-specific details (grids, curves, fits, notes).")
    environment: Environment
    perturbations: list[PerturbationRecord] | None = Field(
        None, description="The suite under meaning-preserving rewrites (absent when the run had none)."
    )

    @field_validator("metric_options", mode="before")
    @classmethod
    def _every_option_written(cls, value: Any) -> Any:
        """MetricOptions has defaults for the CLI's sake; a results file must still say every option it used."""
        if isinstance(value, dict):
            missing = [name for name in MetricOptions.model_fields if name not in value]
            if missing:  # rmbench.results.io names each as metric_options.<name>
                raise PydanticCustomError(
                    "missing_options", "missing option(s) {names}", {"names": ", ".join(missing), "missing": missing}
                )
        return value

    def metric(self, name: str, scope: str = "overall") -> MetricRecord | None:
        """The metric ``name`` in ``scope``, or None when the run does not report it."""
        return next((m for m in self.metrics if m.name == name and m.scope == scope), None)

    def metric_names(self, scope: str | None = None) -> list[str]:
        """Distinct metric names in file order (of one scope when given)."""
        return list(dict.fromkeys(m.name for m in self.metrics if scope is None or m.scope == scope))


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (what ``rmbench results schema`` prints and docs/results.schema.json holds)."""
    schema = RunResults.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rmbench.dev/schemas/results-v{RESULTS_SCHEMA_VERSION}.json",
        **schema,
    }
