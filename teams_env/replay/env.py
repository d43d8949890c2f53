"""The instruction-rewriting MDP served from a recorded transition pack: no LLM, thousands of steps
a second, the same spaces, rewards and ``info`` as the live env on the recorded seeds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.base_env import InstructionEnvCore
from teams_env.encoder import DeferredEncoder, SentenceEncoder, shared_encoder
from teams_env.env_config import ENV_DEFAULTS
from teams_env.replay.embeddings import EmbeddingTable, shared_embeddings
from teams_env.replay.pack import MANIFEST_FILE, Node, Pack, PackError, shared_pack
from teams_env.replay.rewards import Episode, RewardFn, Transition, resolve_reward
from teams_env.reward.formula import info_reward, rewarded_in

DEFAULT_PACK = Path(__file__).parents[1] / "data" / "packs" / "default"
EMBEDDED_ENCODER_NAME = "all-MiniLM-L6-v2"
"""The name the default encoder records in a pack (``teams_env.llm.embedded``, not imported here)."""

NodeKey = tuple[str, tuple[int, ...]]


def pack_encoder_spec(manifest: dict[str, Any]) -> str:
    """The spec that builds the encoder a pack was recorded with (``"default"`` for the embedded one)."""
    spec = manifest.get("encoder_spec") or str(manifest.get("encoder"))
    return "default" if spec == EMBEDDED_ENCODER_NAME else spec


class TeaMsInstructReplayEnv(InstructionEnvCore):
    """
    ## Description

    The TeaMs-RL instruction-rewriting MDP of :class:`~teams_env.env.TeaMsInstructEnv`, replayed
    from a transition pack recorded by ``teams-rl record`` (:mod:`teams_env.replay.pack`). With greedy
    decoding the live env is deterministic, so the pack is exactly the MDP it defines for the
    recorded seeds, up to the recorded depth. No model is loaded: a step is a dictionary lookup.

    ## Action Space

    ``TeaMsInstructReplay-v0``: ``Box(-1, 1, (action_dim,), float32)``, decoded to the nearest
    action prompt as in the live env. ``TeaMsInstructReplayDiscrete-v0``: ``Discrete(6)``.

    ## Observation Space

    As the live env: ``observation="text"`` gives ``Box(-1, 1, (encoder_dim + 6 * max_steps + 1,))``
    (the current instruction's embedding by the pack's encoder, looked up in the pack's
    ``embeddings.npz``, computed once when missing or stale (:mod:`teams_env.replay.embeddings`); the
    one-hot actions so far; the fraction of steps done); ``observation="last_action"`` gives a
    one-hot of the last action. ``observe_verdicts=True`` adds each step's verdict
    and the instruction's length, as the live env does, from what the pack recorded.

    ## Rewards

    ``reward="reviewer"`` (default): the live env's reward, as recorded. ``"novelty"``: the cosine
    distance from the rewrite to the nearest earlier text of the episode (embeddings from the same
    ``embeddings.npz``, which holds every rewrite of the pack too). ``"reviewer*novelty"``:
    their product. ``"kept-vendi-gain"``: what an accepted rewrite adds to the Vendi score of the
    episode's kept set (the starting instruction and the rewrites accepted before it).
    ``reward_fn(transition, episode) -> float``: any function of your own (:mod:`teams_env.replay.rewards`).

    ## Starting State

    A seed of the pack drawn with ``self.np_random``, or ``reset(options={"instruction": TEXT})``
    for a seed's text, or ``reset(options={"seed_id": ID})`` for a seed by its id. A text that is
    not a recorded seed is an error: the pack holds no state for it.

    ## Episode End

    Terminated after ``max_steps`` rewrites (at most the pack's depth). Never truncated.

    ## Info

    The live env's keys: ``previous_instruction``, ``instruction``, ``state_instruction``,
    ``action``, ``action_name``, ``verdict``, ``p_not_equal``, ``review_method``, ``valid``,
    ``invalid_reason``, ``p_valid``, ``leaked_phrase``, ``rewrite_failure``, ``rewrite_cut_off``,
    ``seed_id``, ``step`` and ``queries`` (the requests the live env made for the episode).

    ## Arguments

    - ``pack``: the pack directory (default: the one shipped in ``teams_env/data/packs/default``)
      or a loaded :class:`~teams_env.replay.pack.Pack`.
    - ``seeds``: ``"all"``, a split of the pack (``"train"``, ``"heldout"``) or a list of seed ids.
    - ``action_type``, ``action_dim``, ``observation``, ``observe_verdicts``: as the live env.
    - ``max_steps``: rewrites per episode, at most the pack's depth (default: the depth).
    - ``encoder``: ``None`` (the pack's) or the encoder you expect; another one is an error.
    - ``on_failure``, ``leak_penalty``: ``None`` (the pack's) or the values you expect; others are
      an error (the pack would have to be recorded again).
    - ``reward``, ``reward_fn``: see Rewards.
    - ``render_mode``: ``"ansi"`` or ``None``.
    """

    def __init__(
        self,
        *,
        pack: str | os.PathLike[str] | Pack = DEFAULT_PACK,
        seeds: str | list[str] = "all",
        action_type: Literal["continuous", "discrete"] = "continuous",
        action_dim: int = 5,
        observation: Literal["text", "last_action"] = "text",
        observe_verdicts: bool = ENV_DEFAULTS.observe_verdicts,
        max_steps: int | None = None,
        encoder: str | SentenceEncoder | None = None,
        on_failure: str | None = None,
        leak_penalty: float | None = None,
        reward: str = "reviewer",
        reward_fn: RewardFn | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.pack = pack if isinstance(pack, Pack) else shared_pack(pack)
        where = self.pack.directory / MANIFEST_FILE
        manifest = self.pack.manifest
        if list(manifest.get("action_names", [])) != list(ACTION_NAMES):
            raise PackError(
                f"{where}: recorded with actions {manifest.get('action_names')}, this env's are {list(ACTION_NAMES)}"
            )
        self.max_steps = self.pack.depth if max_steps is None else int(max_steps)
        if not 1 <= self.max_steps <= self.pack.depth:
            raise PackError(
                f"{where}: max_steps {self.max_steps} is beyond the pack's depth {self.pack.depth} "
                "(record a deeper pack with teams-rl record --depth)"
            )
        for name, wanted in (("on_failure", on_failure), ("leak_penalty", leak_penalty)):
            if wanted is not None and wanted != manifest.get(name):
                raise PackError(f"{where}: recorded with {name}={manifest.get(name)!r}, not {wanted!r}")
        self.on_failure = str(manifest.get("on_failure"))
        self.leak_penalty = float(manifest.get("leak_penalty", 0.0))
        self.encoder = self._encoder(encoder, where)
        self.reward_fn, self._memoise = resolve_reward(reward, reward_fn)
        self.reward_name = "custom" if reward_fn is not None else reward

        texts = {seed["id"]: seed["text"] for seed in self.pack.seeds}
        chosen = self.pack.split(seeds) if isinstance(seeds, str) else list(seeds)
        unknown = [seed_id for seed_id in chosen if seed_id not in texts]
        if unknown or not chosen:
            raise PackError(f"{where}: no recorded seed {', '.join(unknown) or '(none chosen)'}")
        self.seed_ids = chosen
        self._seed_texts = texts
        self._by_text = {text: seed_id for seed_id, text in texts.items()}

        self._set_up_spaces(action_type, action_dim, observation, render_mode, observe_verdicts)
        # Every text an episode can reach is in the pack, so its embedding is looked up, not computed.
        self._embeddings: EmbeddingTable | None = (
            shared_embeddings(self.pack, self.encoder)
            if observation == "text" or self.reward_name != "reviewer"
            else None
        )

        self._rewards: dict[NodeKey, float] = {}
        self._pack_seed = ""
        self._seed_id = ""
        self._instruction = ""
        self._history: list[int] = []
        self._accepted: list[bool] = []
        self._transitions: list[Transition] = []
        self._queries = {"expert": 0, "reviewer": 0}
        self._last_info: dict[str, Any] = {}

    def _encoder(self, requested: str | SentenceEncoder | None, where: Path) -> SentenceEncoder:
        manifest = self.pack.manifest
        recorded = str(manifest.get("encoder"))
        if isinstance(requested, SentenceEncoder):
            encoder = requested
        elif requested is None or requested == manifest.get("encoder_spec"):
            encoder = DeferredEncoder(
                pack_encoder_spec(manifest), recorded, int(manifest.get("encoder_dim", 0))
            )
        else:
            encoder = shared_encoder(requested)
        if encoder.name != recorded or encoder.dim != manifest.get("encoder_dim"):
            raise PackError(
                f"{where}: recorded with encoder '{recorded}' ({manifest.get('encoder_dim')} dims), "
                f"not '{encoder.name}' ({encoder.dim} dims)"
            )
        return encoder

    # -- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        text = self._requested_instruction(options)
        if text is not None:
            if text not in self._by_text:
                raise PackError(
                    f"{self.pack.directory}: options['instruction'] is not a recorded seed; the pack "
                    "holds no state for it (record it with teams-rl record)"
                )
            self._pack_seed = self._by_text[text]
            self._seed_id = str(options.get("seed_id", "custom"))
        elif "seed_id" in options:
            if options["seed_id"] not in self._seed_texts:
                raise PackError(f"{self.pack.directory}: no recorded seed '{options['seed_id']}'")
            self._pack_seed = self._seed_id = str(options["seed_id"])
        else:
            self._pack_seed = self.seed_ids[int(self.np_random.integers(len(self.seed_ids)))]
            self._seed_id = self._pack_seed
        self._instruction = self._seed_texts[self._pack_seed]
        self._history = []
        self._accepted = []
        self._transitions = []
        self._queries = {"expert": 0, "reviewer": 0}
        self._last_info = {"instruction": self._instruction, "seed_id": self._seed_id, "step": 0}
        return self._observation(), dict(self._last_info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if len(self._history) >= self.max_steps or not self._instruction:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        index = self.decode_action(action)
        node = self.pack.node(self._pack_seed, (*self._history, index))
        transition = self._transition(node, self._instruction, self._seed_id)
        reward = self._reward(node, transition)
        self._transitions.append(transition)
        self._history.append(index)
        self._accepted.append(rewarded_in(node.info))
        self._instruction = node.state
        for role in self._queries:
            self._queries[role] += node.queries.get(role, 0)
        self._last_info = {
            "seed_id": self._seed_id,
            "step": len(self._history),
            "action": index,
            "action_name": ACTION_NAMES[index],
            "previous_instruction": transition.previous_instruction,
            "instruction": node.instruction,
            "state_instruction": node.state,
            "p_good": None,  # a pack recorded before GOOD heads
            "good": None,
            **node.info,
            "queries": dict(self._queries),
            "reward": reward,
        }
        terminated = len(self._history) >= self.max_steps
        return self._observation(), reward, terminated, False, dict(self._last_info)

    def _embedding(self) -> np.ndarray:
        assert self._embeddings is not None  # loaded for text observations
        return self._embeddings.vector(self._instruction)

    # -- the recorded tree ------------------------------------------------------------
    @property
    def node_key(self) -> NodeKey:
        """(pack seed id, actions so far): the current state in the pack."""
        return self._pack_seed, tuple(self._history)

    def transition_reward(self, seed_id: str, path: tuple[int, ...]) -> float:
        """The reward of the last step of ``path`` from seed ``seed_id`` (for dynamic programming)."""
        if (seed_id, path) in self._rewards:
            return self._rewards[(seed_id, path)]
        before = self._seed_texts[seed_id]
        transitions = []
        for depth in range(1, len(path) + 1):
            node = self.pack.node(seed_id, path[:depth])
            transitions.append(self._transition(node, before, seed_id))
            before = node.state
        return self._reward(self.pack.node(seed_id, path), transitions[-1], transitions[:-1], seed_id)

    def _transition(self, node: Node, before: str, label: str) -> Transition:
        return Transition(
            seed_id=label,
            step=node.depth,
            action=node.path[-1],
            previous_instruction=before,
            instruction=node.instruction,
            state_instruction=node.state,
            reviewer_reward=info_reward(node.info, self.leak_penalty),
            info=node.info,
        )

    def _reward(
        self,
        node: Node,
        transition: Transition,
        earlier: list[Transition] | None = None,
        seed_id: str | None = None,
    ) -> float:
        if self._memoise and node.key in self._rewards:
            return self._rewards[node.key]
        seed_id = seed_id or self._pack_seed
        episode = Episode(
            seed_id=transition.seed_id,
            start=self._seed_texts[seed_id],
            transitions=tuple(self._transitions if earlier is None else earlier),
            encoder=self.encoder,
            table=self._embeddings,
        )
        value = float(self.reward_fn(transition, episode))
        if self._memoise:
            self._rewards[node.key] = value
        return value
