"""The specialist expert's training command, its demonstrations and its llama.cpp adapter format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teams_env.actions import ACTION_NAMES
from teams_rl.cli import main
from teams_rl.finetune.demonstrations import BUNDLED_DEMONSTRATIONS, read_demonstrations
from teams_rl.finetune.lora_gguf import gguf_tensors, permute_rows

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
    assert fields == {"general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 32.0}
    shapes = {t.name: tuple(int(d) for d in reversed(list(t.shape))) for t in reader.tensors}
    assert shapes["blk.0.attn_q.weight.lora_a"] == (4, 576) and shapes["blk.0.attn_q.weight.lora_b"] == (
        576,
        4,
    )
    assert shapes["blk.0.ffn_down.weight.lora_a"] == (4, 1536)
    assert len(shapes) == 30 * 7 * 2  # every projection of every layer, a and b
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
