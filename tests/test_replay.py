"""The replay env: the live env's MDP served from a pack recorded on the scripted backend, with the
same trajectories, rewards, observations and info; the checkers; clear errors; pluggable rewards."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from teams_env import REPLAY_ENV_IDS
from teams_env.encoder import HashingEncoder
from teams_env.env import TeaMsInstructEnv
from teams_env.llm.scripted import ScriptedBackend
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.replay.pack import PackError
from teams_env.replay.recording import record

SEEDS = ("Explain why the sky is blue.", "List three uses of vinegar.")
DEPTH = 2


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    path.write_text("".join(f'{{"instruction": "{text}"}}\n' for text in SEEDS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory, seeds_file: Path) -> dict[str, Path]:
    """A depth-2 pack of the two seeds for each on_failure rule."""
    root = tmp_path_factory.mktemp("packs")
    return {
        rule: record(
            root / rule,
            depth=DEPTH,
            batch_size=7,
            progress=False,
            expert="scripted",
            encoder="hashing",
            cache=None,
            seeds=str(seeds_file),
            on_failure=rule,
        )
        for rule in ("keep", "revert")
    }


def _live(seeds_file: Path, **kwargs) -> TeaMsInstructEnv:
    return TeaMsInstructEnv(
        expert=ScriptedBackend(),
        encoder="hashing",
        cache=None,
        seeds=str(seeds_file),
        max_steps=DEPTH,
        **kwargs,
    )


def _assert_same_step(live_out, replay_out) -> None:
    (obs_a, reward_a, term_a, trunc_a, info_a), (obs_b, reward_b, term_b, trunc_b, info_b) = (
        live_out,
        replay_out,
    )
    np.testing.assert_array_equal(obs_a, obs_b)
    assert (reward_a, term_a, trunc_a) == (reward_b, term_b, trunc_b)
    assert info_a == info_b


@pytest.mark.parametrize("rule", ["keep", "revert"])
@pytest.mark.parametrize("observation", ["text", "last_action"])
def test_replay_equals_live_env_on_every_action_sequence(packs, seeds_file, rule, observation):
    live = _live(seeds_file, action_type="discrete", observation=observation, on_failure=rule)
    replay = TeaMsInstructReplayEnv(pack=packs[rule], action_type="discrete", observation=observation)
    assert replay.observation_space == live.observation_space
    assert replay.action_space == live.action_space
    rewarded = failed = 0
    for episode, actions in enumerate(itertools.product(range(6), repeat=DEPTH)):
        obs_a, info_a = live.reset(seed=episode)
        obs_b, info_b = replay.reset(seed=episode)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert info_a == info_b
        for action in actions:
            out_a = live.step(action)
            _assert_same_step(out_a, replay.step(action))
            rewarded += out_a[1] > 0
            failed += out_a[1] == 0
        assert replay.render() == live.render()
    assert rewarded and failed  # both kinds of step were compared


def test_replay_equals_live_env_with_continuous_actions(packs, seeds_file):
    live = _live(seeds_file, on_failure="keep")
    replay = gym.make("TeaMsInstructReplay-v1", pack=packs["keep"]).unwrapped
    np.testing.assert_array_equal(live.codec.prototypes, replay.codec.prototypes)
    rng = np.random.default_rng(0)
    for episode in range(10):
        obs_a, info_a = live.reset(seed=episode)
        obs_b, info_b = replay.reset(seed=episode)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert info_a == info_b
        for _ in range(DEPTH):
            action = rng.uniform(-1, 1, live.action_space.shape).astype(np.float32)
            _assert_same_step(live.step(action), replay.step(action))


def test_options_pick_a_recorded_seed(packs, seeds_file):
    live = _live(seeds_file, action_type="discrete", on_failure="keep")
    replay = TeaMsInstructReplayEnv(pack=packs["keep"], action_type="discrete")
    options = {"instruction": SEEDS[1], "seed_id": "mine"}
    obs_a, info_a = live.reset(seed=0, options=options)
    obs_b, info_b = replay.reset(seed=0, options=options)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert info_a == info_b
    _assert_same_step(live.step(3), replay.step(3))
    seed_id = replay.seed_ids[0]
    _, info = replay.reset(options={"seed_id": seed_id})
    assert info["instruction"] == SEEDS[0] and replay.node_key == (seed_id, ())


@pytest.mark.parametrize("env_id", REPLAY_ENV_IDS)
@pytest.mark.parametrize("observation", ["text", "last_action"])
@pytest.mark.parametrize("observe_verdicts", [False, True])
def test_checkers_pass_on_replay_ids(packs, env_id, observation, observe_verdicts):
    env = gym.make(env_id, pack=packs["keep"], observation=observation, observe_verdicts=observe_verdicts)
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)


def test_seed_splits_and_max_steps(packs):
    env = TeaMsInstructReplayEnv(pack=packs["keep"], seeds="train", max_steps=1, action_type="discrete")
    assert env.observation_space.shape == (384 + 7 + 1 + 1,)  # one step: action and verdict; progress; length
    assert set(env.seed_ids) | set(env.pack.split("heldout")) == set(env.pack.split("all"))
    env.reset(seed=0)
    *_, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_missing_pack_is_a_one_line_error_saying_how_to_record(tmp_path):
    with pytest.raises(PackError) as error:
        gym.make("TeaMsInstructReplay-v0", pack=tmp_path / "nowhere")
    assert "teams-rl record" in _one_line(error)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_steps": 3}, "depth 2"),
        ({"encoder": "hashing:64"}, "encoder"),
        ({"on_failure": "revert"}, "on_failure"),
        ({"leak_penalty": 0.5}, "leak_penalty"),
        ({"seeds": ["seed-nope"]}, "seed-nope"),
        ({"seeds": "validation"}, "split"),
    ],
)
def test_settings_the_pack_cannot_serve_are_one_line_errors(packs, kwargs, words):
    with pytest.raises(PackError) as error:
        TeaMsInstructReplayEnv(pack=packs["keep"], **kwargs)
    message = _one_line(error)
    assert words in message and str(packs["keep"]) in message


def test_a_state_outside_the_pack_is_a_clear_error(packs):
    env = TeaMsInstructReplayEnv(pack=packs["keep"], action_type="discrete")
    with pytest.raises(PackError) as error:
        env.reset(options={"instruction": "Write a poem about rain."})
    assert "not a recorded seed" in _one_line(error)
    with pytest.raises(PackError) as error:
        env.pack.node(env.seed_ids[0], (0, 0, 0))
    assert "depth 2" in _one_line(error)


def test_replay_loads_no_llm(packs):
    code = (
        "import sys, gymnasium as gym, teams_env\n"
        f"env = gym.make('TeaMsInstructReplayDiscrete-v0', pack={str(packs['keep'])!r})\n"
        "env.reset(seed=0); env.step(0)\n"
        "loaded = [m for m in ('llama_cpp', 'transformers', 'teams_env.llm.service', 'teams_env.env') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- rewards ---------------------------------------------------------------------------


def _episode(env: TeaMsInstructReplayEnv, actions, seed: int = 0):
    _, info = env.reset(seed=seed)
    texts, rewards, infos = [info["instruction"]], [], []
    for action in actions:
        _, reward, _, _, info = env.step(action)
        texts.append(info["instruction"])
        rewards.append(reward)
        infos.append(info)
    return texts, rewards, infos


def _novelty(encoder, earlier, text) -> float:
    vectors = encoder.encode(earlier)
    return max(0.0, 1.0 - float(np.max(vectors @ encoder.encode([text])[0])))


def test_reviewer_novelty_and_product_rewards(packs):
    envs = {
        name: TeaMsInstructReplayEnv(pack=packs["keep"], action_type="discrete", reward=name)
        for name in ("reviewer", "novelty", "reviewer*novelty")
    }
    for actions in [(0, 1), (4, 4), (2, 5)]:
        texts, reviewer, infos = _episode(envs["reviewer"], actions)
        _, novelty, _ = _episode(envs["novelty"], actions)
        _, product, _ = _episode(envs["reviewer*novelty"], actions)
        assert reviewer == [1.0 if i["verdict"] == "Not Equal" and i["valid"] else 0.0 for i in infos]
        encoder = envs["novelty"].encoder
        expected = [_novelty(encoder, texts[: step + 1], texts[step + 1]) for step in range(len(actions))]
        np.testing.assert_allclose(novelty, expected, rtol=1e-6)
        assert all(0.0 < value <= 1.0 for value in novelty)
        np.testing.assert_allclose(product, np.multiply(reviewer, novelty), rtol=1e-6)


def test_novelty_reads_the_packs_embeddings_not_the_encoder(packs, monkeypatch):
    """Every rewrite's embedding is stored with the pack, so a novelty episode runs no encoder (the
    benchmark's novelty runs were an encoder call per new text before)."""
    env = TeaMsInstructReplayEnv(pack=packs["keep"], action_type="discrete", reward="novelty")
    encoder = env.encoder

    def no_encoding(texts):
        raise AssertionError(f"encoded {texts!r}")

    monkeypatch.setattr(env.encoder, "encode", no_encoding)
    texts, novelty, _ = _episode(env, (2, 5))
    monkeypatch.undo()
    expected = [_novelty(encoder, texts[: step + 1], texts[step + 1]) for step in range(2)]
    np.testing.assert_allclose(novelty, expected, atol=2e-3)  # the stored rows are float16


