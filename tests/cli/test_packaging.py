"""Promises of the spine that no single module owns: a light import, a fast CLI, and efficient batches on the
suites we ship."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._shared import SHARED_DATA


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_and_cli_answers_do_not_import_torch() -> None:
    """`rmbench --help` and `rmbench suites list` must answer without loading torch (seconds of import time)."""
    code = (
        "import sys\n"
        "import rmbench, rmbench.cli\n"
        "from rmbench.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['suites', 'list']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vllm', 'datasets') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout[-500:]
    assert "math-robustness" in done.stdout


# Suites that run offline: generated, or from the shared data through --data-dir.
SHIPPED_OFFLINE = {
    "math-robustness": None,
    "rm-bench-chat": "rm_bench",
    "rm-bench-code": "rm_bench",
    "rm-bench-safety": "rm_bench",
    "hh-rlhf-harmless": "hh_rlhf",
    "rewardbench2-ties": "rewardbench2_ties_sample",
    "rmb-pairwise": "rmb",
    "rmb-bon": "rmb",
}


@pytest.mark.parametrize("suite_name", sorted(SHIPPED_OFFLINE))
def test_padding_efficiency_on_shipped_suites_is_at_least_0_9(suite_name: str, tiny_rm: Path) -> None:
    """The batches a run plans (token-budget packing of length-sorted requests, the engine's default CPU budget,
    a real chat template and BPE tokenizer) waste at most 10% of the processed tokens on padding."""
    from rmbench.data import load_items
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec
    from rmbench.protocols import get_protocol
    from rmbench.requests import unique_requests
    from rmbench.scoring import planned_padding
    from rmbench.suite import load_suite

    folder = SHIPPED_OFFLINE[suite_name]
    if folder is not None and not (SHARED_DATA / folder).exists():
        pytest.skip(f"shared data not present: {SHARED_DATA / folder}")
    suite = load_suite(suite_name)
    items = load_items(suite, data_dir=SHARED_DATA).items
    requests = unique_requests(get_protocol(suite.protocol).requests(items))
    engine = create_engine(ModelSpec(model=str(tiny_rm), engine="hf"))
    lengths = [encoded.n_tokens for encoded in engine.encode(requests)]
    real, padded = planned_padding(lengths, engine.default_batch_tokens)
    assert real / padded >= 0.9, f"{suite_name}: padding efficiency {real / padded:.3f} over {len(lengths)} requests"
