"""The model spec: everything that changes how a model is read, in one validated object.

Chat template, max length and truncation side, dtype, padding side, which head/label is the reward and its
activation all live here, come from CLI flags or a small YAML file, are recorded in results.json and are part of the
cache key. There is no table of per-model special cases in code: a model that needs something different gets a spec.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rmbench.errors import ModelSpecError

Activation = Literal["none", "sigmoid", "tanh", "log_sigmoid"]
#: What ``dtype: auto`` resolves to on a device, or an explicit choice.
ResolvedDtype = Literal["float32", "bfloat16", "float16"]

#: A step tag turns a classifier engine into its process-RM engine, so ``--step-tag`` alone switches a run to
#: per-step scoring and the engine name (hence the engine class, the results and the cache key) says so.
PROCESS_ENGINES: dict[str, str] = {"hf": "hf-prm", "vllm": "vllm-prm", "vllm-server": "vllm-server-prm"}


class ServerOptions(BaseModel):
    """How to reach a served reward model or API judge (engines vllm-server, remote-reward, openai-judge).

    Identity (``served_model``, the spec's ``revision``), the request shape and the chat template change scores and
    are part of the cache key; the URL and the transport options (concurrency, timeouts, retries) do not. API keys
    are never held here: ``api_key_env`` names the environment variable that holds one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    served_model: str | None = Field(
        None, description="The model name the server serves (checked against its models list where it has one)."
    )
    tokenizer: str | None = Field(
        None, description="Local path or hub id whose tokenizer renders the chat template client-side and counts tokens."
    )
    template: Literal["client", "server"] = Field(
        "client", description="vllm-server: render and tokenize here as the hf engine does, or send chat messages."
    )
    request_format: Literal["openrlhf", "json"] = Field(
        "openrlhf", description='remote-reward: OpenRLHF {"query": [...]} -> {"rewards": [...]}, or declared JSON.'
    )
    body: Any = Field(
        None,
        description='remote-reward json: the request body, where the strings "$queries", "$prompts" and "$responses" '
        "stand for the batch's lists.",
    )
    rewards_path: str = Field(
        "rewards", description="remote-reward json: dotted path to the rewards in the reply ('*' maps over a list)."
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (sent as Bearer).")
    batch_size: int = Field(16, gt=0, description="Requests per HTTP call.")
    concurrency: int = Field(4, gt=0, description="HTTP calls in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one reply.")
    max_retries: int = Field(5, ge=0, description="Retries of a call on 429, 5xx, timeouts and dropped connections.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubled per retry, with full jitter.")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest delay between retries (Retry-After is honoured).")
    input_cost_per_mtok: float | None = Field(None, ge=0, description="Price per million prompt tokens (run.json).")
    output_cost_per_mtok: float | None = Field(None, ge=0, description="Price per million completion tokens.")

    def score_options(self) -> dict[str, Any]:
        """The options that change a score (the rest are transport)."""
        return self.model_dump(include={"served_model", "template", "request_format", "body", "rewards_path"})


class ModelSpec(BaseModel):
    """How to load a reward model and read a score from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Local path or Hugging Face hub id. Empty for baselines that need no model.")
    engine: str = Field("hf", description="Engine name: hf, vllm, length, random, minilm (see `rmbench engines`).")
    revision: str | None = Field(None, description="Hub revision (commit sha, tag or branch). Pin a sha.")
    chat_template: str | None = Field(
        None, description="Override of the tokenizer's chat template: a Jinja string or a path to a .jinja file."
    )
    max_length: int = Field(4096, gt=0, description="Longest input in tokens; longer inputs are truncated and counted.")
    truncation_side: Literal["left", "right"] = Field(
        "left",
        description="Which end to cut. Left keeps the response's end, where a reward head reads its score.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bfloat16 on GPU, float32 on CPU."
    )
    padding_side: Literal["left", "right"] = Field(
        "right", description="Scores do not depend on it: rmbench finds the reward-reading token itself."
    )
    reward_index: int = Field(0, ge=0, description="Which output logit is the reward (multi-label heads).")
    activation: Activation = Field("none", description="Applied to the reward logit; none = raw logit.")
    step_separator: str = Field("\n\n", description="Joins a step-split solution into one response text.")
    step_tag: str | None = Field(
        None, description="Process RMs: the token appended after each step at which a step score is read."
    )
    judge_template: str | None = Field(
        None, description="Judge engines: a shipped template (mt_bench, verdict_only) or a template YAML path."
    )
    reference_model: str | None = Field(None, description="DPO engines: the reference policy, local path or hub id.")
    reference_revision: str | None = Field(None, description="DPO engines: hub revision of reference_model.")
    beta: float = Field(0.1, gt=0, description="DPO engines: the beta of the DPO objective.")
    reference_free: bool = Field(False, description="DPO engines: beta * log pi(y|x) alone, no reference model.")
    length_normalize: bool = Field(False, description="DPO engines: divide by the response's token count.")
    trust_remote_code: bool = False
    seed: int = Field(0, description="Seed for engines with randomness (the random baseline).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    server: ServerOptions | None = Field(
        None, description="Served engines (vllm-server, remote-reward, openai-judge): endpoint identity and transport."
    )

    @model_validator(mode="before")
    @classmethod
    def _process_engine_for_step_tag(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("step_tag") is not None:
            engine = data.get("engine", "hf")
            data = {**data, "engine": PROCESS_ENGINES.get(engine, engine)}
        return data

    def score_options(self) -> dict[str, Any]:
        """Every option but the device. An engine's cache key holds only the ones that change its scores (its
        ``score_fields``, see ``engine_fingerprint``)."""
        return self.model_dump(exclude={"device"})

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> ModelSpec:
        from rmbench.suite import _line_of
        from rmbench.suite_schema import describe_error

        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelSpecError(f"model spec {path}: cannot read: {exc}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ModelSpecError(f"model spec {path}{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(data, dict):
            raise ModelSpecError(f"model spec {path}: expected a mapping of spec keys at the top level")
        try:
            cls.model_validate(data | {"model": data.get("model", "")})  # the file alone, so lines point into it
        except ValidationError as exc:
            lines = []
            for error in exc.errors():
                line = _line_of(node, tuple(error["loc"]))
                lines.append(f"{path}{f':{line}' if line else ''}: {describe_error(error, cls)}")
            raise ModelSpecError("model spec errors:\n" + "\n".join(lines)) from None
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.build(data, origin=str(path))

    @classmethod
    def build(cls, data: dict[str, Any], origin: str = "command line") -> ModelSpec:
        try:
            return cls(**data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelSpecError(f"model spec ({origin}): {problems}") from exc


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys), 16 hex digits."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def directory_digest(path: Path, sample_bytes: int = 1 << 20) -> str:
    """A cheap content digest of a model directory: names, sizes and the first and last MiB of every file.

    Retraining into the same directory changes the weights, so it changes the digest and invalidates cached scores;
    hashing every byte of a 70B checkpoint on each run would not be cheap.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _rmbench_output(p.relative_to(path)))
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(sample_bytes))
            if size > 2 * sample_bytes:
                handle.seek(-sample_bytes, 2)
                digest.update(handle.read(sample_bytes))
    return digest.hexdigest()[:16]


