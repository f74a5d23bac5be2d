"""The score cache's key reflects the effective max length where the model's own limit binds (issue 15, item 10).

Engines cut inputs to min(spec max_length, the model's positions, its tokenizer's model_max_length); scores cut
there must never be served for the spec's length or the other way round. ``fingerprint_of(spec)`` reads the limits
from config.json / tokenizer_config.json without loading anything and adds the effective length only where it binds,
so every other fingerprint is byte-identical to before; the loaded engine keys by the length it really cuts to, and
the runner refuses a run where the two disagree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rmbench.devtools.tiny_models import STEP_TAG
from rmbench.engines import create_engine
from rmbench.engines import encoding as encoding_module
from rmbench.engines.encoding import chat_template_key, declared_limits, declared_max_length
from rmbench.engines.hf import HFClassifierEngine
from rmbench.engines.hf_prm import HFProcessEngine
from rmbench.engines.lazy import fingerprint_of
from rmbench.modelspec import ModelSpec, engine_fingerprint
from tests._reliability import pair
from tests.helpers import cli, read_json, write_suite

LIMIT = 48  # tokens: far below the spec's default 4096, above the short test pairs


def _with_tokenizer_limit(source: Path, target: Path, limit: int) -> Path:
    """A copy of a tiny model whose tokenizer_config.json declares ``model_max_length = limit``."""
    shutil.copytree(source, target)
    file = target / "tokenizer_config.json"
    config = json.loads(file.read_text())
    file.write_text(json.dumps(config | {"model_max_length": limit}))
    return target


@pytest.fixture(scope="module")
def short_rm(tiny_rm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_tokenizer_limit(tiny_rm, tmp_path_factory.mktemp("short") / "rm", LIMIT)


def _old_key(spec: ModelSpec) -> str:
    """The hf key as rmbench computed it before it read model limits: the spec's max_length only."""
    dtype = "float32"  # CPU, dtype auto
    return engine_fingerprint(spec, HFClassifierEngine.score_fields, dtype=dtype, chat_template=chat_template_key(spec))


def test_a_binding_limit_enters_the_key_and_a_non_binding_one_does_not(tiny_rm: Path, short_rm: Path) -> None:
    free = ModelSpec(model=str(tiny_rm), engine="hf")  # tokenizer and positions 4096 = the spec's 4096
    assert declared_max_length(free) == 4096
    assert fingerprint_of(free) == _old_key(free)  # byte-identical to before: no golden or board key moves
    short = ModelSpec(model=str(short_rm), engine="hf")
    assert declared_limits(str(short_rm), None, False) == {
        "config.max_position_embeddings": 4096, "tokenizer.model_max_length": LIMIT,
    }
    assert fingerprint_of(short) != _old_key(short)
    assert fingerprint_of(short) == engine_fingerprint(
        short, HFClassifierEngine.score_fields, dtype="float32", chat_template=None, effective_max_length=LIMIT
    )
    # A spec asking for no more than the model allows keys exactly as before.
    within = ModelSpec(model=str(short_rm), engine="hf", max_length=LIMIT)
    assert fingerprint_of(within) == _old_key(within)


def test_positions_in_config_json_bind_too(tiny_rm: Path, tmp_path: Path) -> None:
    model = shutil.copytree(tiny_rm, tmp_path / "rm")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 32}))
    assert declared_max_length(ModelSpec(model=str(model), engine="hf")) == 32


@pytest.mark.parametrize("engine", ["hf", "dpo"])
def test_the_loaded_engine_keys_as_its_class_computed_without_loading(short_rm: Path, engine: str) -> None:
    spec = ModelSpec(model=str(short_rm), engine=engine, reference_free=engine == "dpo")
    loaded: Any = create_engine(spec)
    assert (loaded.max_length if engine == "dpo" else loaded.encoder.max_length) == LIMIT
    assert loaded.fingerprint == fingerprint_of(spec)
    assert loaded.fingerprint != fingerprint_of(ModelSpec(model=str(short_rm), engine=engine, max_length=LIMIT,
                                                          reference_free=engine == "dpo"))


def test_the_loaded_prm_keys_as_its_class_computed(tiny_prm: Path, tmp_path: Path) -> None:
    model = _with_tokenizer_limit(tiny_prm, tmp_path / "prm", LIMIT)
    spec = ModelSpec(model=str(model), engine="hf-prm", step_tag=STEP_TAG)
    assert HFProcessEngine.fingerprint_of(spec) == create_engine(spec).fingerprint


