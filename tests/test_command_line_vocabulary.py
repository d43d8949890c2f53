"""One vocabulary, one set of dynamics and honest errors across the command line: each test here
failed on the behaviour a new user met before (bad seed lines dropped silently, ``--pack default``
working in one command only, a pack-trained policy evaluated and generating under other dynamics,
counts inflated by a resume, variants run unasked, audit and bench disagreeing, models loaded
before a misspelled option was noticed)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from scripted_packs import record_topic_pack

from teams_env.llm.scripted import ScriptedBackend, scripted_reply
from teams_env.replay.pack import SHIPPED_PACKS, load_pack
from teams_rl.agents.benchmark.pack import ceilings
from teams_rl.agents.benchmark.reward_audit import audit_pack
from teams_rl.agents.benchmark.roster import bench_agents
from teams_rl.agents.commands import GenerateConfig, TrainConfig
from teams_rl.agents.generation.generate import generate
from teams_rl.agents.training.train import train
from teams_rl.cli import build_parser, main

SCRIPTED = ["--expert", "scripted", "--encoder", "hashing", "--cache", "none", "--reviewer-threshold", "0.5"]
SMALL_PACK = Path(__file__).parent / "data" / "packs" / "small"


def _seed_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"instrution": "Describe a lighthouse."}', "no 'instruction' text field"),
        ('{"instruction": "x",}', "invalid JSON"),
    ],
)
def test_a_bad_seed_line_stops_generate_naming_file_and_line(tmp_path, capsys, bad_line, reason):
    seeds = _seed_file(tmp_path, '{"instruction": "List three uses of salt."}', bad_line)
    out = tmp_path / "out"
    code = main(["generate", *SCRIPTED, "--seeds", str(seeds), "--out", str(out)])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert error[0].startswith(f"teams-rl generate: error: {seeds}:2: {reason}")
    assert "--skip-bad-lines" in error[0]
    assert not out.exists()  # checked before any folder is made


def test_skip_bad_lines_goes_on_and_says_how_many(tmp_path, caplog):
    seeds = _seed_file(
        tmp_path,
        '{"instruction": "List three uses of salt."}',
        '{"instrution": "typo"}',
        '{"instruction": "Describe a lighthouse."}',
    )
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="teams_rl.agents.generation.generate"):
        assert (
            main(["generate", *SCRIPTED, "--seeds", str(seeds), "--out", str(out), "--skip-bad-lines"]) == 0
        )
    assert any("skipped 1 bad line(s) (no_instruction 1)" in record.message for record in caplog.records)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "seeds: 2 of 2 done; seed-file lines skipped: no_instruction 1" in card


def test_random_seeds_given_as_seed_instructions_are_refused(capsys):
    assert main(["train", "--seeds", "0,1"]) == 2
    assert "looks like random seeds" in capsys.readouterr().err
    assert main(["train", "--pack", "default", "--seeds", "my.jsonl"]) == 2
    assert "a pack brings its own seed instructions" in capsys.readouterr().err


def test_a_bad_option_is_reported_before_any_model_loads(tmp_path, monkeypatch, capsys):
    import teams_env.llm.registry as registry

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(registry, "make_backend", no_model)
    out = tmp_path / "out"
    assert main(["generate", "--policy", "unifrom", "--out", str(out)]) == 2
    assert "policy 'unifrom' is not a run directory" in capsys.readouterr().err
    assert main(["generate", "--seeds", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert "missing.jsonl: seed file not found" in capsys.readouterr().err
    assert main(["evaluate-policy", "--policy", "fixed:breadth,sideways"]) == 2
    assert "a sequence or priority order needs names from" in capsys.readouterr().err
    assert main(["bench", "--pack", "nowhere", "--out", str(out)]) == 2
    assert "--pack: nowhere: transition pack not found" in capsys.readouterr().err
    assert not out.exists()


# -- one vocabulary ---------------------------------------------------------------------------


def _config(argv: list[str]):
    from teams_rl.cli import _load
    from teams_rl.flags import resolve

    args = build_parser().parse_args(argv)
    return resolve(_load(args._command.config), args, None)


@pytest.mark.parametrize(
    "argv", [["train", "--pack", "default"], ["bench", "--pack", "default"], ["audit", "default"]]
)
def test_pack_default_is_the_shipped_pack_in_every_command(argv):
    config = _config(argv)
    assert config.pack == "default"
    assert load_pack(config.pack).directory == SHIPPED_PACKS / "default"


def test_seeds_names_seed_instructions_in_bench_too():
    config = _config(["bench", "--seeds", "bundled", "--run-seeds", "0,1"])
    assert (config.seeds, config.run_seeds) == ("bundled", [0, 1])
    assert config.env_kwargs()["seeds"] == "bundled"


def test_bench_runs_exactly_the_agents_named():
    config = _config(["bench", "--algos", "trpo,ppo"])
    assert [agent.name for agent in bench_agents(config)] == ["trpo", "ppo"]
    named = replace(config, variants=["discrete"])
    assert [agent.name for agent in bench_agents(named)] == ["trpo", "ppo", "trpo/discrete"]


def test_audit_and_bench_choose_the_same_best_fixed_sequence():
    audit = audit_pack(load_pack(SMALL_PACK), reward="reviewer", samples=0)
    bench = ceilings(str(SMALL_PACK), "reviewer")
    assert audit["ceilings"]["split"] == "train"
    assert audit["ceilings"]["best_fixed"] == bench["train"]["best_fixed_sequence"]
    assert audit["ceilings"]["best_fixed_return"] == pytest.approx(bench["train"]["best_fixed"])


def test_audit_says_where_it_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["audit", str(SMALL_PACK), "--samples", "1"]) == 0
    assert f"wrote audit.md and audit.json to {tmp_path / 'audit'}" in capsys.readouterr().out


# -- one set of dynamics ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keep_pack_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy trained on a pack recorded with on_failure=keep (not the commands' default)."""
    pack = record_topic_pack(tmp_path_factory, on_failure="keep")
    config = TrainConfig(
        pack=str(pack),
        cache="none",
        total_timesteps=48,
        n_envs=4,
        out=str(tmp_path_factory.mktemp("runs")),
        run_name="keep",
        progress_bar=False,
    )
    return train(config)


