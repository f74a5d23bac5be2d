"""Served engines against a real HTTP server on loopback (tests/engines/reward_server.py): request shapes, the
client's retries, backoff and concurrency bound, errors that name the endpoint, nothing wrong cached, kill/resume,
identity checks, usage in run.json, and an API key that never reaches results, logs, run.json or the cache."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rmbench.cache import ScoreCache
from rmbench.engines import create_engine
from rmbench.engines.http_client import EndpointError, JSONClient, retry_after_seconds
from rmbench.engines.lazy import fingerprint_of
from rmbench.errors import ModelSpecError
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec, ServerOptions
from rmbench.requests import ScoreRequest
from rmbench.scoring import score_requests
from tests.engines.reward_server import SLOW_S, reward_of, reward_server

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "Paris."),
    ScoreRequest(user_turn("Could you help me, please?"), "Of course, please tell me more."),
    ScoreRequest((("system", "Be brief."), ("user", "Hi")), "Hello!"),
]
#: Fast retries, so the fault tests take milliseconds.
FAST = {"backoff_s": 0.0, "max_backoff_s": 0.0}


def remote(url: str, **server: Any) -> ModelSpec:
    return ModelSpec.build({"model": f"{url}/get_reward", "engine": "remote-reward", "server": FAST | server})


def plain(request: ScoreRequest) -> str:
    """The query the built-in 'plain' template renders (what the OpenRLHF endpoint receives): transformers renders
    templates with trim_blocks, which eats the first newline after the block tag."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in request.messages())


def test_openrlhf_request_shape_and_rewards() -> None:
    with reward_server() as (url, state):
        engine = create_engine(remote(url, batch_size=2))
        scores = engine.score(engine.encode(REQUESTS))
    assert [s.value for s in scores] == pytest.approx([reward_of(plain(r)) for r in REQUESTS])
    bodies = [seen["body"] for seen in state.seen]
    assert sorted(len(b["query"]) for b in bodies) == [1, 2]  # batch_size 2: two calls, sent concurrently
    first = next(b for b in bodies if len(b["query"]) == 2)
    assert first["query"][0] == plain(REQUESTS[0]) and first["prompts"][0] == "user: What is the capital of France?"


def test_text_rendering_without_a_tokenizer_is_the_tokenizers_rendering(tiny_rm: Path) -> None:
    from rmbench.engines.encoding import ChatEncoder
    from rmbench.engines.served import TextRenderer

    spec = ModelSpec(model=str(tiny_rm), chat_template="plain")
    encoder, renderer = ChatEncoder(spec), TextRenderer(spec)
    for request in REQUESTS:
        assert renderer.render(request.messages()) == encoder.render(request.messages()) == plain(request)


def test_declared_json_shape() -> None:
    with reward_server() as (url, _):
        spec = ModelSpec.build({
            "model": f"{url}/score", "engine": "remote-reward",
            "server": {"request_format": "json", "body": {"inputs": "$queries"}, "rewards_path": "data.*.score"},
        })  # fmt: skip
        engine = create_engine(spec)
        assert [s.value for s in engine.score(engine.encode(REQUESTS))] == pytest.approx(
            [reward_of(plain(r)) for r in REQUESTS]
        )
    with pytest.raises(ModelSpecError, match="uses none of"):
        create_engine(spec.model_copy(update={"server": ServerOptions(request_format="json", body={"x": 1})}))


def test_retries_on_500_429_timeouts_and_dropped_connections() -> None:
    with reward_server() as (url, state):
        engine = create_engine(remote(url, timeout_s=SLOW_S / 4))
        state.faults.extend(["500", "429", "drop", "slow"])
        scores = engine.score(engine.encode(REQUESTS))
        assert [s.value for s in scores] == pytest.approx([reward_of(plain(r)) for r in REQUESTS])
        assert engine.usage()["retries"] == 4


def test_no_retry_on_other_4xx_and_a_clear_error_after_the_last_retry() -> None:
    with reward_server() as (url, state):
        engine = create_engine(remote(url, max_retries=2))
        state.faults.append("400")
        with pytest.raises(EndpointError, match=r"get_reward: HTTP 400 \(not retried\)"):
            engine.score(engine.encode(REQUESTS))
        assert len(state.seen) == 1
        state.faults.extend(["500", "500", "500"])
        with pytest.raises(EndpointError, match=rf"POST {url}/get_reward failed after 3 attempt\(s\): HTTP 500"):
            engine.score(engine.encode(REQUESTS))


