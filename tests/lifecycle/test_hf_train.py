"""The training lifecycle through the real CLI on the Hugging Face Hub (the fake one, on loopback)."""

from __future__ import annotations

import signal

import pytest

from l4demons.checkpoint import BEST_FILE
from l4demons.lifecycle import INITIAL_MESSAGE
from l4demons.modelcard import CARD_FILE

from train_cli import (CYCLE_MESSAGE, FAST, FAST_RESUME, REPO, RESUMING, URI, hf_env, load_files, ok, one_line_error,
                       run_here, start_cli, wait_for_line)

pytestmark = pytest.mark.slow

def test_train_twice_history_and_rollback(fake, tmp_path, monkeypatch, capsys):
    env = hf_env(fake, tmp_path)
    first = ok(run_here(["train", "--hub", URI, "--cycles", "2", "--games", "10", "--steps", "3", *FAST],
                        tmp_path, monkeypatch, capsys, env=env))
    assert "[HF] creating private repository test/bot" in first and fake.repos[REPO].private
    assert "empty hub" in first and "future runs will fine-tune" in first
    assert "HTTP Request" not in first

    # The second run names the hub through L4D_HUB instead of --hub.
    second = ok(run_here(["train", "--cycles", "2", "--games", "2", "--steps", "3", *FAST_RESUME],
                         tmp_path, monkeypatch, capsys,
                        env={**env, "L4D_HUB": URI}))
    head = fake.repos[REPO].main
    m = RESUMING.search(second)
    assert m and m.group(2) == "2", second
    assert "[TRAIN] cycle 3: self-play" in second and "[TRAIN] cycle 4: self-play" in second

    commits = fake.history(REPO)
    assert [c.title for c in commits[:2]] == ["initial commit", INITIAL_MESSAGE]
    cycles = [int(CYCLE_MESSAGE.match(c.title).group(1)) for c in commits[2:]]
    assert cycles == [1, 2, 3, 4]
    assert m.group(1) == commits[3].id[:8]  # resumed from cycle 2's commit
    # Cycle 1 has the first validation loss, the best ever: model_best.pt in the same commit, said in the description.
    assert BEST_FILE in commits[2].files and commits[2].description.startswith("Best model - cycle 1, loss=")
    assert "\n" not in commits[2].title
    for before, c in zip(commits[1:], commits[2:]):  # a new best is the played net (the average with --ema-steps)
        assert (c.description.startswith("Best model - cycle ")) == (c.files.get(BEST_FILE) != before.files.get(BEST_FILE))
    state = load_files(fake, head, tmp_path)
    assert state.cycle == 4 and state.learner["step"] == 12 and state.games == 24

    card = fake.repos[REPO].commits[head].files[CARD_FILE].decode()
    assert card.startswith("---\n") and "# L4Demons chess network" in card and "## Configuration" in card
    for cycle in range(1, 5):
        assert f"\n| {cycle} |" in card
    assert "- cycles: 4" in card

    history = ok(run_here(["history", "--hub", URI], tmp_path, monkeypatch, capsys, env=env))
    for cycle in range(1, 5):
        assert f"Training cycle {cycle}, Elo ~" in history
    assert INITIAL_MESSAGE in history and "Best model" not in history  # titles only, one line each

    cycle2 = commits[3]
    rolled = ok(run_here(["rollback", cycle2.id[:10], "--hub", URI], tmp_path, monkeypatch, capsys, env=env))
    assert f"Rollback to {cycle2.id[:8]}" in rolled
    new_head = fake.repos[REPO].commits[fake.repos[REPO].main]
    assert new_head.parent == head and new_head.title.startswith(f"Rollback to {cycle2.id[:8]}: Training cycle 2,")
    assert new_head.files == cycle2.files
    resumed = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME],
                          tmp_path, monkeypatch, capsys, env=env))
    m = RESUMING.search(resumed)
    assert m and m.group(1) == new_head.id[:8] and m.group(2) == "2", resumed

    # The errors, in this process (the same environment; no process needed to report them).
    for missing in ("deadbeef", "0" * 40):
        line = one_line_error(run_here(["rollback", missing, "--hub", URI], tmp_path, monkeypatch, capsys, env=env))
        assert missing in line and "l4demons history" in line
    assert fake.repos[REPO].main == new_head.id
    line = one_line_error(run_here(["rollback", "deadbeef", "--hub", "hf://test/missing"], tmp_path, monkeypatch,
                                   capsys, env=env))
    assert "test/missing" in line and "not found" in line
    line = one_line_error(run_here(["train", "--hub", URI, "--cycles", "1", "--net", "small"], tmp_path, monkeypatch,
                                   capsys, env=env))
    assert "holds b2c32" in line  # weights of another architecture
    assert fake.repos[REPO].main == new_head.id


