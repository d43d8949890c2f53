"""The specialist expert: its backend kind, adapter errors, its prompt, and (slow) that the shipped
adapter in llama.cpp computes what the transformers model it came from computes."""

from __future__ import annotations

from pathlib import Path

import pytest

from teams_env.actions import ACTION_NAMES, ACTIONS, REWRITER_SYSTEM, specialist_conversation
from teams_env.engine import RewriteEngine
from teams_env.llm.base import GenerationParams
from teams_env.llm.llamacpp import SPECIALIST_ADAPTER
from teams_env.llm.registry import make_backend, parse_spec
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService


class RecordingSpecialist(ScriptedBackend):
    """A scripted stand-in that is a specialist and remembers what it was asked."""

    specialist = True

    def __init__(self) -> None:
        super().__init__()
        self.asked: list = []

    def generate(self, conversations, params):
        self.asked.extend(conversations)
        return super().generate(conversations, params)


def test_a_specialist_is_asked_the_request_alone_and_writes_the_whole_instruction() -> None:
    backend = RecordingSpecialist()
    engine = RewriteEngine(LLMService(backend, "expert"), None, GenerationParams(max_new_tokens=256))
    index = ACTION_NAMES.index("add_constraints")
    engine.rewrite([("Write a poem about the sea.", index)])
    (asked,) = backend.asked
    assert asked == specialist_conversation(ACTIONS[index], "Write a poem about the sea.")
    assert [m["role"] for m in asked] == ["user"] and REWRITER_SYSTEM not in asked[0]["content"]
    params = engine.action_params(index)
    assert params.stop == () and params.max_new_tokens == 256 and params.repetition_penalty == 1.0


def test_the_specialist_spec_is_its_own_kind() -> None:
    assert parse_spec("specialist").kind == "specialist"
    assert parse_spec("specialist?lora=runs/expert/expert-lora.gguf").options == {
        "lora": "runs/expert/expert-lora.gguf"
    }


def test_a_missing_or_wrong_adapter_is_one_line_naming_it(tmp_path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"LoRA adapter file not found: .*nope.gguf \(backend 'specialist'"
    ):
        make_backend(f"specialist?lora={tmp_path / 'nope.gguf'}")
    wrong = tmp_path / "wrong.gguf"
    wrong.write_text("not an adapter\n")
    with pytest.raises(ValueError, match=r"wrong.gguf: not a llama.cpp LoRA adapter"):
        make_backend(f"specialist?lora={wrong}")


def test_the_adapter_is_part_of_the_cache_identity() -> None:
    plain = make_backend("llamacpp")
    specialist = make_backend("specialist")
    assert (
        specialist.identity.startswith("specialist:")
        and "+lora=specialist_expert.gguf@" in specialist.identity
    )
    assert plain.model_id in specialist.model_id and plain.model_id != specialist.model_id


def test_a_float_adapter_is_warned_about_and_the_shipped_one_is_not(tmp_path, caplog) -> None:
    from teams_rl.finetune.lora_gguf import convert_adapter

    f16 = convert_adapter(SPECIALIST_ADAPTER, tmp_path / "f16.gguf", dtype="f16")
    with caplog.at_level("WARNING", logger="teams_env.llm.llamacpp"):
        make_backend("specialist").close()
        assert not caplog.records
        make_backend(f"specialist?lora={f16}").close()
    (record,) = caplog.records
    assert "f16.gguf stores float tensors" in record.getMessage() and "convert_adapter" in record.getMessage()


@pytest.mark.slow
def test_the_specialists_answers_do_not_depend_on_the_batch() -> None:
    """The same requests alone, together, and together in another order and company: the same text
    (with the F16 adapter shipped before, 7 of 8 differed alone; see teams_rl.finetune.lora_gguf)."""
    instructions = [
        "How to cook rice without a rice cooker",
        "Explain why bread dough needs time to rise before baking.",
        "Suggest three quick vegetarian dinners that use canned chickpeas.",
        "What is the difference between baking soda and baking powder?",
        "List the basic steps for making a simple tomato sauce from fresh tomatoes.",
        "Give tips for searing a steak so it forms a good crust.",
    ]
    conversations = [
        specialist_conversation(ACTIONS[i % len(ACTIONS)], text) for i, text in enumerate(instructions)
    ]
    params = GenerationParams(max_new_tokens=48, repetition_penalty=1.0)
    backend = make_backend("specialist")
    together = [c.text for c in backend.generate(conversations, params)]
    alone = [backend.generate([c], params)[0].text for c in conversations]
    reordered = backend.generate([*conversations[::-1], *conversations[:2]], params)
    assert alone == together
    assert [c.text for c in reordered[: len(conversations)]][::-1] == together