#: Directories inside a model directory that hold caches and rmbench's own outputs (``--model .`` run from inside
#: a checkpoint puts the default cache and runs/ there): never part of the model's identity.
_OUTPUT_DIRS = frozenset({".cache", ".rmbench-cache", "runs"})
_OUTPUT_SUFFIXES = (".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".tmp")


def _rmbench_output(relative: Path) -> bool:
    """Whether a file under a model directory is a cache, a run directory's file or a temporary, not the model."""
    return bool(_OUTPUT_DIRS.intersection(relative.parts[:-1])) or relative.name.endswith(_OUTPUT_SUFFIXES)


def model_fingerprint(spec: ModelSpec, extra: dict[str, Any] | None = None) -> str:
    """A spec-wide key: resolved identity (local content digest or hub id + revision) + every option but the device.
    Engines key their score caches by ``engine_fingerprint`` instead: only what changes their scores, with the
    dtype resolved."""
    identity: dict[str, Any] = {"model": spec.model, "revision": spec.revision}
    local = Path(spec.model) if spec.model else None
    if local is not None and local.exists():
        identity = {"content": directory_digest(local) if local.is_dir() else stable_hash(local.read_bytes().hex())}
    template = spec.chat_template
    if template and _is_file(template):
        template = Path(template).read_text(encoding="utf-8")
    options = spec.score_options() | {"model": None, "revision": None, "chat_template": template}
    return stable_hash({"identity": identity, "options": options, "extra": extra or {}})


def _is_file(text: str) -> bool:
    """Whether a chat-template value names a file (a long Jinja string is not a valid path: OSError)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def resolve_dtype_name(spec: ModelSpec, device_type: str) -> ResolvedDtype:
    """The dtype a model is loaded in on ``device_type`` ("cpu", "cuda", ...): ``auto`` is float32 on CPU and
    bfloat16 on an accelerator. The one rule every engine loads by and fingerprints with, so that an fp32 CPU run
    and a bf16 GPU run of one spec never share cached scores."""
    if spec.dtype != "auto":
        return spec.dtype
    return "float32" if device_type == "cpu" else "bfloat16"


def model_identity(model: str, revision: str | None) -> dict[str, Any]:
    """What a model's weights and tokenizer are: a local path's content digest (not its name, so a moved
    directory keeps its cache and a retrained one loses it), else the hub id and revision."""
    local = Path(model) if model else None
    if local is not None and local.exists():
        return {"content": directory_digest(local) if local.is_dir() else stable_hash(local.read_bytes().hex())}
    return {"model": model, "revision": revision}


def engine_fingerprint(spec: ModelSpec, fields: tuple[str, ...], *, with_model: bool = True, **resolved: Any) -> str:
    """An engine's cache key: its name, the model's identity (unless ``with_model`` is off: an engine that reads no
    ``spec.model``), the spec ``fields`` that change its scores, and ``resolved`` values (the loaded dtype, a chat
    template's text hash, a reference model's identity, ...).

    Engine names are never shared: hf and vLLM run different kernels (``rmbench check-engine`` measures by how
    much), so a score cached by one must not stand in for the other's."""
    identity = model_identity(spec.model, spec.revision) if with_model and spec.model else None
    options = {name: getattr(spec, name) for name in sorted(fields)}
    return stable_hash({"engine": spec.engine, "identity": identity, "options": options, "resolved": resolved})