def test_a_pack_run_records_the_dynamics_it_trained_with(keep_pack_run):
    import yaml

    saved = yaml.safe_load((keep_pack_run / "config.yaml").read_text())
    assert (saved["on_failure"], saved["max_steps"]) == ("keep", 2)


def test_evaluation_and_generation_use_the_runs_dynamics_and_say_so(keep_pack_run, tmp_path, capsys):
    seeds = _seed_file(tmp_path, '{"instruction": "Write a recipe for bean soup."}')
    report = tmp_path / "eval.json"
    common = ["--expert", "scripted", "--cache", "none", "--seeds", str(seeds)]
    assert main(["evaluate-policy", "--policy", str(keep_pack_run), *common, "--output", str(report)]) == 0
    said = f"dynamics: on_failure=keep, max_steps=2 (those {keep_pack_run} was trained with)"
    assert said in capsys.readouterr().out
    evaluation = json.loads(report.read_text())
    assert evaluation["settings"] == {"on_failure": "keep", "max_steps": 2, "deterministic": False}
    assert all(len(episode["actions"]) == 2 for episode in evaluation["per_episode"])

    out = tmp_path / "data"
    assert main(["generate", "--policy", str(keep_pack_run), *common, "--out", str(out)]) == 0
    assert said in capsys.readouterr().out
    manifest = json.loads((out / "generation.json").read_text())
    assert (manifest["env"]["on_failure"], manifest["env"]["max_steps"]) == ("keep", "2")
    assert manifest["deterministic"] is False