@pytest.mark.slow
def test_the_shipped_adapter_in_llama_cpp_agrees_with_the_transformers_model() -> None:
    """Greedy rewrites from llama.cpp (Q4_1 base + GGUF adapter), teacher-forced through the
    transformers model with the same adapter weights read back from the GGUF (dequantized) as a PEFT
    adapter: the same next token at at least 95% of the first 32 positions. It checks the format
    (row order, rank, alpha), not what quantizing the adapter cost."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from teams_env.llm.embedded import embedded_hf_dir
    from teams_rl.finetune.lora_gguf import read_gguf_adapter

    backend = make_backend("specialist")
    base = AutoModelForCausalLM.from_pretrained(embedded_hf_dir(), dtype=torch.float32)
    config = base.config
    weights, alpha = read_gguf_adapter(
        SPECIALIST_ADAPTER, n_head=config.num_attention_heads, n_head_kv=config.num_key_value_heads
    )
    rank = next(iter(weights.values())).shape[0]
    model = get_peft_model(
        base, LoraConfig(r=rank, lora_alpha=alpha, target_modules="all-linear", lora_dropout=0.0)
    )
    state = {
        f"base_model.model.model.{name}.default.weight": torch.from_numpy(value)
        for name, value in weights.items()
    }
    missing = set(state) - set(model.state_dict())
    assert not missing, sorted(missing)[:3]
    model.load_state_dict(state, strict=False)
    model.eval()
    instructions = [
        "Explain why bread dough needs to rest.",
        "Write a haiku about a train station.",
        "Which month had the highest profit?\n\n| month | profit |\n|---|---|\n| May | 4 |\n| June | 7 |",
        "How should I start an emergency fund?",
    ]
    agree = total = 0
    for instruction, action in zip(instructions, ACTIONS[1:]):
        conversation = specialist_conversation(action, instruction)
        prompt = backend.tokenize_prompt(conversation)
        (answer,) = backend.generate(
            [conversation], GenerationParams(max_new_tokens=32, repetition_penalty=1.0)
        )
        written = backend.tokenize_prompt([*conversation, {"role": "assistant", "content": answer.text}])
        tokens = written[len(prompt) :][:32]
        assert tokens, "the specialist wrote nothing"
        ids = torch.tensor([prompt + tokens])
        with torch.no_grad():
            logits = model(ids).logits[0]
        predicted = logits[len(prompt) - 1 : len(prompt) - 1 + len(tokens)].argmax(-1).tolist()
        agree += sum(p == t for p, t in zip(predicted, tokens))
        total += len(tokens)
    assert agree / total >= 0.95, f"{agree}/{total} greedy tokens agree"


@pytest.mark.parametrize(
    ("identity", "spec"),
    [
        (
            "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf@747cb1f0195582d0?deterministic-blocks32-noflash",
            "llamacpp",
        ),
        (
            "specialist:SmolLM2-135M-Instruct.Q4_1.gguf@747cb1f0195582d0+lora=specialist_expert.gguf@9150d4b0804c36d1"
            "?deterministic-blocks32-noflash",
            "specialist",
        ),
        # The F16 adapter shipped before: another expert (its answers moved with the batch).
        (
            "specialist:SmolLM2-135M-Instruct.Q4_1.gguf@747cb1f0195582d0+lora=specialist_expert.gguf@251732a2070efdd2",
            None,
        ),
        ("specialist:SmolLM2-135M-Instruct.Q4_1.gguf@747cb1f0195582d0+lora=mine.gguf@0123", None),
        ("llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf@0123456789abcdef", None),
        ("llamacpp:wizardlm-13b.Q4_K_M.gguf@0123", None),
        ("openai:gpt-4o-mini", None),
    ],
)
def test_a_pack_names_the_shipped_expert_it_was_recorded_with(identity, spec) -> None:
    from teams_env.replay.pack import Pack

    assert Pack(Path("p"), {"expert": identity}, {}).expert_spec == spec


def test_each_shipped_pack_names_the_expert_and_judge_it_was_recorded_with() -> None:
    """The default pack is the env's defaults (the specialist and the bundled judge), so pack-trained
    runs drive them live; the prompted pack keeps its expert and the judge of then."""
    from teams_env.replay.pack import load_pack

    default, prompted = load_pack("default"), load_pack("prompted")
    assert (default.expert_spec, default.reviewer_head_spec) == ("specialist", "bundled")
    assert (prompted.expert_spec, prompted.reviewer_head_spec) == ("llamacpp", "pairs-v1")


def test_a_specialist_neither_judges_nor_answers_its_base_model_does() -> None:
    from teams_env.env import TeaMsInstructEnv
    from teams_env.llm.registry import shared_backend, without_adapter

    assert without_adapter(shared_backend("specialist")) is shared_backend("llamacpp")
    assert without_adapter(shared_backend("llamacpp")) is shared_backend("llamacpp")
    env = TeaMsInstructEnv(expert="specialist", encoder="hashing", review_method="likelihood", cache=None)
    assert env.engine.expert.backend.identity.startswith("specialist:")
    assert env.engine.reviewer.service.backend is shared_backend("llamacpp")
