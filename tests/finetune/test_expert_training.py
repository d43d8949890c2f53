"""The specialist expert's training command, its demonstrations and its llama.cpp adapter format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teams_env.actions import ACTION_NAMES
from teams_rl.cli import main
from teams_rl.finetune.demonstrations import BUNDLED_DEMONSTRATIONS, read_demonstrations
from teams_rl.finetune.lora_gguf import (
    convert_adapter,
    gguf_tensors,
    pad_rank,
    permute_rows,
    read_adapter_tensors,
    write_adapter_tensors,
)

TINY = [
    (
        "add_constraints",
        "Write a poem about the sea.",
        "Write a poem about the sea in four stanzas that mention a lighthouse.",
    ),
    (
        "deepening",
        "What is inflation?",
        "What is inflation, what causes it, and who loses when prices rise quickly?",
    ),
    ("breadth", "Give three tips for saving money.", "Give three tips for negotiating a lower rent."),
    (
        "concretizing",
        "Describe a famous building.",
        "Describe the facades of the Sagrada Familia in Barcelona.",
    ),
]


def write_demos(path: Path, rows=TINY) -> Path:
    path.write_text(
        "".join(json.dumps({"action": a, "instruction": i, "rewrite": r}) + "\n" for a, i, r in rows),
        encoding="utf-8",
    )
    return path


def test_train_expert_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    import gguf

    demos = write_demos(tmp_path / "demos.jsonl")
    out = tmp_path / "expert"
    common = [
        "train-expert",
        "--data",
        str(demos),
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--save-steps",
        "1",
    ]
    assert main([*common, "--max-steps", "2", "--lora-rank", "4"]) == 0
    adapter = out / "expert-lora.gguf"
    reader = gguf.GGUFReader(str(adapter))
    fields = {
        name: reader.fields[name].contents()
        for name in ("general.type", "adapter.type", "adapter.lora.alpha")
    }
    # Stored as Q5_1 (batch-invariant in llama.cpp): rank 4 padded to 32, alpha raised with it, so
    # alpha / rank is the trained 32 / 4.
    assert fields == {"general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 256.0}
    assert {t.tensor_type for t in reader.tensors} == {gguf.GGMLQuantizationType.Q5_1}
    tensors, _ = read_adapter_tensors(adapter)
    assert tensors["blk.0.attn_q.weight.lora_a"].shape == (32, 576)
    assert tensors["blk.0.attn_q.weight.lora_b"].shape == (576, 32)
    assert tensors["blk.0.ffn_down.weight.lora_a"].shape == (32, 1536)
    assert not tensors["blk.0.ffn_down.weight.lora_a"][4:].any()
    assert len(tensors) == 30 * 7 * 2  # every projection of every layer, a and b
    # A rerun with a later stop resumes from the last checkpoint instead of starting over.
    assert main([*common, "--max-steps", "3", "--lora-rank", "4"]) == 0
    log = json.loads((out / "training_log.json").read_text())
    assert log["resumed_from"].endswith("checkpoint-2") and log["summary"]["steps"] == 3


def test_a_bad_demonstration_line_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write_demos(tmp_path / "demos.jsonl")
    with path.open("a") as handle:
        handle.write(json.dumps({"action": "shorten", "instruction": "x", "rewrite": "y"}) + "\n")
    with pytest.raises(ValueError, match=rf"demos.jsonl:{len(TINY) + 1}: unknown action 'shorten'"):
        read_demonstrations(str(path))
    path.write_text('{"action": "breadth", "instruction": "Same.", "rewrite": "Same."}\n')
    with pytest.raises(ValueError, match=r"demos.jsonl:1: the rewrite is a copy"):
        read_demonstrations(str(path))
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        read_demonstrations(str(tmp_path / "nope.jsonl"))


def test_the_bundled_demonstrations_cover_every_action() -> None:
    demonstrations = read_demonstrations("bundled")
    counts = {name: sum(d.action == name for d in demonstrations) for name in ACTION_NAMES}
    assert min(counts.values()) >= 300, counts
    assert BUNDLED_DEMONSTRATIONS.with_name("expert_demonstrations.md").is_file()  # its data card


def test_query_and_key_rows_are_permuted_as_llama_cpp_stores_them() -> None:
    rng = np.random.default_rng(0)
    n_head, n_kv, head_dim, rank, width = 4, 2, 6, 3, 24
    a = rng.normal(size=(rank, width)).astype(np.float32)
    b_q = rng.normal(size=(n_head * head_dim, rank)).astype(np.float32)
    b_k = rng.normal(size=(n_kv * head_dim, rank)).astype(np.float32)
    state = {
        "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight": a,
        "base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight": b_q,
        "base_model.model.model.layers.3.self_attn.k_proj.lora_B.weight": b_k,
        "base_model.model.model.layers.3.mlp.up_proj.lora_B.weight": b_k,
    }
    tensors = gguf_tensors(state, n_head=n_head, n_head_kv=n_kv)
    # The update B @ A lands on the rows llama.cpp permuted in the base weight.
    assert np.allclose(tensors["blk.3.attn_q.weight.lora_b"] @ a, permute_rows(b_q @ a, n_head))
    assert np.allclose(tensors["blk.3.attn_k.weight.lora_b"] @ a, permute_rows(b_k @ a, n_kv))
    assert not np.allclose(tensors["blk.3.attn_q.weight.lora_b"], b_q)
    assert np.array_equal(tensors["blk.3.ffn_up.weight.lora_b"], b_k)  # only q and k are permuted
    assert np.array_equal(tensors["blk.3.attn_q.weight.lora_a"], a)
    with pytest.raises(ValueError, match="lm_head"):
        gguf_tensors({"base_model.model.lm_head.lora_A.weight": a}, n_head=n_head, n_head_kv=n_kv)


def adapter_tensors(rank: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "blk.0.attn_v.weight.lora_a": rng.normal(0, 0.05, size=(rank, 64)).astype(np.float32),
        "blk.0.attn_v.weight.lora_b": rng.normal(0, 0.05, size=(48, rank)).astype(np.float32),
    }


def update(tensors: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    b, a = tensors["blk.0.attn_v.weight.lora_b"], tensors["blk.0.attn_v.weight.lora_a"]
    return alpha / a.shape[0] * b @ a


def test_padding_the_rank_keeps_the_update() -> None:
    tensors = adapter_tensors(rank=12)
    padded, alpha = pad_rank(tensors, 24.0)
    assert padded["blk.0.attn_v.weight.lora_a"].shape == (32, 64) and alpha == 64.0
    assert np.allclose(update(padded, alpha), update(tensors, 24.0))
    same, same_alpha = pad_rank(adapter_tensors(rank=64), 8.0)
    assert same["blk.0.attn_v.weight.lora_a"].shape == (64, 64) and same_alpha == 8.0


def test_an_f16_adapter_converts_to_q5_1_with_the_same_update(tmp_path: Path) -> None:
    import gguf

    tensors = adapter_tensors(rank=8)
    f16 = write_adapter_tensors(tensors, 16.0, tmp_path / "f16.gguf", dtype="f16")
    q5_1 = convert_adapter(f16, tmp_path / "q5_1.gguf")
    reader = gguf.GGUFReader(str(q5_1))
    assert {t.tensor_type for t in reader.tensors} == {gguf.GGMLQuantizationType.Q5_1}
    converted, alpha = read_adapter_tensors(q5_1)
    expected = update(tensors, 16.0)
    error = np.abs(update(converted, alpha) - expected).max()
    assert 0 < error < 0.05 * np.abs(expected).max()  # quantized: close, not equal
    with pytest.raises(ValueError, match="adapter dtype must be one of q5_1, f16, f32, got 'q8_0'"):
        write_adapter_tensors(tensors, 16.0, tmp_path / "x.gguf", dtype="q8_0")


def test_an_adapter_that_cannot_be_q5_1_is_one_error_naming_the_tensor(tmp_path: Path) -> None:
    mixed = {**adapter_tensors(rank=8), "blk.1.attn_v.weight.lora_a": np.zeros((4, 64), np.float32)}
    with pytest.raises(ValueError, match=r"'blk.1.attn_v.weight.lora_a' has rank 4, others 8"):
        pad_rank(mixed, 16.0)
    odd = {
        "blk.0.attn_v.weight.lora_a": np.ones((8, 40), np.float32),
        "blk.0.attn_v.weight.lora_b": np.ones((48, 8), np.float32),
    }
    with pytest.raises(ValueError, match=r"x.gguf: adapter tensor 'blk.0.attn_v.weight.lora_a' \(32, 40\)"):
        write_adapter_tensors(odd, 16.0, tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())  # nothing half-written is left
