"""Generative judges: verdict parsing, templates, pair requests and caching, the pairwise-judge protocol on a
scripted fake judge (exact verdicts, accuracy and position consistency), and a tiny random causal LM as judge,
whose garbage outputs must be counted as unparseable, never scored."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from rmbench.cache import ScoreCache
from rmbench.engines.judge import JudgeEngine
from rmbench.errors import ModelSpecError, ScoreError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.judges import PairRequest, load_template, parse_rating, parse_verdict, shipped_templates
from rmbench.judges.parsing import RATING_PATTERNS, VERDICT_PATTERNS, compile_patterns
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.protocols.pairwise_judge import PairwiseJudgeProtocol, chosen_shown_first
from rmbench.requests import ScoreRequest
from rmbench.scoring import score_requests
from tests.doubles import SCRIPTED_JUDGE_TEMPLATE, ScriptedGenerator
from tests.helpers import write_suite

RATINGS = compile_patterns(RATING_PATTERNS)
VERDICTS = compile_patterns(VERDICT_PATTERNS)


# --- parsing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is helpful and correct. Rating: [[7]]", 7.0),
        ("Rating: [[7.5]]", 7.5),
        ("Rating: 8", 8.0),
        ("rating: [9]", 9.0),
        ("My rating is 6.", 6.0),
        ("Score: 4", 4.0),
        ("I would give it 3/10.", 3.0),
        ("[[5]] ... so, once more, [[5.0]]", 5.0),  # repeated, agreeing
        ("Rating: [[3]] no wait, Rating: [[8]]", None),  # two different ratings: ambiguous
        ("Rating: [[11]]", None),  # off the 1-10 scale
        ("Rating: [[0]]", None),
        ("This response is fine.", None),
        ("", None),
    ],
)
def test_parse_rating(text: str, expected: float | None) -> None:
    assert parse_rating(text, RATINGS, 1, 10) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Assistant A is more detailed. [[A]]", "A"),
        ("[[B]]", "B"),
        ("Both are equally good. [[C]]", "tie"),
        ("Final verdict: Assistant B", "B"),
        ("Verdict: A", "A"),
        ("My verdict: (B)", "B"),
        ("Verdict: tie", "tie"),
        ("verdict: a tie", "tie"),  # the article "a" is not response A
        ("Overall, Response A is better.", "A"),
        ('Output "[[A]]" if A is better, "[[B]]" if B is better. [[A]]', None),  # echoed instructions: ambiguous
        ("Verdict: A. [[B]]", "B"),  # the strongest pattern decides
        ("I cannot decide between them.", None),
        ("[[D]]", None),
    ],
)
def test_parse_verdict(text: str, expected: str | None) -> None:
    assert parse_verdict(text, VERDICTS) == expected


def test_patterns_need_exactly_one_group() -> None:
    with pytest.raises(ValueError, match="one capture group"):
        compile_patterns([r"Rating: \d+"])


# --- templates ------------------------------------------------------------------------------------------------------


def test_shipped_templates_load_and_fill_placeholders_once() -> None:
    assert {"mt_bench", "verdict_only"} <= set(shipped_templates())
    template = load_template(None)
    assert template.name == "mt_bench" and template.pointwise and template.pairwise
    messages = template.pairwise.messages(question="Q?", response_a="says {response_b}", response_b="B text")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "says {response_b}" in messages[1]["content"]  # placeholder-like text in a response is left alone
    assert messages[1]["content"].count("B text") == 1


def test_template_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="neither a shipped template"):
        load_template("no_such_template")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npairwise:\n  user: 'Q: {question} A: {response_a}'\n")
    with pytest.raises(ModelSpecError, match=r"pairwise.*response_b"):
        load_template(str(bad))
    bad.write_text("name: bad\npointwise:\n  user: '{question} {response}'\n  temperature: 0.7\n")
    with pytest.raises(ModelSpecError, match="temperature"):
        load_template(str(bad))


# --- pair requests --------------------------------------------------------------------------------------------------


def test_pair_requests_are_keyed_by_both_responses_and_their_order() -> None:
    prompt, a, b = user_turn("Q"), Response("first"), Response("second")
    forward, backward = PairRequest.ordered(prompt, a, b), PairRequest.ordered(prompt, b, a)
    assert forward.key == PairRequest.ordered(prompt, a, b).key
    assert len({forward.key, backward.key, ScoreRequest.of(prompt, a).key}) == 3
    assert PairRequest.ordered(prompt, a, Response("other")).key != forward.key


# --- a scripted fake judge ------------------------------------------------------------------------------------------

#: (question, response shown as A, response shown as B) -> what the fake judge says.
PAIR_SCRIPT = {
    # q1: prefers chosen in both orders.
    ("q1", "good1", "bad1"): "Good reasoning. [[A]]",
    ("q1", "bad1", "good1"): "[[B]]",
    # q2: always says A (position bias): inconsistent.
    ("q2", "good2", "bad2"): "[[A]]",
    ("q2", "bad2", "good2"): "[[A]]",
    # q3: prefers rejected in both orders.
    ("q3", "good3", "bad3"): "Assistant B is better.",
    ("q3", "bad3", "good3"): "Final verdict: A",
    # q4: a tie in both orders.
    ("q4", "good4", "bad4"): "[[C]]",
    ("q4", "bad4", "good4"): "Verdict: tie",
    # q5: unparseable in one order: the item is excluded, not scored.
    ("q5", "good5", "bad5"): "[[A]]",
    ("q5", "bad5", "good5"): "I cannot decide.",
    # q6: always says B: inconsistent.
    ("q6", "good6", "bad6"): "[[B]]",
    ("q6", "bad6", "good6"): "[[B]]",
}

#: response -> the fake judge's pointwise answer.
RATING_SCRIPT = {
    "good1": "Rating: [[8]]", "bad1": "Rating: 3",      # chosen wins: 1
    "good2": "[[5]]", "bad2": "5/10",                   # tie: 0.5
    "good3": "Rating: [[11]]", "bad3": "[[2]]",         # off the scale: unparseable, item excluded
    "good4": "[[2]]", "bad4": "Score: 9",               # rejected wins: 0
}  # fmt: skip


def _respond(messages: list[dict[str, str]]) -> str:
    fields = dict(re.findall(r"^(Q|A|B|R): (.*)$", messages[-1]["content"], flags=re.MULTILINE))
    if "R" in fields:
        return RATING_SCRIPT[fields["R"]]
    return PAIR_SCRIPT[(fields["Q"], fields["A"], fields["B"])]


def _items(n: int) -> list[PreferenceItem]:
    return [
        PreferenceItem(f"item-{i}", user_turn(f"q{i}"), (Response(f"good{i}"),), (Response(f"bad{i}"),))
        for i in range(1, n + 1)
    ]


@pytest.fixture
def scripted_template(tmp_path: Path):
    path = tmp_path / "scripted.yaml"
    path.write_text(SCRIPTED_JUDGE_TEMPLATE)
    return load_template(str(path))


def _scripted_engine(template, **spec: object) -> JudgeEngine:
    from rmbench.modelspec import ModelSpec

    return JudgeEngine(ModelSpec(model="scripted-judge", engine="judge", **spec), ScriptedGenerator(_respond), template)


def _options(**overrides: object) -> MetricOptions:
    return MetricOptions(bootstrap_resamples=1000, **overrides)


def test_scripted_pairwise_judge_gives_the_hand_computed_metrics(scripted_template, tmp_path: Path) -> None:
    items, protocol = _items(6), PairwiseJudgeProtocol()
    engine = _scripted_engine(scripted_template)
    requests = protocol.requests(items)
    assert len(requests) == 12 and all(isinstance(r, PairRequest) for r in requests)
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, stats = score_requests(requests, engine, cache, show_progress=False)
    assert stats.invalid_scores == 1 and engine.counts["unparseable"] == 1 and engine.counts["generated"] == 12
    assert engine.unparseable_examples == ["I cannot decide."]

    result = protocol.evaluate(items, scores, _options())
    # Evaluated: q1 (chosen, consistent), q2 (always A), q3 (rejected, consistent), q4 (tie, consistent), q6
    # (always B); q5 is excluded. Inconsistent pairs count as ties.
    assert result.excluded == {"unparseable_verdict": 1}
    assert result.metric("accuracy").value == pytest.approx((1 + 0.5 + 0 + 0.5 + 0.5) / 5)
    assert result.metric("position_consistency").value == pytest.approx(3 / 5)
    assert result.metric("first_position_rate").value == pytest.approx((0.5 + 1 + 0.5 + 0 + 0) / 5)
    assert result.metric("accuracy").n == 5 and result.metric("accuracy").ci_low is not None
    assert result.extra["verdicts"] == {"first": 5, "second": 4, "tie": 2, "unparseable": 1}
    assert result.extra["judgments"] == 12

    strict = protocol.evaluate(items, scores, _options(tie_policy="strict"))
    assert strict.metric("accuracy").value == pytest.approx(1 / 5)


def test_single_order_accuracy_follows_the_seeded_order(scripted_template, tmp_path: Path) -> None:
    items, protocol = _items(6), PairwiseJudgeProtocol()
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, _ = score_requests(protocol.requests(items), _scripted_engine(scripted_template), cache, show_progress=False)
    seen = set()
    for seed in range(6):
        # q1 → 1, q3 → 0, q4 → 0.5 whatever the order; q2 (always A) wins iff chosen was shown first; q6 (always B)
        # iff rejected was.
        q2 = float(chosen_shown_first("item-2", seed))
        q6 = float(not chosen_shown_first("item-6", seed))
        value = protocol.evaluate(items, scores, _options(seed=seed)).metric("single_order_accuracy").value
        assert value == pytest.approx((1 + q2 + 0 + 0.5 + q6) / 5)
        seen.add(value)
    assert len(seen) > 1  # the seed really changes the order
    orders = [chosen_shown_first(f"item-{i}", 0) for i in range(50)]
    assert 10 < sum(orders) < 40  # both orders are drawn


def test_each_judged_order_is_cached_once(scripted_template, tmp_path: Path) -> None:
    items, protocol = _items(4), PairwiseJudgeProtocol()
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        first = _scripted_engine(scripted_template)
        score_requests(protocol.requests(items), first, cache, show_progress=False)
        again = _scripted_engine(scripted_template)
        _, stats = score_requests(protocol.requests(items), again, cache, show_progress=False)
        assert first.generator.calls == 8 and again.generator.calls == 0 and stats.cache_hits == 8
        # A different template is a different judge: nothing is reused.
        other = JudgeEngine(again.spec, ScriptedGenerator(_respond), load_template("verdict_only"))
        assert other.fingerprint != again.fingerprint


def test_scripted_pointwise_judge_through_the_pairwise_protocol(scripted_template, tmp_path: Path) -> None:
    items, protocol = _items(4), PairwiseProtocol()
    engine = _scripted_engine(scripted_template)
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, stats = score_requests(protocol.requests(items), engine, cache, show_progress=False)
    assert scores[ScoreRequest(user_turn("q1"), "good1").key].value == 8.0
    assert stats.invalid_scores == 1 and engine.counts["unparseable"] == 1
    result = protocol.evaluate(items, scores, _options())
    assert result.excluded == {"invalid_score": 1}
    assert result.metric("accuracy").value == pytest.approx((1 + 0.5 + 0) / 3)


def test_prompts_too_long_to_judge_are_counted_not_cut(scripted_template) -> None:
    engine = _scripted_engine(scripted_template, max_length=16)  # prompt words + 8 new tokens
    long = ScoreRequest(user_turn("a long question " * 5), "good1")
    short = ScoreRequest(user_turn("q1"), "good1")
    encoded = engine.encode([long, short])
    long_score, short_score = engine.score(encoded)
    assert math.isnan(long_score.value) and long_score.truncated
    assert short_score.value == 8.0 and not short_score.truncated
    assert engine.counts["too_long"] == 1 and engine.generator.calls == 1


# --- a tiny random causal LM as judge -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-judge"), seed=3)


def test_tiny_random_judge_outputs_are_counted_as_unparseable(tiny_judge: Path, tmp_path: Path) -> None:
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec

    class SpecWithJudge(ModelSpec):  # ModelSpec gains judge_template; a subclass stands in here
        judge_template: str | None = None

    engine = create_engine(SpecWithJudge(model=str(tiny_judge), engine="judge", judge_template="verdict_only"))
    assert isinstance(engine, JudgeEngine) and engine.template.name == "verdict_only"
    items = _items(3)
    pair_requests = PairwiseJudgeProtocol().requests(items)
    point_requests = PairwiseProtocol().requests(items)
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, stats = score_requests(pair_requests + point_requests, engine, cache, show_progress=False)
    assert stats.invalid_scores == 12 and all(math.isnan(s.value) for s in scores.values())
    assert engine.counts["generated"] == engine.counts["unparseable"] == 12 and engine.unparseable_examples
    # results.json counts come from the scores (same on a cached re-run), not from this process's counters
    assert not {"generated", "unparseable", "too_long", "unparseable_examples"} & set(engine.info())
    with pytest.raises(ScoreError, match="'unparseable_verdict': 3"):
        PairwiseJudgeProtocol().evaluate(items, scores, _options())
    with pytest.raises(ScoreError, match="'invalid_score': 3"):
        PairwiseProtocol().evaluate(items, scores, _options())


def test_tiny_judge_generation_does_not_depend_on_the_batch(tiny_judge: Path) -> None:
    from rmbench.engines.judge import HFGenerator
    from rmbench.modelspec import ModelSpec

    generator = HFGenerator(ModelSpec(model=str(tiny_judge), engine="judge"))
    engine = JudgeEngine(generator.spec, generator, load_template("verdict_only"))
    requests = [*PairwiseJudgeProtocol().requests(_items(2)), ScoreRequest(user_turn("Hi"), "Hello " * 40)]
    inputs = [e.payload.backend_input for e in engine.encode(requests)]
    assert len({len(x) for x in inputs}) > 1  # mixed lengths: the batch is left-padded
    alone = [generator.generate([x], 12)[0] for x in inputs]
    assert generator.generate(inputs, 12) == alone
    assert all(text.strip() for text in alone)


def test_protocol_refuses_scores_that_are_not_verdicts() -> None:
    """A reward model scoring pair requests would judge only the first response: its floats are refused."""
    from rmbench.requests import Score

    items = _items(1)
    scores = {r.key: Score(value=0.37) for r in PairwiseJudgeProtocol().requests(items)}
    with pytest.raises(ScoreError, match="not a judge verdict"):
        PairwiseJudgeProtocol().evaluate(items, scores, _options())


# --- a tiny causal LM rigged to always answer "Assistant A is better" ---------------------------------------------

SCRIPTED_REPLY = "Assistant A is better"


def build_scripted_judge_lm(path: Path, reply: str = SCRIPTED_REPLY, seed: int = 0) -> Path:
    """A tiny Llama whose greedy reply to any prompt is ``reply``: a real causal LM that behaves as a scripted
    judge, so the hf and vLLM generation paths can be checked end to end against exact metrics.

    Zeroing every attention and MLP output projection leaves the residual stream at the current token's embedding,
    which makes the model a bigram model; each reply token's lm_head row is then set to point at the normed
    embedding of the token before it (the chat template ends prompts with eos, so the chain starts there and ends
    with eos). The random logits of other tokens stay below 2; the chain's are 50."""
    import torch
    import transformers

    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    build_tiny_causal_lm(path, seed=seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    eos = tokenizer.eos_token_id
    chain = [eos, *tokenizer(reply, add_special_tokens=False)["input_ids"], eos]
    assert len(set(chain[:-1])) == len(chain) - 1, "each reply token must follow a different token"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        generator = torch.Generator().manual_seed(seed)
        embeddings[eos] = 0.02 * torch.randn(embeddings.shape[1], generator=generator)  # pad == eos starts at 0
        for source, target in zip(chain, chain[1:]):
            hidden = model.model.norm(embeddings[source])
            model.lm_head.weight[target] = 50 * hidden / hidden.square().sum()
    model.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def scripted_judge_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scripted_judge_lm(tmp_path_factory.mktemp("scripted-judge-lm"))


def always_first_metrics(items: list[PreferenceItem], seed: int = 0) -> dict[str, float]:
    """What a judge that always prefers the response shown first must score (expected tie policy)."""
    chosen_first = [chosen_shown_first(item.id, seed) for item in items]
    return {
        "accuracy": 0.5,  # the two orders always disagree: every pair is a tie
        "position_consistency": 0.0,
        "single_order_accuracy": sum(chosen_first) / len(items),
        "first_position_rate": 1.0,
    }


def test_scripted_lm_judges_through_transformers_generate(scripted_judge_lm: Path, tmp_path: Path) -> None:
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec

    engine = create_engine(ModelSpec(model=str(scripted_judge_lm), engine="judge"))
    items, protocol = _items(6), PairwiseJudgeProtocol()
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, stats = score_requests(protocol.requests(items), engine, cache, show_progress=False)
    assert stats.invalid_scores == 0 and engine.counts["unparseable"] == 0
    assert {s.value for s in scores.values()} == {1.0}
    result = protocol.evaluate(items, scores, _options())
    for name, value in always_first_metrics(items).items():
        assert result.metric(name).value == pytest.approx(value), name


def write_judge_suite(directory: Path, n: int = 6, protocol: str = "pairwise_judge") -> Path:
    """A small offline suite over a local JSONL file; items are ``_items(n)``."""
    rows = [{"id": i.id, "prompt": i.prompt[0][1], "chosen": i.chosen[0].text, "rejected": i.rejected[0].text}
            for i in _items(n)]  # fmt: skip
    return write_suite(directory, rows, data_name="pairs.jsonl", protocol=protocol, name="judge-e2e",
                       source="subset: tiny\n", extra="metrics:\n  tie_policy: expected\n")


def check_always_first_run(out: Path, n: int = 6) -> dict:
    """The run directory of an always-first judge on ``write_judge_suite``: exact metrics, nothing unparseable."""
    results = json.loads((out / "results.json").read_text())
    assert results["suite"]["protocol"] == "pairwise_judge"
    assert results["excluded"] == {} and results["counts"]["invalid_scores"] == 0
    assert results["counts"]["requests"] == 2 * n and results["extra"]["verdicts"] == {"first": 2 * n}
    overall = {m["name"]: m["value"] for m in results["metrics"] if m["scope"] == "overall"}
    expected = always_first_metrics(_items(n), seed=results["metric_options"]["seed"])
    assert overall == pytest.approx(expected)
    assert results["model"]["engine"]["judge_template"] == "mt_bench"
    return results


def test_rmbench_run_with_the_judge_engine(scripted_judge_lm: Path, tmp_path: Path) -> None:
    from rmbench.cli import main

    suite = write_judge_suite(tmp_path)
    common = ["run", "--no-progress", "--suite", str(suite), "--engine", "judge", "--model", str(scripted_judge_lm)]
    common += ["--cache", str(tmp_path / "cache.sqlite")]
    assert main([*common, "--out", str(tmp_path / "first")]) == 0
    check_always_first_run(tmp_path / "first")
    # Served from the cache: the same bytes, verdict counts included.
    assert main([*common, "--out", str(tmp_path / "second")]) == 0
    assert (tmp_path / "first" / "results.json").read_bytes() == (tmp_path / "second" / "results.json").read_bytes()


def test_rmbench_run_with_a_judge_that_never_answers(tmp_path: Path, capsys) -> None:
    """A judge that never gives a verdict: the run stops with exit code 2 and says how many pairs were unparseable;
    with prompts that do not fit, it says that instead (they are skipped, not cut)."""
    from rmbench.cli import main

    evasive = build_scripted_judge_lm(tmp_path / "evasive", reply="Both answers are good.")
    suite = write_judge_suite(tmp_path, n=2)
    args = ["run", "--no-progress", "--suite", str(suite), "--engine", "judge", "--model", str(evasive)]
    args += ["--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "run")]
    assert main([*args, "--max-length", "600"]) == 2
    err = capsys.readouterr().err
    assert "'prompt_too_long': 2" in err and "raise --max-length" in err
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'unparseable_verdict': 2" in err and "max-length" not in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_rmbench_run_with_a_pointwise_judge(tmp_path: Path) -> None:
    """A judge that rates every response 7 through the pairwise protocol: every pair ties (0.5 expected, 0 strict)."""
    from rmbench.cli import main

    rater = build_scripted_judge_lm(tmp_path / "rater", reply="Rating: 7")
    suite = write_judge_suite(tmp_path, n=4, protocol="pairwise")
    args = ["run", "--no-progress", "--suite", str(suite), "--engine", "judge", "--model", str(rater)]
    args += ["--cache", str(tmp_path / "cache.sqlite")]
    assert main([*args, "--out", str(tmp_path / "expected")]) == 0
    assert main([*args, "--out", str(tmp_path / "strict"), "--tie-policy", "strict"]) == 0
    for name, accuracy in (("expected", 0.5), ("strict", 0.0)):
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert results["counts"]["requests"] == 8 and results["counts"]["invalid_scores"] == 0
        overall = {m["name"]: m["value"] for m in results["metrics"] if m["scope"] == "overall"}
        assert overall == {"accuracy": pytest.approx(accuracy)}
