"""Finding and loading the causal language models the stages train and evaluate.

A model is named by ``embedded`` (SmolLM2-135M-Instruct shipped with the core), a local
transformers folder, or a Hugging Face Hub name. A Hub name is served from the local Hugging Face
cache when it is there; otherwise one quick request checks that the Hub has it before transformers
downloads it, so a missing model or a missing network is a one-line error at once. With
``HF_HUB_OFFLINE`` set, a Hub name must be in the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teams_env.dependencies import TRANSFORMERS_FLOOR, require

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

require("transformers", TRANSFORMERS_FLOOR, "fine-tuning (teams-rl sft, eval, privacy)")

EMBEDDED = "embedded"
_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_model(spec: str) -> str:
    """A local folder for ``embedded``, for a folder that exists, and for a Hub name in the local
    cache; the Hub name itself when it will be downloaded. Raises FileNotFoundError otherwise."""
    if spec == EMBEDDED:
        from teams_env.llm.embedded import embedded_hf_dir

        return str(embedded_hf_dir())
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model folder {path} has no config.json (not a transformers model)")
        return str(path)
    if path.exists():
        raise FileNotFoundError(f"model {spec}: a file, not a model folder")
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    not_found = f"model '{spec}' not found: no such folder, and no Hub model of that name in the local cache"
    try:
        cached = try_to_load_from_cache(spec, "config.json")
    except HFValidationError:
        raise FileNotFoundError(not_found) from None  # not a Hub name either: a missing path
    if isinstance(cached, str):
        return str(Path(cached).parent)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        raise FileNotFoundError(not_found + " (HF_HUB_OFFLINE is set)")
    # One quick request instead of transformers' download retries (about 25 s without a network).
    try:
        model_info(spec, timeout=10)
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"{not_found}, nor on the Hub (or it needs a login)") from None
    except Exception as error:  # any network failure: the Hub client raises its HTTP library's errors
        raise FileNotFoundError(f"{not_found}, and the Hub cannot be reached ({error})") from None
    return spec


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as error:
        raise FileNotFoundError(f"cannot load the tokenizer of '{path}': {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    path: str, *, precision: str = "auto", load_in_4bit: bool = False, device: str | None = None
) -> PreTrainedModel:
    """A causal LM with weights in ``precision`` (fp32, bf16, fp16, or auto: as stored), or 4-bit
    NF4 through bitsandbytes computing in that precision; moved to ``device`` when given."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = "auto" if precision == "auto" else getattr(torch, _DTYPES[precision])
    kwargs: dict[str, Any] = {"dtype": dtype}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
        kwargs["device_map"] = {"": device or "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as error:
        raise FileNotFoundError(f"cannot load model '{path}': {error}") from error
    if device is not None and not load_in_4bit:
        model.to(device)
    return model
