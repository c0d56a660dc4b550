"""``l4demons pretrain`` end to end on a local hub: commits like a cycle, bad input commits nothing."""

import torch

from l4demons.checkpoint import BEST_FILE, MODEL_FILE, STATE_FILE, TrainingState
from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE
from train_cli import FAST, ok, one_line_error, run_here

from test_pgn import GAMES

TINY = ["--net", "tiny", "--elo-seconds", "0", "--batch-size", "8", "--workers", "1"]


def titles(hub_dir):
    return [c.message.splitlines()[0] for c in reversed(LocalHub(hub_dir).history())] if hub_dir.exists() else []


def test_a_pgn_warm_start_commits_once_and_self_play_continues_from_it(tmp_path, monkeypatch, capsys):
    games = tmp_path / "games.pgn"
    games.write_text(GAMES * 30)
    hub = tmp_path / "hub"
    out = ok(run_here(["pretrain", "--hub", str(hub), "--pgn", str(games), "--positions", "300", *TINY],
                      tmp_path, monkeypatch, capsys))
    assert "warm start" in out
    first = titles(hub)
    assert first[0] == INITIAL_MESSAGE and first[1].startswith("Warm start: ") and "from games.pgn" in first[1]
    assert len(first) == 2
    h = LocalHub(hub)
    warm_head = h.head()
    assert BEST_FILE in h.list_files(warm_head)
    warm = torch.load(h.download(MODEL_FILE, warm_head), weights_only=False)
    initial = torch.load(h.download(MODEL_FILE, h.history()[-1].id), weights_only=False)
    key = next(k for k, v in warm["state_dict"].items() if v.is_floating_point() and "running" not in k)
    assert not torch.equal(warm["state_dict"][key], initial["state_dict"][key])
    warm_state = TrainingState.load(h.download(STATE_FILE, warm_head))
    assert warm_state.cycle == 1 and any("-warm-" in n for n in warm_state.replay_chunks)

    ok(run_here(["train", "--hub", str(hub), "--cycles", "1", "--games", "2", "--steps", "3",
                *[a for a in FAST if a not in ("--net", "tiny")]], tmp_path, monkeypatch, capsys))
    after = titles(hub)
    assert len(after) == 3 and after[2].startswith("Training cycle 2,")
    state = TrainingState.load(h.download(STATE_FILE, h.head()))
    assert any("-warm-" in n for n in state.replay_chunks)  # the labelled positions stay in the window


def test_bad_input_is_one_line_and_commits_nothing(tmp_path, monkeypatch, capsys):
    """In this process: each error is reported before any training, so no child is needed to see it."""
    hub = tmp_path / "hub"

    def error(*args: str) -> str:
        return one_line_error(run_here(["pretrain", "--hub", str(hub), *args, *TINY], tmp_path, monkeypatch, capsys))

    junk = tmp_path / "notes.pgn"
    junk.write_bytes(b"\x00 not chess at all\n" * 20)
    assert "no PGN game" in error("--pgn", str(junk))
    assert "teacher engine" in error("--teacher", str(tmp_path / "sf"))
    crashing = tmp_path / "crash.sh"
    crashing.write_text("#!/bin/sh\nexit 3\n")
    crashing.chmod(0o755)
    assert "UCI engine" in error("--teacher", str(crashing))
    assert "minutes" in error("--minutes", "0.2")
    assert titles(hub) == []
