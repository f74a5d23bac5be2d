"""The suites shipped in suites/: all validate, pin their hub data, and load from ../shared/data where it has them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rmbench.data import load_items
from rmbench.protocols import get_protocol
from rmbench.suite import SUITES_DIR, list_suites, load_suite
from tests._shared import SHARED_DATA, shared_path

SHIPPED = sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))
SHA = re.compile(r"^[0-9a-f]{40}$")


def test_the_expected_suites_ship() -> None:
    assert {
        "rewardbench",
        "rewardbench2",
        "rewardbench2-ties",
        "rm-bench",
        "rm-bench-chat",
        "rm-bench-code",
        "rm-bench-safety",
        "rm-bench-math",
        "rewardmath",
        "hh-rlhf-harmless",
        "math-robustness",
    } <= set(SHIPPED)
    assert [s.name for s in list_suites()] == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suite_validates_and_pins_its_hub_data(name: str) -> None:
    suite = load_suite(name)
    assert suite.description and suite.version
    text = (SUITES_DIR / f"{name}.yaml").read_text()
    for source in suite.sources:
        if source.hub is not None and not SHA.match(source.hub.revision):
            # an unpinned hub revision says why (no public sha exists) or is marked as still to do
            explained = "Unpinned on the hub:" in text or "TODO pin: sha not reachable offline" in text
            assert explained, f"{name}: unpinned revision {source.hub.revision}"
    assert get_protocol(suite.protocol).item_type is not None


def test_rewardbench_keeps_the_official_reasoning_weights() -> None:
    sections = load_suite("rewardbench").metrics.sections
    assert sections is not None and list(sections) == ["Chat", "Chat Hard", "Safety", "Reasoning"]
    assert sum(len(s.subsets) for s in sections.values()) == 23
    weights = sections["Reasoning"].weights
    assert weights is not None and weights["math-prm"] == 984 == 6 * weights["hep-python"]


def _load(name: str, **kwargs):
    return load_items(load_suite(name), data_dir=SHARED_DATA, **kwargs)


def _requests_ok(name: str, items: list) -> None:
    assert get_protocol(load_suite(name).protocol).requests(items)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("rm-bench-chat", {"chat": 129}),
        ("rm-bench-code", {"code": 228}),
        ("rm-bench-safety", {"safety-refuse": 284, "safety-response": 157}),
    ],
)
def test_rm_bench_domains_load(name: str, counts: dict[str, int]) -> None:
    shared_path("rm_bench/chat_filtered.json")
    data = _load(name)
    assert Counter(item.subset for item in data.items) == counts
    for item in data.items:
        assert len(item.chosen) == len(item.rejected) == 3
        assert item.id.startswith(f"{item.subset}:")
    _requests_ok(name, data.items)


@pytest.mark.shared_data
def test_rm_bench_full_suite_loads_its_four_local_domains() -> None:
    shared_path("rm_bench/chat_filtered.json")
    data = _load("rm-bench", limit=129 + 228 + 284 + 157)  # stops before the math domain, which needs the hub
    assert Counter(item.subset for item in data.items) == {
        "chat": 129,
        "code": 228,
        "safety-refuse": 284,
        "safety-response": 157,
    }
    assert [p["kind"] for p in data.provenance] == ["local"] * 4 + ["skipped"]
    assert data.provenance[0]["sha256"] == "1df6053a68119c17eed9a54d35dc654b8cde3d3b0bbd1ad6941073e40ef5c9a8"
    assert data.items[0].meta["source_subset"] == "alpacaeval"
    # two safety-refuse prompts occur twice: their items are one bootstrap cluster
    refuse = [item for item in data.items if item.subset == "safety-refuse"]
    assert len({item.cluster for item in refuse}) == len(refuse) - 2


@pytest.mark.shared_data
def test_hh_rlhf_harmless_loads() -> None:
    shared_path("hh_rlhf/harmless-base_test.jsonl.gz")
    data = _load("hh-rlhf-harmless")
    assert len(data.items) == 2312
    assert all(item.prompt[-1][0] == "user" for item in data.items)
    splits = Counter(item.meta["conversation_split"] for item in data.items)
    assert splits == {"last_assistant_turn": 2307, "common_prefix": 5}
    assert sum(item.chosen[0].text == "" for item in data.items) == 4  # blank upstream answers, allowed
    assert data.items[0].id == "1" and data.provenance[0]["path"] == "hh_rlhf/harmless-base_test.jsonl.gz"
    _requests_ok("hh-rlhf-harmless", data.items)


@pytest.mark.shared_data
def test_rewardmath_sample_loads() -> None:
    shared_path("rewardmath/RewardMATH_direct.json")
    data = _load("rewardmath")
    assert [item.id for item in data.items] == ["0", "399"]
    for item in data.items:
        assert len(item.chosen) == 1 and len(item.rejected) == 9
        assert all(response.steps for response in item.chosen + item.rejected)
    assert data.items[0].meta["answer"] == "1600"
    _requests_ok("rewardmath", data.items)


@pytest.mark.shared_data
def test_rewardbench2_ties_sample_loads() -> None:
    shared_path("rewardbench2_ties_sample/ties_sample_tied41-50.jsonl")
    data = _load("rewardbench2-ties")
    assert len(data.items) == 20
    assert Counter(item.id.split(":")[0] for item in data.items) == {"tied": 10, "ref": 10}
    assert {item.subset for item in data.items} == {"Ties"}
    _requests_ok("rewardbench2-ties", data.items)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "total", "goals"),
    [
        ("rmb-bon", 3786, {"Harmlessness": 1677, "Helpfulness": 2109}),
        ("rmb-pairwise", 14543, {"Harmlessness": 6087, "Helpfulness": 8456}),
    ],
)
def test_rmb_loads(name: str, total: int, goals: dict[str, int]) -> None:
    shared_path("rmb/BoN_set")
    data = _load(name)
    # the subset is the scenario file (goal/scenario), the goal is in meta
    assert len(data.items) == total and Counter(item.meta["goal"] for item in data.items) == goals
    assert all(item.subset == f"{item.meta['goal']}/{item.meta['scenario']}" for item in data.items)
    assert len({item.subset for item in data.items}) == len(data.provenance[0]["files"]) >= 46


def test_math_robustness_needs_no_data() -> None:
    data = load_items(load_suite("math-robustness"))
    assert len(data.items) == 60 and data.provenance[0]["kind"] == "generator"
    _requests_ok("math-robustness", data.items)


def test_hub_only_suite_offline_names_the_way_out(tmp_path: Path) -> None:
    script = (
        "from rmbench.suite import load_suite\nfrom rmbench.data import load_items\n"
        "from rmbench.errors import DataError\n"
        "try:\n    load_items(load_suite('rewardbench'))\nexcept DataError as e:\n    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RMBENCH_DATA_DIR"}
    env |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SUITES_DIR.parent)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert "allenai/reward-bench@168d848cdbbea9764fae4a544dc9ca1e6cca4931" in done.stdout, done.stderr
    assert "<data dir>/rewardbench/filtered-00000-of-00001.parquet" in done.stdout
    assert "--data-dir" in done.stdout and "no data dir given" in done.stdout
