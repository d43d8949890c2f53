"""``teams-rl sft`` on the embedded model (slow: real fine-tuning on CPU), presets and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teams_rl.cli import main
from teams_rl.finetune import device
from teams_rl.finetune.commands import SFTConfig
from teams_rl.finetune.model_card import reproduce_command
from teams_rl.finetune.presets import apply_preset, preset_fields
from teams_rl.finetune.sft import training_arguments


def greedy_answer(model_dir: Path, question: str) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=24, do_sample=False)
    return tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.slow
def test_full_fine_tune_lowers_the_loss_and_saves_a_model_that_answers(
    finetuned_model: Path, chat_data: dict[str, Path]
) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "loss_curve.png",
    ):
        assert (finetuned_model / name).is_file(), name
    log = json.loads((finetuned_model / "training_log.json").read_text())
    losses = [step["loss"] for step in log["steps"]]
    assert len(losses) == log["summary"]["steps"] == 9  # 12 rows / batch 4 * 3 epochs, every step logged
    assert losses[-1] < 0.5 * losses[0]
    assert log["summary"]["tokens_per_second"] > 0

    card = (finetuned_model / "README.md").read_text()
    assert str(chat_data["members"].resolve()) in card
    assert "Rows: 12" in card and '"kept_items": 12' in card  # the dataset's stats.json is quoted

    member = json.loads(chat_data["members"].read_text().splitlines()[0])
    question, answer = member["messages"][0]["content"], member["messages"][1]["content"]
    reply = greedy_answer(finetuned_model, question)
    # the base model does not answer in the training set's form; the fine-tuned one does
    assert reply.startswith(" ".join(answer.split()[:4])), reply


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_lora_methods_save_an_adapter_and_a_merged_model(
    method: str, chat_data: dict[str, Path], tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from teams_rl.finetune.models import load_causal_lm, resolve_model

    out = tmp_path / method
    arguments = ["sft", "--data", str(chat_data["members"]), "--out", str(out), "--method", method]
    arguments += ["--max-steps", "1", "--batch-size", "2", "--max-length", "64", "--learning-rate", "1e-3"]
    assert main(arguments) == 0
    assert (out / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert getattr(merged.config, "quantization_config", None) is None
    base = load_causal_lm(resolve_model("embedded"))
    name = "model.layers.0.self_attn.q_proj.weight"
    merged_weight, base_weight = merged.state_dict()[name], base.state_dict()[name]
    assert merged_weight.dtype == torch.float32
    assert not torch.equal(merged_weight, base_weight)  # the trained adapter was merged in
    assert "adapter/" in (out / "README.md").read_text()


def test_presets_fill_only_what_was_not_given() -> None:
    default = apply_preset(SFTConfig(data="d.jsonl"))
    assert all(getattr(default, name) is not None for name in preset_fields())
    assert (default.gradient_checkpointing, default.learning_rate, default.max_length) == (False, 2e-5, 512)

    paper = apply_preset(SFTConfig(data="d.jsonl", preset="paper", epochs=1.0))
    assert (paper.batch_size, paper.lr_scheduler, paper.max_length) == (64, "cosine", 512)
    assert paper.epochs == 1.0  # given explicitly: the preset does not override it


@pytest.mark.parametrize(("native_bf16", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_cpu_uses_bf16_only_where_it_is_native(
    native_bf16: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native_bf16)
    assert device.resolve_precision("auto", "cpu") == expected
    assert device.resolve_precision("fp16", "cpu") == "fp16"  # an explicit choice is kept


def test_training_arguments_override_trl_defaults_that_are_slow_on_cpu(tmp_path: Path) -> None:
    config = apply_preset(SFTConfig(data="d.jsonl"))
    arguments = training_arguments(config, "fp32", "cpu", tmp_path)
    checkpointing = {k: v for k, v in arguments.items() if k.endswith("_checkpointing")}
    assert list(checkpointing.values()) == [False]
    assert (arguments["bf16"], arguments["fp16"], arguments["use_cpu"]) == (False, False, True)
    assert training_arguments(config, "bf16", "cuda", tmp_path)["bf16"] is True


def test_a_preset_file_may_not_set_other_options(tmp_path: Path) -> None:
    preset = tmp_path / "mine.yml"
    preset.write_text("learning_rate: 1.0e-4\nmethod: lora\n")
    with pytest.raises(ValueError, match=r"mine\.yml: key 'method': a preset cannot set it"):
        apply_preset(SFTConfig(data="d.jsonl", preset=str(preset)))
    with pytest.raises(FileNotFoundError, match="neither a shipped preset"):
        apply_preset(SFTConfig(data="d.jsonl", preset="no-such-preset"))


def test_reproduce_command_names_every_changed_option() -> None:
    command = reproduce_command(SFTConfig(data="my data.jsonl", method="lora", gradient_checkpointing=False))
    assert command == "teams-rl sft --data 'my data.jsonl' --method lora --no-gradient-checkpointing"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows (empty file)"),
        ('{"instruction": "x", "output": "y"}\n', ":1: no 'messages' field"),
        ('{"messages": [{"role": "user", "content": "hi"}]}\n', ":1: 'messages' has no assistant turn"),
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{oops\n',
            ":2: invalid JSON",
        ),
        ('{"messages": "hello"}\n', ":1: 'messages' must be a non-empty list"),
    ],
)
def test_bad_datasets_are_one_line_errors_naming_file_and_line(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dataset.jsonl"
    data.write_text(content)
    assert main(["sft", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("teams-rl sft: error: ") and str(data) in error and message in error
    assert not (tmp_path / "out").exists()


def test_missing_dataset_and_missing_base_model_are_clear_errors(
    make_dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sft", "--data", str(tmp_path / "nothing.jsonl")]) == 2
    assert "nothing.jsonl: file not found" in capsys.readouterr().err
    missing = tmp_path / "models" / "no-such-model"
    assert main(["sft", "--data", str(make_dataset()), "--base", str(missing)]) == 2
    assert f"model '{missing}' not found" in capsys.readouterr().err


def test_invalid_options_are_rejected_before_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sft", "--data", "d.jsonl", "--method", "prefix"]) == 2
    assert "method must be one of full, lora, qlora" in capsys.readouterr().err
    assert main(["sft", "--data", "d.jsonl", "--learning-rate", "-1"]) == 2
    assert "--learning-rate must be positive" in capsys.readouterr().err
