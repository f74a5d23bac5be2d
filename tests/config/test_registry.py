"""rmbench.registry: lazy entries, aliases, tags, 'did you mean' errors of the caller's class, and the shipped
registries (every name the suites and the CLI use resolves; listing them imports nothing heavy)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from rmbench.errors import ModelSpecError, SuiteError
from rmbench.registry import Registry


class _Unknown(Exception):
    pass


@pytest.fixture
def lazy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module that is not imported yet (its name is unique to this test)."""
    name = f"rmbench_lazy_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text('"""A lazily registered thing."""\nVALUE = {"loaded": True}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_lazy_entry_is_imported_on_first_get_only(lazy_module: str) -> None:
    registry: Registry[dict[str, bool]] = Registry("widget", _Unknown)
    registry.lazy("thing", f"{lazy_module}:VALUE", "A thing.")
    assert "thing" in registry and registry.names() == ["thing"]
    assert registry.listing() == [("thing", "A thing.")]
    assert lazy_module not in sys.modules  # registering, listing and `in` import nothing
    assert registry.get("thing") == {"loaded": True}
    assert lazy_module in sys.modules


def test_module_target_without_attribute_is_the_module(lazy_module: str) -> None:
    registry: Registry[object] = Registry("widget", _Unknown)
    registry.lazy("mod", lazy_module, "The module itself.")
    assert registry.get("mod") is importlib.import_module(lazy_module)


def test_aliases_resolve_to_the_canonical_entry() -> None:
    registry: Registry[int] = Registry("widget", _Unknown)
    registry.add("seven", 7, "Seven.", aliases=("7", "sept"))
    assert registry.get("sept") == 7 and registry.canonical("7") == "seven"
    assert list(registry) == ["seven"] and len(registry) == 1  # iteration: canonical names only
    assert registry.listing() == [("seven", "Seven. (alias: 7, sept)")]


def test_unknown_name_raises_the_callers_error_with_did_you_mean() -> None:
    registry: Registry[int] = Registry("widget", _Unknown)
    registry.add("length", 1, "One.")
    registry.add("random", 2, "Two.", aliases=("noise",))
    with pytest.raises(_Unknown, match=r"unknown widget 'lenght'; known: length, random; did you mean 'length'\?"):
        registry.get("lenght")
    with pytest.raises(_Unknown, match=r"did you mean 'noise'"):  # aliases are suggested too
        registry.get("nois")
    with pytest.raises(_Unknown) as error:
        registry.get("zzzzzz")
    assert "did you mean" not in str(error.value)


def test_decorator_registers_with_docstring_description_and_tags() -> None:
    registry: Registry[object] = Registry("transform", _Unknown)

    @registry.register("upper", tags={"one_to_one"})
    def upper(text: str) -> str:
        """Upper-case every record.

        More detail that a listing does not show."""
        return text.upper()

    assert registry.get("upper") is upper
    assert registry.listing() == [("upper", "Upper-case every record.")]
    assert registry.tagged("one_to_one") == {"upper"} and registry.tagged("other") == frozenset()


def test_a_name_or_alias_is_registered_once() -> None:
    registry: Registry[int] = Registry("widget", _Unknown)
    registry.add("a", 1, "A.", aliases=("b",))
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("b", 2, "B.")


def test_extended_copy_leaves_the_original_alone() -> None:
    registry: Registry[int] = Registry("widget", _Unknown)
    registry.add("a", 1, "A.")
    bigger = registry.extended({"json": "json"})
    assert "json" in bigger and "json" not in registry
    assert bigger.get("a") == 1 and bigger.error is _Unknown


# --- the shipped registries ---------------------------------------------------------------------------------------


def _registries() -> list[tuple[Registry[object], type[Exception]]]:
    from rmbench.data.builders import BUILDERS
    from rmbench.engines import ENGINES
    from rmbench.executors import EXECUTORS
    from rmbench.generators import GENERATORS
    from rmbench.protocols import PROTOCOLS
    from rmbench.transforms import TRANSFORMS

    return [
        (PROTOCOLS, SuiteError), (ENGINES, ModelSpecError), (EXECUTORS, ModelSpecError),
        (GENERATORS, SuiteError), (TRANSFORMS, SuiteError), (BUILDERS, SuiteError),
    ]  # fmt: skip


def test_shipped_names_are_kept_and_every_lazy_target_exists() -> None:
    from rmbench.engines import ENGINES
    from rmbench.protocols import PROTOCOLS
    from rmbench.transforms import ONE_TO_ONE, WHOLE_SOURCE

    assert set(ENGINES) == {
        "hf", "hf-prm", "vllm", "vllm-prm", "length", "random", "minilm", "dpo", "dpo-vllm", "judge", "judge-vllm",
        "vllm-server", "vllm-server-prm", "remote-reward", "openai-judge",
        "random-prm", "arith-prm",
    }  # fmt: skip
    assert ENGINES.entry("hf-prm").target == "rmbench.engines.hf_prm:HFProcessEngine"
    assert ENGINES.entry("vllm-prm").target == "rmbench.engines.vllm_prm:VLLMProcessEngine"
    assert set(PROTOCOLS) >= {"pairwise", "best_of_n", "ties", "rmbench_grid", "probing", "contrast"}
    assert ONE_TO_ONE == {"hh_rlhf", "rmb_pairwise", "rmb_bon", "processbench"} and WHOLE_SOURCE == {"alpacaeval_bon"}
    for registry, _ in _registries():
        for name in registry.names():
            entry = registry.entry(name)
            assert entry.description, f"{registry.kind} '{name}' has no description"
            if entry.target is not None:  # without importing it (engines would import torch)
                assert importlib.util.find_spec(entry.target.partition(":")[0]) is not None, entry.target


@pytest.mark.parametrize("index", range(6))
def test_shipped_registries_raise_their_callers_error(index: int) -> None:
    registry, error = _registries()[index]
    with pytest.raises(error, match=f"unknown {registry.kind} 'nope'"):
        registry.get("nope")


def test_suite_names_resolve_through_the_registries() -> None:
    """Every protocol, transform and generator a shipped suite names is registered (and loads)."""
    from rmbench.generators import get_generator
    from rmbench.protocols import get_protocol
    from rmbench.suite import list_suites
    from rmbench.transforms import get_transform

    for suite in list_suites():
        assert get_protocol(suite.protocol) is not None
        for source in suite.sources:
            if source.transform is not None:
                assert callable(get_transform(source.transform))
            if source.generator is not None:
                assert hasattr(get_generator(source.generator.name), "Params")


def test_transforms_and_transforms_bon_do_not_import_each_other() -> None:
    """transforms_bon imports transforms; transforms names transforms_bon only as a lazy string."""
    code = (
        "import sys\n"
        "import rmbench.transforms as t\n"
        "assert 'rmbench.transforms_bon' not in sys.modules\n"
        "pools = list(t.get_transform('alpacaeval_bon')([]))\n"
        "assert 'rmbench.transforms_bon' in sys.modules and pools == []\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_engines_and_protocols_commands_list_names_with_descriptions_without_torch() -> None:
    code = (
        "import sys\n"
        "from rmbench.cli import main\n"
        "assert main(['engines']) == 0\n"
        "assert main(['protocols']) == 0\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    listed = [line for line in done.stdout.splitlines() if line.strip() and not line.startswith("HEAVY")]
    lines = {line.split()[0]: line for line in listed}
    assert {"hf-prm", "judge-vllm", "length", "pairwise", "best_of_n"} <= set(lines)
    assert "Baseline: response length" in lines["length"]
    assert "rmbench.engines" not in done.stdout  # descriptions, not class paths
