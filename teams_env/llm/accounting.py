"""One accounting of LLM use per role (expert, reviewer, responder): reports quote these numbers."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields

ROLES = ("expert", "reviewer", "responder")


@dataclass
class RoleUsage:
    """What one role cost: queries sent to a model, answers found in the cache, tokens, seconds."""

    queries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: RoleUsage) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


class QueryLedger:
    """Thread-safe counters per role; one ledger is shared by every service of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, RoleUsage] = {}

    def record(self, role: str, usage: RoleUsage) -> None:
        with self._lock:
            self._usage.setdefault(role, RoleUsage()).add(usage)

    def usage(self, role: str) -> RoleUsage:
        with self._lock:
            return RoleUsage(**asdict(self._usage.get(role, RoleUsage())))

    def snapshot(self) -> dict[str, RoleUsage]:
        with self._lock:
            return {role: RoleUsage(**asdict(usage)) for role, usage in self._usage.items()}

    def total(self) -> RoleUsage:
        total = RoleUsage()
        for usage in self.snapshot().values():
            total.add(usage)
        return total

    def as_dict(self) -> dict[str, dict[str, float]]:
        report = {role: asdict(usage) for role, usage in sorted(self.snapshot().items())}
        report["total"] = asdict(self.total())
        return report

    def format_table(self) -> str:
        """A fixed-width table of the counters, one row per role and a total."""
        header = f"{'role':<10} {'queries':>8} {'cache hits':>10} {'prompt tok':>11} {'output tok':>11} {'seconds':>8}"
        lines = [header, "-" * len(header)]
        rows = [*sorted(self.snapshot().items()), ("total", self.total())]
        for role, usage in rows:
            lines.append(
                f"{role:<10} {usage.queries:>8} {usage.cache_hits:>10} {usage.prompt_tokens:>11} "
                f"{usage.completion_tokens:>11} {usage.seconds:>8.1f}"
            )
        return "\n".join(lines)