def test_novelty_is_zero_for_a_repeated_text(packs):
    from teams_env.replay.rewards import Episode, Transition, novelty_reward

    env = TeaMsInstructReplayEnv(pack=packs["keep"], action_type="discrete")
    step = Transition("s", 1, 0, "a", SEEDS[0], SEEDS[0], 1.0)
    assert novelty_reward(step, Episode("s", SEEDS[0], (), env.encoder)) == pytest.approx(0.0, abs=1e-6)


def test_a_callable_reward_sees_the_transition_and_the_episode(packs):
    seen = []

    def rubric(transition, episode) -> float:
        seen.append((transition.step, len(episode.transitions), episode.texts()[-1]))
        return 10.0 * transition.step + transition.action

    env = gym.make("TeaMsInstructReplayDiscrete-v0", pack=packs["keep"], reward_fn=rubric)
    texts, rewards, _ = _episode(env.unwrapped, (3, 5))
    assert rewards == [13.0, 25.0]
    assert seen == [(1, 0, texts[0]), (2, 1, texts[1])]


def test_bad_reward_options_are_one_line_errors(packs):
    with pytest.raises(ValueError, match="unknown reward 'diversity'"):
        TeaMsInstructReplayEnv(pack=packs["keep"], reward="diversity")
    with pytest.raises(ValueError, match="not both"):
        TeaMsInstructReplayEnv(pack=packs["keep"], reward="novelty", reward_fn=lambda t, e: 0.0)


