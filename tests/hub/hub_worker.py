"""Child processes for the hub tests (run as a script).

``loop URI``: commit forever (after the first commit, print "ready").
``commits URI TAG N``: wait for "go" on stdin, then make N commits, each
adding one file, retrying on HubConflict from the new head.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from l4demons.hub.base import HubConflict, open_hub


def loop(uri: str) -> None:
    hub = open_hub(uri)
    work = Path(tempfile.mkdtemp())
    i = 0
    while True:
        i += 1
        files = {}
        for name, size in (("model.pt", 1_500_000), ("training_state.pt", 300_000), ("metrics.jsonl", 200)):
            path = work / name
            path.write_bytes(os.urandom(size))
            files[name] = path
        hub.commit(files, f"Training cycle {i}", hub.head())
        if i == 1:
            print("ready", flush=True)


def commits(uri: str, tag: str, n: int) -> None:
    hub = open_hub(uri)
    work = Path(tempfile.mkdtemp())
    print("ready", flush=True)
    sys.stdin.readline()
    conflicts = 0
    for i in range(n):
        path = work / f"{tag}-{i}.txt"
        path.write_bytes(f"{tag} {i}\n".encode())
        while True:
            try:
                hub.commit({path.name: path}, f"{tag} commit {i}", hub.head())
                break
            except HubConflict:
                conflicts += 1
    print(f"done conflicts={conflicts}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "loop":
        loop(sys.argv[2])
    else:
        commits(sys.argv[2], sys.argv[3], int(sys.argv[4]))
