"""``teams-rl doctor``: an honest exit status, and a native crash in a role's child process turned
into one line with its cause and fix."""

from __future__ import annotations

import signal

import pytest

from teams_rl import doctor
from teams_rl.cli import main

CRASHING_CHECK = """
import ctypes


def segfault() -> str:
    ctypes.string_at(0)  # reads address 0: the child dies with SIGSEGV, as llama.cpp did on AMX
    return "unreachable"


def fails() -> str:
    raise RuntimeError("the model file is damaged")
"""


@pytest.fixture
def crashing_checks(tmp_path, monkeypatch):
    (tmp_path / "crashing_check.py").write_text(CRASHING_CHECK)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(
        doctor, "CHILD_CHECKS", {"expert": "crashing_check:segfault", "reviewer": "crashing_check:fails"}
    )


def test_a_crash_in_a_child_is_one_line_with_cause_and_fix(crashing_checks, capsys):
    assert main(["doctor", "--checks", "expert,reviewer"]) == 1
    out = capsys.readouterr().out
    crash = next(line for line in out.splitlines() if " expert " in line)
    assert crash.startswith("FAIL") and "crashed: SIGSEGV in llama.cpp" in crash
    failure = next(line for line in out.splitlines() if " reviewer " in line)
    assert failure.startswith("FAIL") and "the model file is damaged" in failure
    assert "fix: " in out and "pip install --force-reinstall --no-cache-dir" in out
    assert out.rstrip().endswith("2 failed: expert, reviewer")


def test_a_crash_on_an_amx_build_names_the_upstream_bug(monkeypatch):
    from teams_env.llm import llamacpp_build

    monkeypatch.setattr(llamacpp_build, "build_has_amx", lambda features=None: True)
    cause, fix = doctor.crash_cause("expert", -signal.SIGSEGV)
    assert "AMX" in cause and "20824" in cause and "extra_buffers=false" in fix
    cause, fix = doctor.crash_cause("expert", -signal.SIGILL)
    assert "instruction this CPU lacks" in cause and "--no-binary" in fix


def test_a_build_for_features_this_cpu_lacks_fails(monkeypatch):
    from teams_env.llm import llamacpp_build

    monkeypatch.delenv(llamacpp_build.SYSTEM_INFO_ENV_VAR, raising=False)  # the pretended build below decides

    monkeypatch.setattr(
        llamacpp_build, "build_features", lambda: {"CPU": {"AVX2": "1", "AVX512": "1", "AMX_INT8": "1"}}
    )
    finding = doctor.llamacpp_finding({"avx2", "fma"})
    assert not finding.ok and "AVX512, AMX_INT8" in finding.detail
    assert doctor.llamacpp_finding({"avx2", "avx512f", "amx_int8", "amx_tile"}).ok


def test_an_unwritable_cache_fails(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("TEAMS_RL_CACHE", str(blocked / "cache.sqlite"))
    finding = doctor.cache_finding()
    assert not finding.ok and "not writable" in finding.detail and "TEAMS_RL_CACHE" in finding.fix


def test_unknown_checks_are_refused(capsys):
    assert main(["doctor", "--checks", "expert,gpu"]) == 2
    assert "unknown check 'gpu'" in capsys.readouterr().err


@pytest.mark.slow
def test_doctor_passes_on_a_healthy_machine(capsys):
    """Every role makes one real request on the embedded models, in its own child process."""
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for role in ("expert", "reviewer", "encoder"):
        line = next(line for line in out.splitlines() if line.split()[1:2] == [role])
        assert line.startswith("ok")
    assert out.rstrip().endswith("all checks passed")