def test_retry_after_is_honoured_and_backoff_is_jittered() -> None:
    slept: list[float] = []
    client = JSONClient(ServerOptions(backoff_s=1.0, max_backoff_s=8.0), sleep=slept.append)
    assert client._delay(0, retry_after=5.0) == 5.0  # a server's Retry-After is a floor
    delays = [client._delay(3, None) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) > 100  # full jitter under the capped ceiling
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    client.close()


def test_concurrency_is_bounded() -> None:
    with reward_server() as (url, state):
        state.delay_s = 0.05
        engine = create_engine(remote(url, batch_size=1, concurrency=3))
        many = [ScoreRequest(user_turn(f"question {i}"), "answer") for i in range(12)]
        engine.score(engine.encode(many))
    assert state.max_in_flight == 3


@pytest.mark.parametrize("fault", ["malformed", "short"])
def test_a_bad_reply_stops_the_batch_and_nothing_is_cached(fault: str, tmp_path: Path) -> None:
    with reward_server() as (url, state), ScoreCache(tmp_path / "cache.sqlite") as cache:
        engine = create_engine(remote(url))
        state.faults.append(fault)
        match = "not JSON" if fault == "malformed" else "expected 3 rewards for 3 requests, got 2 rewards"
        with pytest.raises(EndpointError, match=match):
            score_requests(REQUESTS, engine, cache, show_progress=False)
        assert cache.get_many(engine.fingerprint, [r.key for r in REQUESTS]) == {}
        scores, stats = score_requests(REQUESTS, engine, cache, show_progress=False)
    assert stats.scored == 3 and all(math.isfinite(s.value) for s in scores.values())


def test_secrets_come_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RMBENCH_UNSET_KEY", raising=False)
    with pytest.raises(ModelSpecError, match=r"\$RMBENCH_UNSET_KEY, which is not set"):
        create_engine(remote("http://127.0.0.1:9", api_key_env="RMBENCH_UNSET_KEY"))
    with pytest.raises(ModelSpecError, match="holds a password") as refused:
        create_engine(ModelSpec.build({"model": "http://user:hunter2@127.0.0.1:9/get_reward", "engine": "remote-reward"}))
    assert "hunter2" not in str(refused.value)


def test_fingerprint_is_the_served_identity_not_the_url() -> None:
    def spec(url: str, **server: Any) -> ModelSpec:
        return ModelSpec.build({"model": url, "engine": "remote-reward", "server": server})

    named = fingerprint_of(spec("http://a:1/get_reward", served_model="rm", concurrency=2))
    assert named == fingerprint_of(spec("http://b:2/get_reward", served_model="rm", timeout_s=5))
    assert named != fingerprint_of(spec("http://a:1/get_reward", served_model="other-rm"))
    assert fingerprint_of(spec("http://a:1/x")) != fingerprint_of(spec("http://b:2/x"))  # unnamed: keyed by URL


def test_vllm_server_refuses_a_server_that_serves_another_model() -> None:
    with reward_server() as (url, _):
        spec = ModelSpec.build(
            {"model": url, "engine": "vllm-server", "server": {"served_model": "not-served", "template": "server"}}
        )
        with pytest.raises(ModelSpecError, match="does not serve 'not-served' .*tiny-rm"):
            create_engine(spec)
    with pytest.raises(ModelSpecError, match="--served-model"):
        create_engine(ModelSpec.build({"model": url, "engine": "vllm-server"}))


def test_process_rm_step_scores_are_read_at_the_step_tags(tiny_prm: Path) -> None:
    """vllm-server-prm: the StepEncoder's tag positions index the server's per-token rows (at reward_index)."""
    from rmbench.devtools.tiny_models import STEP_TAG
    from rmbench.engines.encoding import StepEncoder

    request = ScoreRequest(user_turn("Solve 3x + 4 = 19."), "3x = 15\n\nx = 5", steps=("3x = 15", "x = 5"))
    with reward_server() as (url, _):
        server = {"served_model": "tiny-rm", "tokenizer": str(tiny_prm)}
        spec = ModelSpec.build({"model": url, "engine": "vllm-server", "step_tag": STEP_TAG, "reward_index": 1, "server": server})
        assert spec.engine == "vllm-server-prm"
        engine = create_engine(spec)
        (score,) = engine.score(engine.encode([request]))
    positions = StepEncoder(spec, model=str(tiny_prm)).encode([request])[0].payload[1]
    assert len(positions) == 2 and None not in positions
    assert score.steps == tuple(-float(p) for p in positions) and score.value == score.steps[-1]


