"""The AMX protection: llama.cpp builds with AMX kernels load weights without extra buffers (their
repacked AMX buffers segfault on the first decode); every other build keeps llama.cpp's default."""

from __future__ import annotations

import json

import pytest
from isolated import TESTS_DIR, run_isolated

from teams_env.llm import llamacpp_build
from teams_env.llm.llamacpp_build import build_has_amx, extra_buffers_by_default, parse_system_info
from teams_env.system_info import machine

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


def _real_build_has_amx() -> bool:
    """The installed build's own decision (or the report forced by $TEAMS_RL_LLAMACPP_SYSTEM_INFO),
    never one a test pretends: only that says whether extra buffers would crash here."""
    pytest.importorskip("llama_cpp")
    llamacpp_build.build_features.cache_clear()
    return build_has_amx()


@pytest.mark.slow
@pytest.mark.parametrize("extra_buffers", ["default", "off", "on"])
def test_the_backend_loads_and_names_its_buffers(extra_buffers):
    """The real embedded model with the build's default buffers, and with each setting forced: it
    answers, and only plain buffers change the cache identity (answers computed by other kernels
    are never served for these). It runs in a child process: were the AMX crash to come back, this
    test would fail naming the signal instead of killing the suite."""
    amx = _real_build_has_amx()
    if extra_buffers == "on" and amx:
        pytest.skip(
            f"the llama.cpp build has AMX kernels ({machine()['cpu']}): extra buffers segfault on the "
            "first decode there (llama.cpp issue 20824)"
        )
    report = json.loads(run_isolated("child_checks:load_and_answer", extra_buffers))
    expected = {"default": not amx, "off": False, "on": True}[extra_buffers]
    assert report["extra_buffers"] is expected
    assert report["tagged_plain"] is not expected
    assert report["answer"].strip()


def test_a_native_crash_in_a_child_is_one_failed_test_naming_the_signal(pytester):
    """What ``run_isolated`` promises: the crashing test fails with SIGSEGV named, and the tests
    after it still run."""
    pytester.makepyfile(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from isolated import run_isolated

        def test_crashes():
            run_isolated("child_checks:segfault")

        def test_after_the_crash():
            assert True
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*child_checks:segfault crashed natively in its child process: killed by SIGSEGV*"]
    )
