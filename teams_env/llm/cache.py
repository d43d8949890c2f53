"""One SQLite cache for every LLM call, shared safely by threads and processes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CACHE_ENV_VAR = "TEAMS_RL_CACHE"


def default_cache_path() -> Path:
    """``$TEAMS_RL_CACHE`` if set, else ``$XDG_CACHE_HOME/teams-rl/llm-cache.sqlite``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "teams-rl" / "llm-cache.sqlite"


def cache_key(**parts: Any) -> str:
    """A stable key for one request: SHA-256 of its canonical JSON."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Key -> JSON value store in one SQLite file (WAL mode, so readers never block writers).

    Two processes may share a file: writes are single ``INSERT OR IGNORE`` transactions, so the
    first answer stored for a key wins and the others are dropped, which keeps reruns identical.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._db.commit()
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{self.path}: not a usable LLM cache ({error})") from error

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put_many(self, items: Mapping[str, Any]) -> None:
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in items.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO responses (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_open: dict[Path, ResponseCache] = {}
_open_lock = threading.Lock()


def open_cache(spec: str | os.PathLike[str] | None = "auto") -> ResponseCache | None:
    """``"auto"``: the default file; ``None``/``"none"``/``"off"``: no cache; else a file path.
    One connection per file in this process (environments of a run share it)."""
    if spec is None or str(spec).lower() in {"none", "off", "false", ""}:
        return None
    path = (default_cache_path() if str(spec) == "auto" else Path(spec).expanduser()).resolve()
    with _open_lock:
        if path not in _open:
            _open[path] = ResponseCache(path)
        return _open[path]
