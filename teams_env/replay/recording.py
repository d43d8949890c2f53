"""Record a transition pack (``teams-rl record``): enumerate every action sequence from each seed to
a depth with the live env's expert, reviewer and validity rules, and write the pack
(:mod:`teams_env.replay.pack`).

Each depth is recorded in batches across all nodes and seeds: one batched expert call and one
batched reviewer call per batch (identical requests in a batch are sent once). Every outcome goes
through :meth:`TeaMsInstructEnv.finish_step` of a live env positioned at the parent node, so a node
holds exactly the reward, next state (``on_failure`` keep or revert) and ``info`` the live env
gives. Finished batches are appended to ``journal.jsonl`` in the pack directory; running the same
command again skips them, and a deeper recording of an existing pack records only the new depths.
Last, the embeddings of the pack's texts are written beside it (:mod:`teams_env.replay.embeddings`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teams_env.env_config import ENV_DEFAULTS
from teams_env.replay.pack import (
    MANIFEST_FILE,
    Node,
    Pack,
    PackError,
    load_pack,
    node_line,
    read_manifest,
    write_pack,
)

if TYPE_CHECKING:
    from teams_env.env import TeaMsInstructEnv

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
EPISODE_KEYS = frozenset(
    {"seed_id", "step", "action", "action_name", "previous_instruction", "instruction", "state_instruction"}
)
"""``info`` keys the replay env rebuilds from the episode; a node stores the step's other keys."""


def prompts_sha256() -> str:
    """A hash of every prompt that shapes a rewrite or a verdict (actions, rewriter, reviewer, head)."""
    from teams_env import actions
    from teams_env.reward import reviewer
    from teams_env.reward.review_head import prompt_fingerprint

    parts = [
        actions.REWRITER_SYSTEM,
        [asdict(action) for action in actions.ACTIONS],
        reviewer.REVIEW_QUESTION,
        [reviewer.FIRST_MARKER, reviewer.SECOND_MARKER, reviewer.ANSWER_LINE],
        reviewer.DEMONSTRATIONS,
        prompt_fingerprint(),
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_python_scalar))


def _python_scalar(value: Any) -> Any:
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    raise TypeError(f"cannot record a {type(value).__name__} in a pack")


def recording_settings(env: TeaMsInstructEnv, requested: dict[str, Any]) -> dict[str, Any]:
    """What decides every node of a pack: the same settings give the same tree."""
    from teams_env.actions import ACTION_NAMES

    engine = env.engine
    return _plain(
        {
            "expert": engine.expert.backend.identity,
            "reviewer": engine.reviewer.service.backend.identity,
            "review_method": requested.get("review_method", ENV_DEFAULTS.review_method),
            "reviewer_threshold": requested.get("reviewer_threshold", ENV_DEFAULTS.reviewer_threshold),
            "reviewer_head": str(requested.get("reviewer_head", ENV_DEFAULTS.reviewer_head)),
            # The head's own hash: "bundled" names other weights (or features) after a retrain.
            "reviewer_head_sha256": engine.reviewer.head.fingerprint
            if engine.reviewer.head is not None and engine.reviewer.method == "head"
            else None,
            "encoder": env.encoder.name,
            "encoder_dim": env.encoder.dim,
            "on_failure": env.on_failure,
            "leak_penalty": env.leak_penalty,
            "decoding": engine.params.as_dict(),
            "action_decoding": {
                name: engine.action_params(index).as_dict() for index, name in enumerate(ACTION_NAMES)
            },
            "action_names": list(ACTION_NAMES),
            "prompts_sha256": prompts_sha256(),
        }
    )


