"""Own data end to end, as a new user would write it from suites/README.md: label-form pairs, TRL conversational
implicit-prompt JSONL and rated completions, scored by the length baseline and checked against an independent
computation of pairwise accuracy (expected tie policy: a tie counts one half)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from rmbench.cli import main

SUITE = "name: {name}\nversion: '1'\nprotocol: pairwise\nsources:\n  - local: {name}.jsonl\n{extra}"


def accuracy(pairs: list[tuple[str, str]]) -> float:
    return sum(1.0 if len(c) > len(r) else 0.5 if len(c) == len(r) else 0.0 for c, r in pairs) / len(pairs)


def run(tmp_path: Path, name: str, records: list[dict], extra: str = "") -> float:
    (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / f"{name}.yaml").write_text(SUITE.format(name=name, extra=extra))
    assert main(["suites", "validate", str(tmp_path / f"{name}.yaml"), "--strict"]) == 0
    out = tmp_path / f"run-{name}"
    argv = ["run", "--suite", str(tmp_path / f"{name}.yaml"), "--engine", "length", "--out", str(out),
            "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    assert main(argv) == 0
    metrics = json.loads((out / "results.json").read_text())["metrics"]
    return next(m["value"] for m in metrics if m["scope"] == "overall" and m["name"] == "accuracy")


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(["a", "bb", "ccc", "dddd"]) for _ in range(rng.randint(1, 6)))


def test_label_form(tmp_path: Path) -> None:
    rng = random.Random(0)
    rows = [{"input": text(rng), "output_1": text(rng), "output_2": text(rng), "label": rng.choice([1, 2])} for _ in range(40)]
    expected = accuracy([(r["output_1"], r["output_2"]) if r["label"] == 1 else (r["output_2"], r["output_1"]) for r in rows])
    extra = ("fields: {prompt: input}\n"
             "pairs: {kind: label, first: output_1, second: output_2, label: label, first_better: 1, second_better: 2}\n")
    assert run(tmp_path, "llmbar", rows, extra) == expected


def test_trl_conversational_implicit_prompt(tmp_path: Path) -> None:
    rng = random.Random(1)
    rows = []
    for _ in range(40):
        shared = [{"role": "user", "content": text(rng)}, {"role": "assistant", "content": text(rng)},
                  {"role": "user", "content": text(rng)}]
        chosen, rejected = text(rng), text(rng) + " x"
        rows.append({"chosen": [*shared, {"role": "assistant", "content": chosen}],
                     "rejected": [*shared, {"role": "assistant", "content": rejected}]})
    expected = accuracy([(r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows])
    assert run(tmp_path, "trl", rows) == expected


def test_rated_completions(tmp_path: Path) -> None:
    rng = random.Random(2)
    rows = [{"instruction": text(rng),
             "completions": [{"response": text(rng), "overall_score": rng.randint(1, 10)} for _ in range(4)]}
            for _ in range(40)]
    pairs = []
    for r in rows:
        scores = [c["overall_score"] for c in r["completions"]]
        if max(scores) != min(scores):
            pairs.append((r["completions"][scores.index(max(scores))]["response"],
                          r["completions"][scores.index(min(scores))]["response"]))
    extra = ("fields: {prompt: instruction}\n"
             "pairs: {kind: rated, completions: completions, text: response, score: overall_score, select: best_vs_worst}\n")
    assert run(tmp_path, "uf", rows, extra) == accuracy(pairs)
