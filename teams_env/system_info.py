"""The machine and package versions a result was measured on (benchmarks and reports quote it)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = (
    "teams-rl",
    "torch",
    "transformers",
    "llama-cpp-python",
    "stable-baselines3",
    "sb3-contrib",
    "trl",
    "gymnasium",
)


def machine() -> dict[str, Any]:
    """Where the numbers come from: CPU, cores, memory, accelerator, package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    try:
        import torch

        accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        accelerator = "unknown"
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "accelerator": accelerator,
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": versions,
    }
