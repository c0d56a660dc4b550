"""Checkpoints the hub could not take yet.

When an upload still fails after the backend's retries (network down, the
Hub in trouble, a token that cannot write), the commit's files wait here,
one outbox per hub, as a queue: each cycle that could not go up is one
entry, oldest first. The entries go up in order, each on the commit of the
one before, with the next commit of this run or at the start of the next
run; a run that starts while entries wait continues from the newest one, so
no cycle is trained twice or lost.

Commits are paced (see :mod:`l4demons.lifecycle.commit`), so cycles also
wait here on purpose, and the entries go up folded into one commit: the
newest entry's checkpoint with every entry's replay chunk. Only the newest
checkpoint ever goes up, so stashing an entry drops from the older ones the
files it supersedes (:meth:`Outbox.supersede`).

Every entry is written into a temporary folder (each file through
:func:`l4demons.atomic.atomic_write`, so it is whole and on disk) and the
folder is renamed into place, its ``pending.json`` written last, so a crash
never leaves half an entry. The outbox lives under ``$L4D_OUTBOX`` if set (a
Modal volume, so that a retried container finds it), else under the user's
cache folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from l4demons.atomic import atomic_write

META = "pending.json"
_TMP = ".tmp-"


@dataclasses.dataclass(frozen=True)
class Pending:
    """One commit waiting on disk."""

    path: Path
    """Its folder in the outbox."""
    message: str
    """The commit message, as it will be uploaded."""
    parent: str | None
    """The hub commit the run had reached when this one could not go up."""
    cycle: int
    """The training cycle it holds."""
    files: dict[str, Path]
    """Hub file name -> local copy."""


class Outbox:
    def __init__(self, hub_uri: str) -> None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = Path(os.environ.get("L4D_OUTBOX") or Path(base) / "l4demons" / "outbox")
        self.path = root / hashlib.sha256(hub_uri.encode()).hexdigest()[:16]
        """The outbox folder of this hub on this machine."""

    def stash(self, files: dict[str, Path], message: str, parent: str | None, cycle: int) -> Pending:
        """Queue a commit's files (copied) behind the entries already waiting."""
        self.path.mkdir(parents=True, exist_ok=True)
        entries = self.entries()
        number = int(entries[-1].path.name) + 1 if entries else 1
        tmp = self.path / f"{_TMP}{number:06d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, src in files.items():  # each file whole and on disk before the entry appears
            atomic_write(tmp / name, Path(src).read_bytes())
        meta = {"message": message, "parent": parent, "cycle": cycle, "files": sorted(files)}
        atomic_write(tmp / META, json.dumps(meta))
        final = self.path / f"{number:06d}"
        os.replace(tmp, final)
        return self._read(final)  # type: ignore[return-value]

    def supersede(self, newest: Pending) -> None:
        """Drop from the older entries every file ``newest`` holds, but replay chunks.

        Only the newest checkpoint of the waiting cycles goes up (folded),
        while every entry's replay chunk and message are kept. ``newest`` is
        complete on disk before anything older is touched.
        """
        replaced = {n for n in newest.files if not n.startswith("replay/")}
        for entry in self.entries():
            if entry.path != newest.path:
                for name in replaced & set(entry.files):
                    entry.files[name].unlink(missing_ok=True)

    def entries(self) -> list[Pending]:
        """The waiting commits, oldest first (complete entries only)."""
        try:
            names = sorted(n for n in os.listdir(self.path) if n.isdigit())
        except FileNotFoundError:
            return []
        found = (self._read(self.path / n) for n in names)
        return [p for p in found if p is not None]

    def __bool__(self) -> bool:
        return bool(self.entries())

    def remove(self, entry: Pending) -> None:
        """Forget an entry the hub has taken."""
        shutil.rmtree(entry.path, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @staticmethod
    def _read(folder: Path) -> Pending | None:
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = {n: folder / n for n in meta["files"] if (folder / n).is_file()}
        return Pending(folder, meta["message"], meta.get("parent"), int(meta.get("cycle", 0)), files)
