"""What the installed llama.cpp build does on this CPU, and the one load setting that depends on it.

pip compiles llama.cpp for the CPU it is built on. On a CPU with AMX (Intel Xeon, Sapphire Rapids
class and later) that build repacks quantized weights into AMX "extra buffers", and the first
decode then crashes with a segmentation fault (measured on a 2-core Xeon with AMX-INT8/AMX-TILE;
upstream ggml-org/llama.cpp issue 20824, closed without a fix). Loading the model with
``use_extra_bufts = False`` keeps the weights in plain CPU buffers, and it runs.

The protection is applied only where the build has AMX kernels (llama.cpp's own feature report
says ``AMX_INT8 = 1``). Elsewhere extra buffers stay on: they also hold the repacked layouts that
speed up Q4_0 and Q4_K models on AVX2 CPUs (see ``benchmarks/llamacpp_extra_buffers.py``).

Nothing here imports llama_cpp at module level, so the decision is testable without it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

AMX_FEATURE = "AMX_INT8"
"""The feature llama.cpp's CPU backend reports when it was compiled with AMX kernels."""

SYSTEM_INFO_ENV_VAR = "TEAMS_RL_LLAMACPP_SYSTEM_INFO"
"""A ``llama_print_system_info()`` report to decide by instead of the installed build's own: it lets
the whole test suite run, on a CPU without AMX, as it would decide on an AMX build (child processes
and servers inherit it). Unset, the build's real report decides."""


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """llama.cpp's ``llama_print_system_info()`` as ``{backend: {feature: value}}``.

    The report reads ``CPU : SSE3 = 1 | AVX2 = 1 | ... | REPACK = 1 |``, with one such segment per
    compiled backend (``CUDA : ARCHS = 900 | ...``); a segment starts where a part names its backend.
    """
    features: dict[str, dict[str, str]] = {}
    backend = "CPU"
    for part in text.split("|"):
        if " : " in part:
            backend, _, part = part.partition(" : ")
            backend = backend.strip()
        name, equals, value = part.partition("=")
        if equals and name.strip():
            features.setdefault(backend, {})[name.strip()] = value.strip()
    return features


@functools.cache
def build_features() -> dict[str, dict[str, str]]:
    """The installed llama.cpp build's features, by backend (read once per process), or those of
    the report in ``$TEAMS_RL_LLAMACPP_SYSTEM_INFO`` where it is set."""
    forced = os.environ.get(SYSTEM_INFO_ENV_VAR)
    if forced:
        return parse_system_info(forced)
    import llama_cpp

    return parse_system_info(llama_cpp.llama_print_system_info().decode("utf-8", errors="replace"))


def build_has_amx(features: dict[str, dict[str, str]] | None = None) -> bool:
    """Whether the llama.cpp build carries AMX kernels (compiled for a CPU with AMX)."""
    cpu = (build_features() if features is None else features).get("CPU", {})
    return cpu.get(AMX_FEATURE, "0") not in ("", "0")


def extra_buffers_by_default(features: dict[str, dict[str, str]] | None = None) -> bool:
    """Whether models load with llama.cpp's extra buffer types: yes, except on builds with AMX,
    whose repacked AMX buffers crash on the first decode."""
    return not build_has_amx(features)


def protect_default_model_params() -> bool:
    """Make every model this process loads through llama-cpp-python's high-level ``Llama`` (its
    OpenAI-compatible server, for one) use plain CPU buffers where the build has AMX.

    ``Llama`` takes no argument for ``use_extra_bufts``; it starts from
    ``llama_cpp.llama_cpp.llama_model_default_params()``, so that function is wrapped. Returns
    whether the protection was applied (False: nothing changed)."""
    if extra_buffers_by_default():
        return False
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params
    if getattr(original, "_teams_rl_protected", False):
        return True

    def without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    without_extra_buffers._teams_rl_protected = True  # type: ignore[attr-defined]
    bindings.llama_model_default_params = without_extra_buffers
    return True