@pytest.mark.shared_data
def test_run_kill_resume_usage_and_a_planted_key_that_leaks_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's command on hh-rlhf-harmless: a failed batch stops the run (exit 2, endpoint named), the batches
    before it stay cached and the re-run resumes from them; the key is sent but written nowhere."""
    from rmbench.cli import main
    from tests._shared import shared_path

    data = shared_path("hh_rlhf").parent
    key = "sk-planted-3f9c1e7a-never-write-me"
    monkeypatch.setenv("RMBENCH_TEST_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    with reward_server() as (url, state):
        common = ["run", "--no-progress", "--suite", "hh-rlhf-harmless", "--engine", "remote-reward"]
        common += ["--model", f"{url}/get_reward", "--data-dir", str(data), "--limit", "6", "--batch-tokens", "4"]
        common += ["--api-key-env", "RMBENCH_TEST_API_KEY", "--cache", str(tmp_path / "cache.sqlite")]
        state.faults.extend(["ok", "500", "ok", "short"])  # batch 1 fine, batch 2 after one retry, batch 3 bad
        assert main([*common, "--out", str(tmp_path / "failed")]) == 2
        failed = capsys.readouterr()
        assert "expected 4 rewards for 4 requests, got 3" in failed.err and f"{url}/get_reward" in failed.err
        assert not (tmp_path / "failed").exists()
        assert main([*common, "--out", str(tmp_path / "run")]) == 0
        resumed = capsys.readouterr()
    assert all(seen["headers"].get("Authorization") == f"Bearer {key}" for seen in state.seen)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["cache_hits"] == 8 and run["scored"] == 4  # two batches of 4 kept from the failed run
    assert run["executor"]["usage"] == {"calls": 1, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model"]["spec"]["server"]["api_key_env"] == "RMBENCH_TEST_API_KEY"
    # Nowhere: run directories, the cache's bytes (and its text), console output and every log record.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not [p for p in written if key.encode() in p.read_bytes()]
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        for (table,) in db.execute("select name from sqlite_master where type='table'").fetchall():
            assert key not in json.dumps(db.execute(f"select * from {table}").fetchall(), default=repr)
    assert key not in failed.out + failed.err + resumed.out + resumed.err + caplog.text


def test_openai_judge_pairwise_run_with_usage_and_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rmbench.cli import main
    from tests.engines.test_judges import write_judge_suite

    suite = write_judge_suite(tmp_path)
    spec = tmp_path / "judge.yaml"
    spec.write_text(
        "engine: openai-judge\njudge_template: verdict_only\n"
        "server: {input_cost_per_mtok: 2.0, output_cost_per_mtok: 8.0, backoff_s: 0}\n"
    )
    monkeypatch.setenv("RMBENCH_TEST_API_KEY", "sk-judge")
    with reward_server() as (url, state):
        command = ["run", "--no-progress", "--suite", str(suite), "--spec", str(spec), "--model", f"{url}/v1"]
        command += ["--served-model", "tiny-rm", "--api-key-env", "RMBENCH_TEST_API_KEY"]
        command += ["--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "run")]
        state.faults.append("429")
        assert main(command) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["counts"]["requests"] == 12 and results["counts"]["invalid_scores"] == 0  # both orders of 6 pairs
    assert results["model"]["engine"]["server_reported"] == {"models_list": "checked", "id": "tiny-rm"}
    usage = json.loads((tmp_path / "run" / "run.json").read_text())["executor"]["usage"]
    chats = [s for s in state.seen if s["path"] == "/v1/chat/completions"]
    assert len(chats) == 13 and usage["calls"] == len(state.seen) == 14 and usage["retries"] == 1  # + GET models
    assert all(c["body"]["temperature"] == 0.0 and c["body"]["model"] == "tiny-rm" for c in chats)
    assert usage["completion_tokens"] == 12 * 5
    expected = (usage["prompt_tokens"] * 2.0 + usage["completion_tokens"] * 8.0) / 1e6
    assert usage["cost"] == pytest.approx(expected)