def _run(suite: Path, model: Path, cache: Path, out: Path) -> dict[str, Any]:
    args = ["run", "--no-progress", "--suite", str(suite), "--engine", "hf", "--model", str(model), "--cache",
            str(cache), "--out", str(out)]
    assert cli(args) == 0
    return read_json(out / "run.json")


def test_scores_cached_under_the_spec_length_key_are_not_served(
    short_rm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache filled by an rmbench that keyed by the spec's max_length only (as before) is not used: re-scored."""
    suite = write_suite(tmp_path / "suite", [pair(i) for i in range(3)], name="limits")
    with monkeypatch.context() as old:  # as before: no effective length in any key
        old.setattr("rmbench.engines.hf.binding_limit", lambda spec, max_length: {})
        first = _run(suite, short_rm, tmp_path / "c.sqlite", tmp_path / "old")
    assert first["scored"] == 6 and first["cache_hits"] == 0
    again = _run(suite, short_rm, tmp_path / "c.sqlite", tmp_path / "new")
    assert again["cache_hits"] == 0 and again["scored"] == 6  # not served from the old key
    assert read_json(tmp_path / "new" / "results.json")["model"]["fingerprint"] != read_json(
        tmp_path / "old" / "results.json")["model"]["fingerprint"]
    assert _run(suite, short_rm, tmp_path / "c.sqlite", tmp_path / "third")["cache_hits"] == 6  # its own key serves


def test_a_limit_learnt_only_on_loading_refuses_to_write_under_the_wrong_key(
    short_rm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hub model not yet downloaded: its limits are unknown to fingerprint_of. The loaded engine cuts to 48, so its
    key differs and the run stops (exit 2) before writing a score; the next run reads the limit and keys by it."""
    downloaded = {"yet": False}
    real_limits, real_tokenizer = encoding_module.declared_limits, encoding_module.load_tokenizer

    def limits_once_downloaded(*args: Any) -> dict[str, int] | None:
        return real_limits(*args) if downloaded["yet"] else None

    def download(*args: Any, **kwargs: Any) -> Any:
        downloaded["yet"] = True
        return real_tokenizer(*args, **kwargs)

    monkeypatch.setattr(encoding_module, "declared_limits", limits_once_downloaded)
    monkeypatch.setattr(encoding_module, "load_tokenizer", download)
    suite = write_suite(tmp_path / "suite", [pair(i) for i in range(2)], name="limits")
    capsys.readouterr()
    code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "hf", "--model", str(short_rm),
                "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "could not be read before loading" in err and "run again" in err, err
    from rmbench.cache import ScoreCache

    with ScoreCache(tmp_path / "c.sqlite") as cache:
        assert cache.count() == 0  # nothing written under the key without the limit
    assert _run(suite, short_rm, tmp_path / "c.sqlite", tmp_path / "out")["scored"] == 4


def test_hub_models_are_read_from_the_hub_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned hub model's limits come from the local hub cache (offline); one not downloaded has none yet."""
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--org--rm"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert declared_limits("org/rm", None, False) == {"tokenizer.model_max_length": 512}
    assert declared_limits("org/rm", commit, False) == {"tokenizer.model_max_length": 512}
    assert declared_limits("org/not-downloaded", None, False) is None
    assert declared_max_length(ModelSpec(model="org/not-downloaded", engine="hf")) is None


def _config_only(tmp_path: Path, name: str, config: dict[str, Any]) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_config_json_read_directly_agrees_with_autoconfig(
    tiny_rm: Path, tiny_prm: Path, tiny_bert_rm: Path, tmp_path: Path
) -> None:
    """The fingerprint reads positions from config.json itself (no transformers import on a cached re-run) wherever
    that settles them; it must find what AutoConfig (the loaded engine's reading) finds, and fall back to AutoConfig
    where the file names no position key and a class default applies."""
    import transformers

    configs = [
        tiny_rm, tiny_prm, tiny_bert_rm,
        _config_only(tmp_path, "gpt2", {"model_type": "gpt2", "n_positions": 64}),  # GPT-2's own key name
        _config_only(tmp_path, "roberta", {"model_type": "roberta", "max_position_embeddings": 130, "pad_token_id": 1}),
        _config_only(tmp_path, "gpt2-default", {"model_type": "gpt2"}),  # no key in the file: the class default 1024
    ]
    for directory in configs:
        expected = encoding_module.position_limit(transformers.AutoConfig.from_pretrained(directory))
        declared = declared_limits(str(directory), None, False)
        assert declared is not None
        assert [v for k, v in declared.items() if k.startswith("config.")] == [expected[0]], directory
