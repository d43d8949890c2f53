"""Transition packs: the instruction-rewriting MDP of some seeds, recorded to a fixed depth.

With greedy decoding the live environment is deterministic, so the tree of every action sequence
from a seed is the MDP itself. A pack is that tree, a directory of two files:

- ``nodes.jsonl.gz``: one JSON object per node, the seeds first (empty ``path``), then every node of
  depth 1, 2, ...: ``seed_id``, ``path`` (the action indices from the seed), ``instruction`` (the
  rewrite the last step produced; the seed text at a root), ``state`` (what the next step rewrites:
  the rewrite, or the instruction before it after a failed step with ``on_failure="revert"``),
  ``reward`` (what the live env returned for that step), ``queries`` (expert and reviewer requests
  the step made) and ``info`` (the step's other ``info`` fields: ``verdict``, ``p_not_equal``,
  ``valid``, ``invalid_reason``, ``leaked_phrase``, ...).
- ``manifest.json``: everything that produced the nodes (backends, prompts hash, reviewer method
  and threshold, encoder, decoding, package versions), the depth, the seeds, node counts and the
  SHA-256 of the uncompressed nodes file, which loading checks.

Beside them, ``embeddings.npz`` holds the sentence embeddings of the pack's texts for the replay
env's observations (:mod:`teams_env.replay.embeddings`); it is derived, and rebuilt when missing.

Every problem with a pack is a one-line :class:`PackError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teams_env.json_files import read_json_object

PACK_FORMAT = "teams-rl transition pack"
PACK_VERSION = 1
NODES_FILE = "nodes.jsonl.gz"
MANIFEST_FILE = "manifest.json"
SHIPPED_PACKS = Path(__file__).parents[1] / "data" / "packs"
"""The packs shipped with the package, by name (``default``: the embedded models' depth-3 pack)."""

Path_ = tuple[int, ...]


class PackError(ValueError):
    """A pack that cannot be used (missing, corrupt, or recorded with other settings)."""


@dataclass(frozen=True)
class Node:
    """One state of the recorded tree, and the step that reached it (none at a root)."""

    seed_id: str
    path: Path_
    instruction: str
    state: str
    reward: float = 0.0
    queries: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, Path_]:
        return self.seed_id, self.path

    @property
    def depth(self) -> int:
        return len(self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed_id": self.seed_id,
            "path": list(self.path),
            "instruction": self.instruction,
            "state": self.state,
            "reward": self.reward,
            "queries": self.queries,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(
            seed_id=str(data["seed_id"]),
            path=tuple(int(a) for a in data["path"]),
            instruction=str(data["instruction"]),
            state=str(data["state"]),
            reward=float(data["reward"]),
            queries={str(k): int(v) for k, v in data.get("queries", {}).items()},
            info=dict(data.get("info", {})),
        )


def node_line(node: Node) -> str:
    """The node's line in the nodes file (canonical: sorted keys, no spaces)."""
    return json.dumps(node.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


@dataclass
class Pack:
    """A loaded pack: its manifest and its nodes, looked up by (seed id, action path)."""

    directory: Path
    manifest: dict[str, Any]
    nodes: dict[tuple[str, Path_], Node]

    @property
    def depth(self) -> int:
        return int(self.manifest["depth"])

    @property
    def seeds(self) -> list[dict[str, str]]:
        """``{"id", "text"}`` per seed, in the order they were recorded."""
        return list(self.manifest["seeds"])

    @property
    def n_actions(self) -> int:
        return len(self.manifest["action_names"])

    @property
    def reviewer_head_spec(self) -> str | None:
        """The shipped review head (:data:`~teams_env.reward.review_head.SHIPPED_HEADS`) the pack
        was recorded with, found by its fingerprint: its live env judges with that head. ``None``
        for a pack recorded without a head or with a head that is not shipped."""
        from teams_env.reward.review_head import shipped_head_name

        fingerprint = self.manifest.get("reviewer_head_sha256")
        return shipped_head_name(str(fingerprint)) if fingerprint else None

    @property
    def expert_spec(self) -> str | None:
        """The backend spec of the expert the pack was recorded with, where it is one of the shipped
        experts (the embedded model prompted, or the specialist with its shipped adapter), the same
        files by content: a policy trained on the pack drives that expert live. ``None`` for any
        other expert, an earlier adapter included."""
        from teams_env.llm.embedded import embedded_gguf_path
        from teams_env.llm.identity import file_fingerprint, gguf_model_id
        from teams_env.llm.llamacpp import SPECIALIST_ADAPTER

        identity = str(self.manifest.get("expert", ""))
        kind, _, model = identity.partition(":")
        model = model.split("?", 1)[0]  # the computation's tags, not the files
        base = gguf_model_id(embedded_gguf_path())
        adapter = f"+lora={SPECIALIST_ADAPTER.name}@{file_fingerprint(SPECIALIST_ADAPTER)}"
        return {("llamacpp", base): "llamacpp", ("specialist", base + adapter): "specialist"}.get(
            (kind, model)
        )

    def node(self, seed_id: str, path: Path_) -> Node:
        try:
            return self.nodes[(seed_id, tuple(path))]
        except KeyError:
            raise PackError(
                f"{self.directory}: no node for seed '{seed_id}' after actions {list(path)} "
                f"(the pack holds depth {self.depth})"
            ) from None

    def split(self, name: str) -> list[str]:
        """The seed ids of a split: ``"all"``, or one of the manifest's (``"train"``, ``"heldout"``)."""
        if name == "all":
            return [seed["id"] for seed in self.seeds]
        splits = self.manifest.get("splits", {})
        if name not in splits:
            raise PackError(
                f"{self.directory}: no seed split '{name}'; choose all or {', '.join(sorted(splits)) or '(none)'}"
            )
        return list(splits[name])


def write_pack(directory: str | os.PathLike[str], manifest: dict[str, Any], nodes: list[Node]) -> Path:
    """Write ``nodes`` (in the pack's order) and ``manifest`` (completed with the format, counts and
    content hash) to ``directory``; each file is written whole, then renamed into place."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(nodes, key=_order)
    payload = "".join(node_line(node) for node in ordered).encode("utf-8")
    per_depth: dict[int, int] = {}
    for node in ordered:
        per_depth[node.depth] = per_depth.get(node.depth, 0) + 1
    manifest = {
        **manifest,
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "counts": {
            "nodes": len(ordered),
            "transitions": len(ordered) - per_depth.get(0, 0),
            "per_depth": [per_depth.get(d, 0) for d in range(max(per_depth, default=-1) + 1)],
        },
        "content_sha256": hashlib.sha256(payload).hexdigest(),
    }
    nodes_tmp = out / (NODES_FILE + ".tmp")
    with open(nodes_tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(payload)
    os.replace(nodes_tmp, out / NODES_FILE)
    manifest_tmp = out / (MANIFEST_FILE + ".tmp")
    manifest_tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(manifest_tmp, out / MANIFEST_FILE)
    return out


def _order(node: Node) -> tuple[int, str, Path_]:
    return node.depth, node.seed_id, node.path


def pack_directory(spec: str | os.PathLike[str]) -> Path:
    """The directory of a pack named on a command line or in a config: a path, or the name of a
    shipped pack (``default``) where no such directory exists here."""
    path = Path(spec).expanduser()
    if not path.exists() and len(path.parts) == 1 and (SHIPPED_PACKS / path).is_dir():
        return SHIPPED_PACKS / path
    return path


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    directory = pack_directory(directory)
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        shipped = ", ".join(sorted(p.name for p in SHIPPED_PACKS.iterdir() if p.is_dir()))
        raise PackError(
            f"{directory}: transition pack not found; name a pack directory or a shipped pack "
            f"({shipped}), or record one with 'teams-rl record --seeds FILE --depth D --out PACK'"
        )
    try:
        manifest = read_json_object(
            path, "a teams-rl transition pack manifest", format=PACK_FORMAT, version=PACK_VERSION
        )
    except (FileNotFoundError, ValueError) as error:  # one kind of error for every pack problem
        raise PackError(str(error)) from None
    return manifest


def load_pack(directory: str | os.PathLike[str]) -> Pack:
    """Load and verify a pack: a missing file, a content hash that does not match, or a tree with a
    missing node is a one-line :class:`PackError`. ``directory`` may name a shipped pack."""
    directory = pack_directory(directory)
    manifest = read_manifest(directory)
    nodes_path = directory / NODES_FILE
    try:
        payload = gzip.decompress(nodes_path.read_bytes())
    except FileNotFoundError:
        raise PackError(f"{nodes_path}: not found; the pack is incomplete") from None
    except (OSError, EOFError, zlib.error) as error:
        raise PackError(f"{nodes_path}: corrupt nodes file ({error})") from None
    if hashlib.sha256(payload).hexdigest() != manifest.get("content_sha256"):
        raise PackError(f"{nodes_path}: content hash does not match the manifest; the pack is corrupt")
    nodes: dict[tuple[str, Path_], Node] = {}
    for number, line in enumerate(payload.decode("utf-8").splitlines(), start=1):
        try:
            node = Node.from_json(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise PackError(f"{nodes_path}:{number}: bad node ({error})") from None
        nodes[node.key] = node
    pack = Pack(directory, manifest, nodes)
    _check_complete(pack, nodes_path)
    return pack


_shared: dict[tuple[Path, int], Pack] = {}


def shared_pack(directory: str | os.PathLike[str]) -> Pack:
    """One loaded pack per directory (and manifest version) in this process: vector envs share it."""
    resolved = pack_directory(directory).resolve()
    try:
        stamp = (resolved / MANIFEST_FILE).stat().st_mtime_ns
    except OSError:
        stamp = 0
    if (resolved, stamp) not in _shared:
        _shared[(resolved, stamp)] = load_pack(resolved)
    return _shared[(resolved, stamp)]


def _check_complete(pack: Pack, where: Path) -> None:
    """Every key is a seed of the manifest and a path within the depth and the actions; with the
    count right, every node of the tree is there."""
    seed_ids = {seed["id"] for seed in pack.seeds}
    for seed_id, path in pack.nodes:
        if (
            seed_id not in seed_ids
            or len(path) > pack.depth
            or any(not 0 <= a < pack.n_actions for a in path)
        ):
            raise PackError(f"{where}: node of seed '{seed_id}' at {list(path)} is outside the recorded tree")
    expected = sum(pack.n_actions**d for d in range(pack.depth + 1)) * len(pack.seeds)
    if len(pack.nodes) != expected:
        raise PackError(
            f"{where}: {len(pack.nodes)} nodes, but {len(pack.seeds)} seeds to depth {pack.depth} "
            f"with {pack.n_actions} actions need {expected}"
        )
    for seed in pack.seeds:
        if (seed["id"], ()) not in pack.nodes:
            raise PackError(f"{where}: no root node for seed '{seed['id']}'")
