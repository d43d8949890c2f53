"""What names a local model in the cache: the content of its weights, not the name of its file.

Two different ``model.gguf`` files (or a folder fine-tuned again in place) must not share cached
answers, so a backend's identity carries a fingerprint of the weights. Hashing gigabytes on every
start would cost more than a short run, so the fingerprint reads only the size and the first and
last MiB of each weights file: a GGUF starts with its metadata and tensor table (architecture,
quantization, vocabulary, chat template), and a retrained or requantized model changes both its
head and its tail. Computed from paths alone, so it is testable without loading a model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

EDGE_BYTES = 1 << 20
"""Bytes hashed at each end of a weights file."""

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
"""Files of a transformers folder whose content is the model's weights."""

FINGERPRINT_CHARS = 16


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """A short hash of a file's size, first and last MiB (sha256, hex)."""
    file = Path(path)
    size = file.stat().st_size
    digest = hashlib.sha256(str(size).encode("ascii"))
    with file.open("rb") as handle:
        digest.update(handle.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            handle.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(handle.read(EDGE_BYTES))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """A short hash of every weights file in a folder (names and fingerprints), plus its config.

    The config is hashed whole: it is small and decides how the weights are read.
    """
    root = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        if file.is_file() and (file.suffix in WEIGHT_SUFFIXES or file.name == "config.json"):
            digest.update(file.relative_to(root).as_posix().encode("utf-8"))
            digest.update(file_fingerprint(file).encode("ascii"))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def gguf_model_id(path: str | os.PathLike[str], *, n_gpu_layers: int = 0) -> str:
    """The llama.cpp backend's model id: file name (for people), content fingerprint (for the
    cache), and whether layers run on a GPU (its kernels round differently from the CPU's)."""
    file = Path(path).expanduser()
    device = f",gpu_layers={n_gpu_layers}" if n_gpu_layers else ""
    return f"{file.name}@{file_fingerprint(file)}{device}"


def hf_model_id(model: str | os.PathLike[str], *, dtype: str, load_in_4bit: bool, device: str) -> str:
    """The transformers backend's model id: a local folder by its absolute path and the fingerprint
    of its weights, a Hub model by its name; then the weights' dtype, 4-bit (NF4) and the device,
    which all change the numbers a model computes."""
    local = Path(model).expanduser()
    # Not a folder here: a Hub name (pinning the Hub's revision is the user's part).
    name = f"{local.resolve()}@{folder_fingerprint(local)}" if local.is_dir() else str(model)
    return f"{name}?dtype={dtype}&nf4={str(load_in_4bit).lower()}&device={device}"