class _Fixed(HashingEncoder):
    """Given unit vectors for given texts: rewards computed by hand."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        super().__init__(2)
        self.table = {text: np.asarray(v, np.float32) / np.linalg.norm(v) for text, v in vectors.items()}

    def _encode(self, texts):
        return np.stack([self.table[text] for text in texts])


def test_kept_vendi_gain_is_what_an_accepted_rewrite_adds_to_the_kept_sets_vendi():
    from teams_env.replay.rewards import Episode, Transition, kept_vendi_gain, novelty_reward

    # "b" is orthogonal to the start "a"; "c" is at 60 degrees to "a" (cosine 0.5).
    encoder = _Fixed({"a": [1, 0], "b": [0, 1], "c": [0.5, np.sqrt(0.75)]})

    def step(text: str, reward: float, number: int = 1) -> Transition:
        return Transition("s", number, 0, "a", text, text, reward)

    fresh = Episode("s", "a", (), encoder)
    assert kept_vendi_gain(step("b", 1.0), fresh) == pytest.approx(1.0)  # Vendi 1 -> 2
    assert kept_vendi_gain(step("a", 1.0), fresh) == pytest.approx(0.0, abs=1e-6)  # a copy adds nothing
    assert kept_vendi_gain(step("b", 0.0), fresh) == 0.0  # a failed step earns nothing
    # Eigenvalues of K/2 for cosine 0.5 are 0.75 and 0.25: Vendi exp(0.5623) = 1.7548.
    assert kept_vendi_gain(step("c", 1.0), fresh) == pytest.approx(0.7548, abs=1e-4)
    assert novelty_reward(step("c", 1.0), fresh) == pytest.approx(0.5, abs=1e-6)
    # With two kept texts an accepted copy of one lowers the set's Vendi (2 -> 1.89): it earns 0.
    two_kept = Episode("s", "a", (step("b", 1.0),), encoder)
    assert kept_vendi_gain(step("a", 1.0, 2), two_kept) == 0.0
    # A failed earlier rewrite is not in the kept set (novelty still compares with it).
    after_a_failure = Episode("s", "a", (step("b", 0.0),), encoder)
    assert kept_vendi_gain(step("b", 1.0, 2), after_a_failure) == pytest.approx(1.0)
    assert novelty_reward(step("b", 1.0, 2), after_a_failure) == pytest.approx(0.0, abs=1e-6)
