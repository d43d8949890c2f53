"""Where a model runs and in which precision, decided once per command."""

from __future__ import annotations


def resolve_device(requested: str) -> str:
    """``auto``: the first GPU if torch sees one, else the CPU; anything else is used as given."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). torch exposes the probe
    only privately, so a torch without it counts as no."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(callable(probe := getattr(torch.cpu, name, None)) and probe() for name in probes)


def resolve_precision(requested: str, device: str) -> str:
    """``auto`` for training: bf16 mixed precision where the hardware has it (a GPU that supports
    it, or a CPU with native bf16: 1.4x faster than fp32 here), else fp16 on a GPU and fp32 on a
    CPU, where emulated bf16 was about 9x slower than fp32 (``benchmarks/sft_throughput.py``)."""
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"
