"""Transition packs and the recorder on the scripted backend: the format, its one-line errors,
batching, resuming an interrupted recording and deepening a finished one."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from teams_env.llm.scripted import ScriptedBackend
from teams_env.replay.pack import MANIFEST_FILE, NODES_FILE, PackError, load_pack
from teams_env.replay.recording import JOURNAL_FILE, record
from teams_rl.cli import main

SEEDS = ("Explain why the sky is blue.", "List three uses of vinegar.")


@pytest.fixture
def seeds_file(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(f'{{"instruction": "{text}"}}\n' for text in SEEDS), encoding="utf-8")
    return path


def _record(out: Path, seeds_file: Path, backend: ScriptedBackend | None = None, **kwargs) -> Path:
    options = {"depth": 2, "batch_size": 10, "progress": False, "encoder": "hashing", "cache": None}
    options.update(kwargs)
    return record(out, expert=backend or ScriptedBackend(), seeds=str(seeds_file), **options)


class Interrupting(ScriptedBackend):
    """Stops the recording (as Ctrl-C would) at its ``after``-th rewrite batch."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def generate(self, conversations, params):
        if len(self.batches["generate"]) + 1 >= self.after:
            raise KeyboardInterrupt
        return super().generate(conversations, params)


def test_pack_holds_every_node_with_its_fields_and_manifest(tmp_path, seeds_file):
    backend = ScriptedBackend()
    pack = load_pack(_record(tmp_path / "pack", seeds_file, backend))
    manifest = pack.manifest
    assert manifest["counts"] == {"nodes": 2 * (1 + 6 + 36), "transitions": 2 * 42, "per_depth": [2, 12, 72]}
    assert [seed["text"] for seed in manifest["seeds"]] == list(SEEDS)
    assert manifest["expert"] == manifest["reviewer"] == "scripted:scripted"
    assert manifest["encoder"] == "hashing:384" and manifest["depth"] == 2
    for key in ("prompts_sha256", "content_sha256", "decoding", "action_decoding", "machine", "recording"):
        assert manifest[key]
    assert manifest["resolved_reviewer_threshold"] is not None
    assert "gymnasium" in manifest["machine"]["versions"]
    node = pack.node(pack.seeds[0]["id"], (1, 2))
    assert node.instruction.startswith(pack.node(pack.seeds[0]["id"], (1,)).state)
    for field in ("verdict", "p_not_equal", "valid", "invalid_reason", "leaked_phrase"):
        assert field in node.info
    assert node.queries == {"expert": 1, "reviewer": 1}
    # Batched per depth across seeds: 12 rewrites at depth 1, then 72 in batches of at most 10.
    assert backend.batches["generate"] == [10, 2, *([10] * 7), 2]
    assert not (tmp_path / "pack" / JOURNAL_FILE).exists()


def test_an_interrupted_recording_resumes_where_it_stopped(tmp_path, seeds_file):
    whole = load_pack(_record(tmp_path / "whole", seeds_file))
    with pytest.raises(KeyboardInterrupt):
        _record(tmp_path / "cut", seeds_file, Interrupting(after=5))
    assert (tmp_path / "cut" / JOURNAL_FILE).is_file() and not (tmp_path / "cut" / MANIFEST_FILE).exists()
    # An interruption may cut the journal's last line short.
    with open(tmp_path / "cut" / JOURNAL_FILE, "a", encoding="utf-8") as handle:
        handle.write('{"node": {"seed_id": "seed-')
    backend = ScriptedBackend()
    resumed = load_pack(_record(tmp_path / "cut", seeds_file, backend))
    # Four batches were done before: 10 and 2 at depth 1, then 10 and 10 at depth 2.
    assert sum(backend.batches["generate"]) == 84 - (10 + 2 + 10 + 10)
    assert resumed.manifest["content_sha256"] == whole.manifest["content_sha256"]


def test_a_deeper_recording_adds_only_the_new_depth(tmp_path, seeds_file):
    _record(tmp_path / "pack", seeds_file, depth=1)
    backend = ScriptedBackend()
    deeper = load_pack(_record(tmp_path / "pack", seeds_file, backend, depth=2))
    assert sum(backend.batches["generate"]) == 72
    assert (
        deeper.manifest["content_sha256"]
        == load_pack(_record(tmp_path / "fresh", seeds_file)).manifest["content_sha256"]
    )


