"""A stop sent to ``l4demons pretrain``'s whole process group: labelling keeps the hub, training commits.

The labelling processes and their teacher engines share the terminal's
process group with the CLI; a Ctrl-C or SIGTERM to the group must reach
only the parent, which ends them (see ``tests/lifecycle/test_stop_group.py``).
"""

import os
import signal

import pytest

from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE
from l4demons.pretrain import labels
from test_pgn import GAMES
from test_stop_group import head_loads, signal_group, start_group

TINY = ["--net", "tiny", "--elo-seconds", "0", "--batch-size", "8"]


@pytest.mark.skipif(not any(os.access(p, os.X_OK) for p in labels.STOCKFISH_PATHS), reason="needs stockfish")
def test_a_stop_to_the_group_while_labelling_keeps_the_last_commit(tmp_path):
    hub = tmp_path / "hub"
    proc = start_group(["pretrain", "--hub", str(hub), "--minutes", "2", "--nodes", "20", "--workers", "2", *TINY],
                       tmp_path)
    out = signal_group(proc, signal.SIGINT, when="labelling in")
    assert "the hub keeps commit" in out, out
    assert head_loads(hub) == INITIAL_MESSAGE and len(LocalHub(hub).history()) == 1


def test_a_stop_to_the_group_while_training_commits_the_warm_start(tmp_path):
    games = tmp_path / "games.pgn"
    games.write_text(GAMES * 30)
    hub = tmp_path / "hub"
    proc = start_group(["pretrain", "--hub", str(hub), "--pgn", str(games), "--positions", "300",
                        "--epochs", "100000", "--workers", "1", *TINY], tmp_path)
    signal_group(proc, signal.SIGTERM, when="warm start: training on")
    title = head_loads(hub)
    assert title.startswith("Warm start: ") and title.endswith("(interrupted)"), title