def test_evaluation_and_generation_decode_the_policy_alike():
    evaluate, generation = (
        _config(["evaluate-policy", "--policy", "uniform"]),
        _config(["generate", "--out", "x"]),
    )
    assert evaluate.deterministic == generation.deterministic
    assert evaluate.on_failure == generation.on_failure == _config(["train"]).on_failure == "revert"


def test_a_policy_this_machine_trained_loads_without_the_pickle_warning(
    keep_pack_run, tmp_path, monkeypatch, caplog
):
    from teams_rl.agents.policy import load_model

    model = keep_pack_run / "final_model.zip"
    with caplog.at_level(logging.WARNING, logger="teams_rl.agents.policy"):
        load_model("trpo", model)
    assert not any("pickled" in record.message for record in caplog.records)
    monkeypatch.setenv("TEAMS_RL_CACHE", str(tmp_path / "elsewhere" / "cache.sqlite"))  # another machine
    with caplog.at_level(logging.WARNING, logger="teams_rl.agents.policy"):
        load_model("trpo", model)
    assert any("pickled" in record.message for record in caplog.records)


# -- honest counts and readable output --------------------------------------------------------


def test_queries_per_kept_item_are_the_same_after_an_interrupted_run_resumes(tmp_path):
    def options(name: str) -> GenerateConfig:
        return GenerateConfig(
            out=str(tmp_path / name / "out"),
            expert="scripted",
            encoder="hashing",
            cache=str(tmp_path / name / "cache.sqlite"),
            limit=8,
            n_envs=4,
            reviewer_threshold=0.5,
        )

    whole = json.loads((generate(options("whole")) / "stats.json").read_text())

    answered = {"count": 0}

    def answer_then_stop(conversation):
        answered["count"] += 1
        if answered["count"] > 20:  # in the second batch's answers, after its rewrites were cached
            raise KeyboardInterrupt
        return scripted_reply(conversation)

    with pytest.raises(KeyboardInterrupt):
        generate(options("cut"), responder=ScriptedBackend(reply=answer_then_stop))
    resumed = json.loads((generate(options("cut")) / "stats.json").read_text())
    assert resumed["runs"] == 2 and resumed["kept"] == whole["kept"]
    assert resumed["queries"]["expert"]["cache_hits"] > 0  # the rerun's repeats, reported apart
    assert resumed["requests_needed"] == whole["requests_needed"]
    assert resumed["expert_queries_per_kept_item"] == pytest.approx(whole["expert_queries_per_kept_item"])


def test_rollout_shows_each_steps_reward_and_why_it_was_not_paid():
    import gymnasium as gym

    import teams_env  # noqa: F401
    from teams_env.reward.reviewer import EQUAL

    def always_equal(conversation, choices):
        return [0.0 if choice == EQUAL else -5.0 for choice in choices]

    lines = []
    for backend in (ScriptedBackend(), ScriptedBackend(score=always_equal)):
        env = gym.make(
            "TeaMsInstructDiscrete-v0",
            expert=backend,
            encoder="hashing",
            cache=None,
            render_mode="ansi",
            reviewer_threshold=0.5,
            review_method="likelihood",
        )
        env.reset(seed=0, options={"instruction": "Describe a lighthouse."})
        env.step(2)
        lines.append(env.render().splitlines()[0])
    paid, unpaid = lines
    assert "deepening: reward 1; Not Equal" in paid
    assert "deepening: reward 0 (the reviewer found it Equal: no new information); Equal" in unpaid


def test_bench_prints_a_summary_and_the_reports_path(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = [
        "bench",
        *SCRIPTED,
        "--algos",
        "uniform,fixed",
        "--run-seeds",
        "0,1",
        "--eval-limit",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f"report: {out / 'benchmark.md'}")
    assert "![" not in printed and "## " not in printed  # the summary, not the Markdown report
    assert "n/a (< 5 runs)" in (out / "benchmark.md").read_text()