def test_an_interrupted_deepening_resumes_too(tmp_path, seeds_file):
    _record(tmp_path / "pack", seeds_file, depth=1)
    with pytest.raises(KeyboardInterrupt):
        _record(tmp_path / "pack", seeds_file, Interrupting(after=2), depth=2)
    backend = ScriptedBackend()
    deeper = load_pack(_record(tmp_path / "pack", seeds_file, backend, depth=2))
    assert sum(backend.batches["generate"]) == 72 - 10
    fresh = load_pack(_record(tmp_path / "fresh", seeds_file))
    assert deeper.manifest["content_sha256"] == fresh.manifest["content_sha256"]


def test_other_settings_never_mix_into_a_pack(tmp_path, seeds_file):
    _record(tmp_path / "pack", seeds_file, depth=1)
    with pytest.raises(PackError, match=r"other settings \(on_failure\)"):
        _record(tmp_path / "pack", seeds_file, on_failure="keep")
    with pytest.raises(KeyboardInterrupt):
        _record(tmp_path / "cut", seeds_file, Interrupting(after=2))
    with pytest.raises(
        PackError, match=r"journal.jsonl: recorded with other settings \(encoder, encoder_dim\)"
    ):
        _record(tmp_path / "cut", seeds_file, encoder="hashing:64")


def _one_line(error: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


def test_missing_or_corrupt_packs_are_one_line_errors_naming_the_file(tmp_path, seeds_file):
    with pytest.raises(PackError) as error:
        load_pack(tmp_path / "nothing")
    assert "nothing: transition pack not found" in _one_line(error)
    pack = _record(tmp_path / "pack", seeds_file, depth=1)
    nodes = (pack / NODES_FILE).read_bytes()

    (pack / NODES_FILE).write_bytes(nodes[: len(nodes) // 2])
    with pytest.raises(PackError) as error:
        load_pack(pack)
    assert f"{pack / NODES_FILE}: corrupt nodes file" in _one_line(error)

    lines = gzip.decompress(nodes).decode().splitlines(keepends=True)
    (pack / NODES_FILE).write_bytes(gzip.compress("".join(lines[:-1]).replace("vinegar", "salt").encode()))
    with pytest.raises(PackError) as error:
        load_pack(pack)
    assert "content hash does not match" in _one_line(error)

    (pack / NODES_FILE).write_bytes(nodes)
    manifest = json.loads((pack / MANIFEST_FILE).read_text())
    (pack / MANIFEST_FILE).write_text(json.dumps(manifest)[:-5])
    with pytest.raises(PackError) as error:
        load_pack(pack)
    assert f"{pack / MANIFEST_FILE}: not a teams-rl transition pack manifest (invalid JSON" in _one_line(
        error
    )

    (pack / MANIFEST_FILE).unlink()
    with pytest.raises(PackError) as error:
        load_pack(pack)
    assert "manifest.json: not found" in _one_line(error)


def test_a_pack_missing_nodes_is_refused(tmp_path, seeds_file):
    from teams_env.replay.pack import write_pack

    pack = load_pack(_record(tmp_path / "pack", seeds_file, depth=1))
    manifest = {k: v for k, v in pack.manifest.items() if k not in ("counts", "content_sha256")}
    write_pack(tmp_path / "short", manifest, list(pack.nodes.values())[:-1])
    with pytest.raises(PackError, match="13 nodes, but 2 seeds to depth 1 with 6 actions need 14"):
        load_pack(tmp_path / "short")


def test_record_command(tmp_path, seeds_file, capsys):
    out = tmp_path / "pack"
    argv = ["record", "--expert", "scripted", "--encoder", "hashing", "--cache", "none"]
    argv += ["--seeds", str(seeds_file), "--depth", "1", "--out", str(out)]
    assert main(argv) == 0
    assert f"{out}: 14 nodes, 2 seeds, depth 1" in capsys.readouterr().out
    assert main([*argv[:-2]]) == 2
    assert "--out PACK is required" in capsys.readouterr().err
    assert main([*argv, "--max-steps", "2"]) == 2
    assert "--max-steps does not apply to a recording: use --depth" in capsys.readouterr().err