class Journal:
    """Finished nodes, one JSON line each, after a header line with the recording settings."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.nodes: dict[tuple[str, tuple[int, ...]], Node] = {}
        self.seconds = 0.0
        self.requests = 0
        if path.is_file():
            self._read(settings)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps({"settings": settings}, sort_keys=True) + "\n")

    def _read(self, settings: dict[str, Any]) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0])["settings"] if lines else None
        except (json.JSONDecodeError, KeyError, TypeError):
            header = None
        if header is None:
            raise PackError(f"{self.path}: not a recording journal; delete it to start again")
        changed = sorted(k for k in set(header) | set(settings) if header.get(k) != settings.get(k))
        if changed:
            raise PackError(
                f"{self.path}: recorded with other settings ({', '.join(changed)}); "
                "record into another directory or delete the journal"
            )
        good = 1
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                if "node" in entry:
                    node = Node.from_json(entry["node"])
                    self.nodes[node.key] = node
                else:
                    self.seconds += float(entry["batch"]["seconds"])
                    self.requests += int(entry["batch"]["requests"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                if number < len(lines):  # only the last line may be cut off by an interruption
                    raise PackError(f"{self.path}:{number}: corrupt journal line") from None
                break
            good = number
        if good < len(lines):
            with open(self.path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines[:good]) + "\n")

    def append(self, nodes: list[Node], seconds: float = 0.0, requests: int = 0) -> None:
        text = "".join('{"node":' + node_line(node)[:-1] + "}\n" for node in nodes)
        if requests:
            text += json.dumps({"batch": {"seconds": seconds, "requests": requests}}) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        for node in nodes:
            self.nodes[node.key] = node
        self.seconds += seconds
        self.requests += requests


def _children(env: TeaMsInstructEnv, parents: list[tuple[Node, int]]) -> tuple[list[Node], int]:
    """The nodes reached from each (parent, action): one batched rewrite and one batched judgement
    of the distinct requests, each outcome finished by the live env placed at its parent."""
    requests = list(dict.fromkeys((parent.state, action) for parent, action in parents))
    rewrites = dict(zip(requests, env.engine.rewrite(requests)))
    judgements = dict(
        zip(
            requests,
            env.engine.judge(
                [(before, rewrites[(before, a)]) for before, a in requests], [a for _, a in requests]
            ),
        )
    )
    env.encoder.encode([rewrite.text for rewrite in rewrites.values()])  # one batch for the observations
    children = []
    for parent, action in parents:
        # The live env at the parent node, as an episode that took parent.path would leave it.
        env._instruction = parent.state
        env._seed_id = parent.seed_id
        env._history = list(parent.path)
        env._step = len(parent.path)
        env._episode_queries = {"expert": 0, "reviewer": 0}
        plan = env.plan_step(action)
        _, reward, _, _, info = env.finish_step(
            plan, rewrites[(parent.state, action)], judgements[(parent.state, action)]
        )
        children.append(
            Node(
                seed_id=parent.seed_id,
                path=(*parent.path, action),
                instruction=info["instruction"],
                state=info["state_instruction"],
                reward=float(reward),
                queries=dict(info["queries"]),
                info=_plain({k: v for k, v in info.items() if k not in EPISODE_KEYS and k != "queries"}),
            )
        )
    return children, len(requests)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _split(seed_ids: list[str], heldout: float, split_seed: int) -> dict[str, list[str]]:
    import numpy as np

    count = round(len(seed_ids) * heldout)
    chosen = set(np.random.default_rng(split_seed).permutation(len(seed_ids))[:count].tolist())
    return {
        "train": [s for i, s in enumerate(seed_ids) if i not in chosen],
        "heldout": [s for i, s in enumerate(seed_ids) if i in chosen],
    }


def record(
    out: str | os.PathLike[str],
    *,
    depth: int,
    batch_size: int = 64,
    heldout: float = 0.25,
    split_seed: int = 0,
    progress: bool = True,
    **env_kwargs: Any,
) -> Path:
    """Record the pack of ``env_kwargs["seeds"]`` to ``depth`` into directory ``out`` (see the
    module docstring); ``heldout``: the share of seeds set aside as the ``heldout`` split."""
    from tqdm.auto import tqdm

    from teams_env.actions import ACTION_NAMES
    from teams_env.env import TeaMsInstructEnv
    from teams_env.replay.embeddings import write_embeddings
    from teams_env.system_info import machine

    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 0.0 <= heldout < 1.0:
        raise ValueError(f"heldout must be in [0, 1), got {heldout}")
    out = Path(out)
    # A pack stores no observations (a replay env builds its own, with or without verdicts), and
    # the recorder sets its env's state node by node: its env observes the plain spaces.
    env_kwargs = {**env_kwargs, "action_type": "discrete", "max_steps": depth, "observe_verdicts": False}
    if env_kwargs.get("temperature", ENV_DEFAULTS.temperature) > 0:
        logger.warning("recording with temperature > 0: the pack is one sample of each node, not the MDP")
    env = TeaMsInstructEnv(**env_kwargs)
    settings = recording_settings(env, env_kwargs)
    previous = _previous_pack(out, settings) if (out / MANIFEST_FILE).is_file() else None
    journal = Journal(out / JOURNAL_FILE, settings)
    if previous is not None:  # a deeper recording of a finished pack records only the new depths
        missing = [node for node in previous.nodes.values() if node.key not in journal.nodes]
        journal.append(missing)
        if len(missing) == len(previous.nodes):  # its recording time, counted once
            journal.seconds += float(previous.manifest.get("recording", {}).get("seconds") or 0.0)
            journal.requests += int(previous.manifest.get("recording", {}).get("requests") or 0)

    roots = [Node(seed.id, (), seed.text, seed.text) for seed in env.seeds]
    journal.append([root for root in roots if root.key not in journal.nodes])
    n_actions = len(ACTION_NAMES)
    total = len(roots) * sum(n_actions**d for d in range(1, depth + 1))
    done = sum(1 for node in journal.nodes.values() if 0 < node.depth <= depth)
    bar = tqdm(total=total, initial=min(done, total), unit="node", desc="record", disable=not progress)
    frontier = roots
    for level in range(1, depth + 1):
        todo = [
            (parent, action)
            for parent in frontier
            for action in range(n_actions)
            if (parent.seed_id, (*parent.path, action)) not in journal.nodes
        ]
        for batch in _batches(todo, batch_size):
            start = time.perf_counter()
            children, requests = _children(env, batch)
            journal.append(children, time.perf_counter() - start, requests)
            bar.update(len(children))
        frontier = [
            journal.nodes[(parent.seed_id, (*parent.path, action))]
            for parent in frontier
            for action in range(n_actions)
        ]
        logger.debug("depth %d recorded: %d nodes", level, len(frontier))
    bar.close()

    seed_ids = [seed.id for seed in env.seeds]
    keep = set(seed_ids)
    nodes = [node for node in journal.nodes.values() if node.seed_id in keep and node.depth <= depth]
    reviewer = env.engine.reviewer
    manifest = {
        "depth": depth,
        "seeds": [{"id": seed.id, "text": seed.text} for seed in env.seeds],
        "seed_source": str(env_kwargs.get("seeds", ENV_DEFAULTS.seeds)),
        "splits": _split(seed_ids, heldout, split_seed),
        **settings,
        "resolved_review_method": reviewer.method,
        "resolved_reviewer_threshold": reviewer.decision_threshold,
        "encoder_spec": env_kwargs.get("encoder") if isinstance(env_kwargs.get("encoder"), str) else None,
        "max_instruction_chars": env.max_instruction_chars,
        "machine": machine(),
        "recording": {
            "seconds": round(journal.seconds, 3),
            "requests": journal.requests,
            "requests_per_second": round(journal.requests / journal.seconds, 3) if journal.seconds else None,
            "batch_size": batch_size,
        },
    }
    write_pack(out, manifest, nodes)
    (out / JOURNAL_FILE).unlink()
    write_embeddings(out, env.encoder)  # a replay env then looks its observations up
    logger.info("recorded %d nodes to %s (%.1f s of model calls)", len(nodes), out, journal.seconds)
    return out


def _previous_pack(out: Path, settings: dict[str, Any]) -> Pack:
    """The finished pack in ``out``, if it was recorded with these settings (else a one-line error)."""
    manifest = read_manifest(out)
    changed = sorted(k for k in settings if _plain(manifest.get(k)) != settings[k])
    if changed:
        raise PackError(
            f"{out}: holds a pack recorded with other settings ({', '.join(changed)}); record into another directory"
        )
    return load_pack(out)