@pytest.mark.parametrize("phase,args,ready", [
    ("self-play", ["--games", "500", "--steps", "3"], "cycle 1: self-play"),
    ("backprop", ["--games", "2", "--steps", "1000000"], "cycle 1: 2 games"),
])
def test_sigint_commits_and_exits_zero(fake, tmp_path, phase, args, ready, monkeypatch, capsys):
    env = hf_env(fake, tmp_path)
    ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST],
                tmp_path, monkeypatch, capsys, env=env))  # initial commit
    proc = start_cli(["train", "--hub", URI, "--cycles", "1", *args, *FAST_RESUME], tmp_path, env=env)
    seen: list[str] = []
    wait_for_line(proc, ready, seen)
    proc.send_signal(signal.SIGINT)
    out = "".join(seen) + proc.stdout.read()
    assert proc.wait(timeout=120) == 0, out
    head = fake.repos[REPO].commits[fake.repos[REPO].main]
    assert CYCLE_MESSAGE.match(head.title) and "(interrupted)" in head.title, out
    assert "SIGINT received" in out and f"-> commit {head.id[:8]}" in out
    load_files(fake, head.id, tmp_path)


def test_missing_or_invalid_token_is_one_line(fake, tmp_path, monkeypatch, capsys):
    def error(args: list[str], token: str | None) -> str:  # in this process: the token is read at each call
        return one_line_error(run_here(args, tmp_path, monkeypatch, capsys, env=hf_env(fake, tmp_path, token=token)))

    line = error(["train", "--hub", URI, "--cycles", "0", *FAST], None)
    assert "no Hugging Face token" in line and "HF_TOKEN" in line and "401" in line
    line = error(["history", "--hub", URI], "hf_bogus")
    assert "HF_TOKEN" in line and "401" in line
    line = error(["train", "--hub", URI, "--cycles", "0", *FAST], "hf_bogus")
    assert "HF_TOKEN" in line and "401" in line
    assert REPO not in fake.repos


def test_read_only_token_keeps_the_cycle_for_a_token_that_can_write(fake, tmp_path, monkeypatch, capsys):
    ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST], tmp_path, monkeypatch, capsys,
                env=hf_env(fake, tmp_path, machine="w")))
    head = fake.repos[REPO].main
    reader = hf_env(fake, tmp_path, machine="r", token="hf_read")
    line = one_line_error(run_here(["train", "--hub", URI, "--cycles", "1", "--games", "2", "--steps", "2",
                                   *FAST_RESUME], tmp_path, monkeypatch, capsys, env=reader))
    assert "write access" in line and "403" in line and "Cycle 1 stays on disk" in line
    assert fake.repos[REPO].main == head
    # The same machine with a token that can write: the waiting cycle goes up first, as it was.
    writer = dict(reader, HF_TOKEN="hf_write")
    out = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME],
                      tmp_path, monkeypatch, capsys, env=writer))
    assert "continuing from cycle 1, left on disk" in out and "(left on disk until now)" in out
    new_head = fake.repos[REPO].commits[fake.repos[REPO].main]
    assert new_head.parent == head and CYCLE_MESSAGE.match(new_head.title).group(1) == "1"
    load_files(fake, new_head.id, tmp_path)
