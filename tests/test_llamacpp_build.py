"""The AMX protection: llama.cpp builds with AMX kernels load weights without extra buffers (their
repacked AMX buffers segfault on the first decode); every other build keeps llama.cpp's default."""

from __future__ import annotations

import pytest

from teams_env.llm import llamacpp_build
from teams_env.llm.llamacpp_build import build_has_amx, extra_buffers_by_default, parse_system_info

# llama_print_system_info() of a native build on a Sapphire Rapids Xeon, and of this project's
# usual AMD EPYC build, and of a CUDA build (one segment per backend).
AMX_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
    "REPACK = 1 | "
)
EPYC_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
CUDA_BUILD = "CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | AVX2 = 1 | "


def test_system_info_is_read_per_backend():
    cuda = parse_system_info(CUDA_BUILD)
    assert cuda["CUDA"] == {"ARCHS": "900", "USE_GRAPHS": "1", "PEER_MAX_BATCH_SIZE": "128"}
    assert cuda["CPU"] == {"SSE3": "1", "AVX2": "1"}
    assert parse_system_info(AMX_BUILD)["CPU"]["AMX_INT8"] == "1"


@pytest.mark.parametrize(
    ("report", "has_amx"), [(AMX_BUILD, True), (EPYC_BUILD, False), (CUDA_BUILD, False), ("", False)]
)
def test_extra_buffers_are_off_only_where_the_build_has_amx(report, has_amx):
    features = parse_system_info(report)
    assert build_has_amx(features) is has_amx
    assert extra_buffers_by_default(features) is not has_amx


def _pretend_build(monkeypatch, report: str) -> None:
    monkeypatch.setattr(llamacpp_build, "build_features", lambda: parse_system_info(report))


@pytest.fixture
def default_params(monkeypatch):
    """llama-cpp-python's default model parameters, restored after the test."""
    bindings = pytest.importorskip("llama_cpp.llama_cpp")
    monkeypatch.setattr(bindings, "llama_model_default_params", bindings.llama_model_default_params)
    return bindings


def test_the_server_protection_patches_the_defaults_only_on_amx_builds(monkeypatch, default_params):
    _pretend_build(monkeypatch, EPYC_BUILD)
    assert llamacpp_build.protect_default_model_params() is False
    assert default_params.llama_model_default_params().use_extra_bufts is True

    _pretend_build(monkeypatch, AMX_BUILD)
    assert llamacpp_build.protect_default_model_params() is True
    assert llamacpp_build.protect_default_model_params() is True  # applied once, not wrapped twice
    params = default_params.llama_model_default_params()
    assert params.use_extra_bufts is False
    assert params.n_gpu_layers == default_params.llama_model_default_params().n_gpu_layers


def test_the_server_launcher_applies_the_protection_before_it_serves(monkeypatch, default_params):
    """``python -m teams_rl.llamacpp_server`` (what the OpenAI-backend tests start): the server's
    models are built after the protection, so they load without extra buffers on an AMX build."""
    server_main = pytest.importorskip("llama_cpp.server.__main__")
    from teams_rl import llamacpp_server

    seen = []
    monkeypatch.setattr(
        server_main, "main", lambda: seen.append(default_params.llama_model_default_params().use_extra_bufts)
    )
    _pretend_build(monkeypatch, AMX_BUILD)
    llamacpp_server.main()
    assert seen == [False]


@pytest.mark.slow
@pytest.mark.parametrize(("report", "extra_buffers"), [(AMX_BUILD, False), (EPYC_BUILD, True)])
def test_the_backend_loads_and_names_its_buffers(monkeypatch, report, extra_buffers):
    """The real embedded model under each decision: it answers, and only plain buffers change the
    cache identity (answers computed by other kernels are never served for these)."""
    from teams_env.llm.base import GenerationParams
    from teams_env.llm.embedded import embedded_gguf_path
    from teams_env.llm.llamacpp import NO_EXTRA_BUFFERS_TAG, LlamaCppBackend

    _pretend_build(monkeypatch, report)
    backend = LlamaCppBackend(embedded_gguf_path(), max_batch=1, context_per_sequence=512)
    try:
        assert backend.extra_buffers is extra_buffers
        assert backend.identity.endswith(NO_EXTRA_BUFFERS_TAG) is not extra_buffers
        answer = backend.generate(
            [[{"role": "user", "content": "Name a fruit."}]], GenerationParams(max_new_tokens=8)
        )
        assert answer[0].text.strip()
    finally:
        backend.close()
