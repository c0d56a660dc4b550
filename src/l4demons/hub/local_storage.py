"""Storage of a local hub: its size, and pruning it (mixed into :class:`LocalHub`).

The size is what ``objects/`` and ``commits/`` take on disk. Pruning follows
:mod:`l4demons.hub.storage`. A pruned object is deleted and its sha256 is
listed in ``pruned.json``; commit records are never rewritten (their ids are
hashes of them), but every read leaves out the files whose contents were
pruned, so an older commit reads as if it never held them, as on the
Hugging Face Hub. Squashing writes the head's files as a new first commit
and drops the older records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from l4demons.hub.base import PruneReport
from l4demons.hub.storage import StoredObject, run_prune

PRUNED = "pruned.json"


class LocalStorageMixin:
    """Size and pruning of a :class:`LocalHub`."""

    path: Path
    uri: str

    def storage(self) -> int:
        """Bytes of the hub's objects and commit records."""
        total = 0
        for folder in (self.path / "objects", self.path / "commits"):
            try:
                with os.scandir(folder) as entries:
                    total += sum(e.stat().st_size for e in entries if e.is_file())
            except FileNotFoundError:
                continue
        return total

    def prune(self, limit: int, prunable: Callable[[str], bool], squash: bool = False,
              dry_run: bool = False) -> PruneReport:
        """Bring the hub under ``limit`` bytes (see :mod:`l4demons.hub.storage`)."""
        with self._locked():
            return run_prune(self, self.uri, limit, prunable, squash=squash, dry_run=dry_run)

    def stored_objects(self) -> list[StoredObject]:
        """Every object in ``objects/``, with the names commit records give it."""
        names: dict[str, set[str]] = {}
        first: dict[str, float] = {}
        for record in self._all_records():
            for name, entry in record["files"].items():
                names.setdefault(entry["sha256"], set()).add(name)
                first[entry["sha256"]] = min(first.get(entry["sha256"], record["created_at"]), record["created_at"])
        out = []
        try:
            with os.scandir(self.path / "objects") as entries:
                for entry in entries:
                    if entry.is_file() and not entry.name.startswith("."):
                        stat = entry.stat()
                        used = names.get(entry.name, set())  # none: only squashed-away commits named it
                        out.append(StoredObject(entry.name, stat.st_size, frozenset(used),
                                                first.get(entry.name, stat.st_mtime)))
        except FileNotFoundError:
            pass
        return out

    def head_oids(self) -> set[str]:
        head = self.head()
        return {e["sha256"] for e in self._read_record(head)["files"].values()} if head else set()

    def delete_objects(self, objects: list[StoredObject]) -> None:
        """List the objects as pruned (first: reads stop naming them), then delete them."""
        pruned = self.pruned() | {o.oid for o in objects}
        self._write_pruned(pruned)
        for obj in objects:
            (self.path / "objects" / obj.oid).unlink(missing_ok=True)

    def squash(self) -> None:
        """The head's files as the only commit, message kept; older records go."""
        head = self.head()
        if head is None:
            return
        record = self._read_record(head)
        info = self._write_commit(dict(record["files"]), f"{record['message']}\n\n(squashed history)", None)
        for name in os.listdir(self.path / "commits"):
            if name.endswith(".json") and name != f"{info.id}.json":
                (self.path / "commits" / name).unlink(missing_ok=True)

    def pruned(self) -> set[str]:
        """sha256 of the objects pruned for good."""
        try:
            return set(json.loads((self.path / PRUNED).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return set()

    def _all_records(self) -> list[dict]:
        out = []
        try:
            names = os.listdir(self.path / "commits")
        except FileNotFoundError:
            return out
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                out.append(self._read_record(name[:-5]))
        return out

    def _write_pruned(self, pruned: set[str]) -> None:
        from l4demons.hub.local import _atomic_write

        payload = json.dumps(sorted(pruned), indent=0).encode("utf-8")
        _atomic_write(self.path / PRUNED, payload)
