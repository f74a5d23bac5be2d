"""``--model .`` from inside a checkpoint (issue 15): the default cache and runs/ land in the model directory, and
must never change its fingerprint, or every run would miss the cache and results.json would never repeat."""

from __future__ import annotations

from pathlib import Path

from rmbench.modelspec import directory_digest


def test_rmbench_outputs_inside_a_model_directory_do_not_change_its_digest(tmp_path: Path) -> None:
    model = tmp_path / "checkpoint"
    model.mkdir()
    (model / "config.json").write_text('{"n_layer": 2}')
    (model / "model.safetensors").write_bytes(b"\x00weights" * 100)
    before = directory_digest(model)
    for name, data in {
        ".rmbench-cache/scores.sqlite": b"SQLite format 3\x00",
        ".rmbench-cache/scores.sqlite-wal": b"wal",
        ".rmbench-cache/.streamed-scores.parquet.123.ab.tmp": b"partial",
        "runs/suite/checkpoint/results.json": b"{}",
        "runs/suite/checkpoint/items.parquet": b"PAR1",
        "elsewhere.sqlite": b"cache passed with --cache",
    }.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(data)
    assert directory_digest(model) == before
    (model / "model.safetensors").write_bytes(b"\x01weights" * 100)  # the weights still count
    assert directory_digest(model) != before
