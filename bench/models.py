"""The benchmark's models, built locally and deterministically (no download).

- ``llama``: a random-weight ``LlamaForSequenceClassification`` of about 54M parameters (12 layers, hidden 512,
  8 heads of 64, MLP 1376), the shape of a small decoder reward model, with a real tokenizer: the WordPiece
  tokenizer of the packaged all-MiniLM-L6-v2 (30,522 tokens), given a chat template. Random weights cost the same
  FLOPs as trained ones, and throughput is all the benchmark measures with it.
- ``minilm``: all-MiniLM-L6-v2's trained encoder as a ``BertForSequenceClassification`` (22.7M) with a seeded
  random one-label head, as the peer tools load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
)


def _tokenizer(path: Path, chat_template: str | None):
    import transformers

    from rmbench.engines.baseline import packaged_minilm_dir

    tokenizer = transformers.AutoTokenizer.from_pretrained(packaged_minilm_dir())
    tokenizer.chat_template = chat_template
    # Llama's forward rejects the token_type_ids a BERT tokenizer emits by default (cpu-baseline.md).
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    tokenizer.save_pretrained(str(path))
    return tokenizer


def build_llama(path: Path, *, layers: int = 12, hidden: int = 512, inner: int = 1376, seed: int = 0) -> Path:
    import torch
    import transformers

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(path, CHAT_TEMPLATE)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=inner,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        tie_word_embeddings=False,
        num_labels=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForSequenceClassification(config).to(torch.float32).eval()
    model.save_pretrained(str(path))
    return path


def build_minilm_classifier(path: Path, *, seed: int = 0) -> Path:
    import torch
    import transformers

    from rmbench.engines.baseline import packaged_minilm_dir

    path.mkdir(parents=True, exist_ok=True)
    _tokenizer(path, CHAT_TEMPLATE)  # the same rendered texts as the decoder, so both scorers see equal inputs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertForSequenceClassification.from_pretrained(packaged_minilm_dir(), num_labels=1)
    model.to(torch.float32).eval().save_pretrained(str(path))
    return path


def num_params(path: Path) -> int:
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path))
    return int(sum(p.numel() for p in model.parameters()))


#: Llama-3-8B's shape (hidden 4096, 32 layers, 32 query / 8 key-value heads, MLP 14336, vocab 128256): the GPU
#: benchmark's model. The tokenizer covers only the first 30,522 ids; the rest of the embedding costs no FLOPs.
LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
}
#: The same architecture (GQA included) small enough for CI on CPU; head dim 64, which vLLM-CPU needs.
LLAMA_TINY = {
    "hidden_size": 128,
    "intermediate_size": 344,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": None,  # the tokenizer's
    "max_position_embeddings": 2048,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
}


def build_llama_shape(path: Path, shape: dict[str, Any], *, device: str = "cpu", dtype: str = "float32",
                      seed: int = 0) -> Path:
    """A random-weight ``LlamaForSequenceClassification`` of ``shape``, its weights created on ``device`` in
    ``dtype`` (an 8B model is initialised on the GPU in seconds, not on the CPU in minutes), saved with the
    packaged MiniLM tokenizer and a chat template."""
    import torch
    import transformers

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(path, CHAT_TEMPLATE)
    config = transformers.LlamaConfig(
        **{**shape, "vocab_size": shape.get("vocab_size") or len(tokenizer)},
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        tie_word_embeddings=False,
        num_labels=1,
    )
    torch.manual_seed(seed)  # this runs in a process of its own (bench.gpu_measure.build_model)
    with torch.device(device):
        model = transformers.LlamaForSequenceClassification._from_config(config, dtype=getattr(torch, dtype)).eval()
    model.save_pretrained(str(path))
    return path


def non_embedding_params(config: dict[str, Any]) -> int:
    """Parameters a token's forward pass multiplies by (all but the input embedding) of a Llama classifier's
    config.json: attention (GQA-sized k/v), gated MLP, norms and the score head."""
    hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    head_dim = int(config.get("head_dim") or hidden // int(config["num_attention_heads"]))
    kv = int(config["num_key_value_heads"]) * head_dim
    attention = 2 * hidden * hidden + 2 * hidden * kv
    mlp = 3 * hidden * int(config["intermediate_size"])
    labels = len(config.get("id2label") or {0: 0})
    return layers * (attention + mlp + 2 * hidden) + hidden + hidden * labels
