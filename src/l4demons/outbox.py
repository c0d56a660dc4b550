"""Checkpoints the hub could not take yet.

When an upload still fails after the backend's retries (network down, the
Hub in trouble), the commit's files wait here, one outbox per hub, and go
up with the next successful commit of this run or at the start of the next
run. Written by copy-to-temp-then-rename, so a crash never leaves half an
outbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from l4demons.checkpoint import BEST_FILE, REPLAY_DIR

META = "pending.json"


class Outbox:
    def __init__(self, hub_uri: str) -> None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        self.path = Path(base) / "l4demons" / "outbox" / hashlib.sha256(hub_uri.encode()).hexdigest()[:16]

    def stash(self, files: dict[str, Path], message: str, parent: str | None, cycle: int) -> None:
        """Keep a commit's files until the hub takes them (replaces an older stash)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for name, src in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        (tmp / META).write_text(json.dumps({"message": message, "parent": parent, "cycle": cycle, "files": sorted(files)}))
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(tmp, self.path)

    def meta(self) -> dict | None:
        """``{message, parent, cycle, files}`` of the waiting commit, or None."""
        try:
            return json.loads((self.path / META).read_text())
        except (OSError, ValueError):
            return None

    def files(self) -> dict[str, Path]:
        """All files of the waiting commit."""
        meta = self.meta()
        if meta is None:
            return {}
        return {n: self.path / n for n in meta["files"] if (self.path / n).is_file()}

    def carried_files(self) -> dict[str, Path]:
        """What a newer commit must carry up: replay chunks and a best model never uploaded."""
        return {n: p for n, p in self.files().items() if n.startswith(REPLAY_DIR + "/") or n == BEST_FILE}

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
