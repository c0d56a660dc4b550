"""One repository's folder in the Hugging Face cache, as :class:`HFHub` uses it for offline starts.

The layout is the HF client's own (``blobs/``, ``snapshots/<commit>/<file>``
linking to a blob, ``refs/main``), so ``hf_hub_download`` finds what is
written here like anything it downloaded. Besides the client's downloads,
the commits this machine makes are put here as snapshots (blobs named by
their sha256, which :meth:`HFHub._check` verifies like an LFS ETag), and
``refs/main`` names the newest commit this machine made or downloaded from:
the commit an offline start resumes from.

Every write is best effort and atomic (temporary name, then ``os.replace``):
a cache that cannot be written only costs the offline start its newest
commits.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Collection
from pathlib import Path

from l4demons.hub.base import sha256_file, short_id

logger = logging.getLogger("l4demons.hub.hf")

_SHA1 = re.compile(r"[0-9a-f]{40}")


class RepoCache:
    """The cache folder of one repository (``<cache>/models--owner--repo``)."""

    def __init__(self, storage: Path, keep_own: int = 2) -> None:
        self.storage = storage
        self.keep_own = keep_own
        """Snapshots of its own commits kept: the newest (offline start) and its parent (merge base)."""
        self._own: list[str] = []

    def head(self) -> str | None:
        """``refs/main``: the newest commit this machine made or downloaded from, if any."""
        try:
            text = (self.storage / "refs" / "main").read_text(encoding="ascii").strip()
        except OSError:
            return None
        return text if _SHA1.fullmatch(text) else None

    def remember_head(self, commit_id: str) -> None:
        """Point ``refs/main`` at ``commit_id``."""
        refs = self.storage / "refs"
        try:
            refs.mkdir(parents=True, exist_ok=True)
            tmp = refs / f".main.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            tmp.write_text(commit_id, encoding="ascii")
            os.replace(tmp, refs / "main")
        except OSError as err:
            logger.warning("[HF] could not record the cached head in %s: %s", refs, err)

    def add_commit(self, commit_id: str, parent: str | None, sources: dict[str, Path],
                   dropped: Collection[str] = ()) -> None:
        """Make ``commit_id`` a snapshot, as if downloaded: its new files, and the parent's cached ones bar ``dropped``.

        Then ``refs/main`` points at it, and the snapshots of this object's
        older commits (all but the newest ``keep_own``) are dropped: a
        trainer commits every cycle, and the cache must not keep every
        cycle's weights and optimizer state.
        """
        snapshot = self.storage / "snapshots" / commit_id
        try:
            old = self.storage / "snapshots" / parent if parent is not None else None
            if old is not None and old.is_dir():
                for entry in old.rglob("*"):
                    name = entry.relative_to(old).as_posix()
                    if name not in sources and name not in dropped and entry.is_file():
                        _link(Path(os.path.realpath(entry)), snapshot / name)
            blobs = self.storage / "blobs"
            blobs.mkdir(parents=True, exist_ok=True)
            for name, src in sources.items():
                blob = blobs / sha256_file(src)[0]
                if not blob.is_file() or blob.stat().st_size != src.stat().st_size:
                    tmp = blobs / f".{blob.name}.{os.getpid()}.{secrets.token_hex(4)}.incomplete"
                    shutil.copyfile(src, tmp)
                    os.replace(tmp, blob)
                _link(blob, snapshot / name)
        except OSError as err:
            logger.warning("[HF] could not cache commit %s for offline starts: %s", short_id(commit_id), err)
            return
        self.remember_head(commit_id)
        self._own.append(commit_id)
        self._prune()

    def _prune(self) -> None:
        """Drop this object's older snapshots, and the blobs only they linked to."""
        old, self._own = self._own[: -self.keep_own], self._own[-self.keep_own :]
        self._drop([self.storage / "snapshots" / commit_id for commit_id in old])

    def trim(self, keep: int = 2) -> int:
        """Keep the snapshot of ``refs/main`` and the newest others, ``keep`` in all; drop the rest and stale parts.

        For a cache that outlives its runs (a Modal volume): every resumed
        commit's downloads would otherwise stay. Returns the bytes freed.
        """
        snapshots = self.storage / "snapshots"
        try:
            folders = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return 0
        head = self.head()
        folders.sort(key=lambda p: p.name != head)  # stable: the head first, then newest first
        freed = self._drop(folders[keep:])
        for part in (self.storage / "blobs").glob("*.incomplete"):  # downloads cut short
            freed += _unlink(part)
        return freed

    def _drop(self, folders: list[Path]) -> int:
        """Remove snapshot folders and the blobs no remaining snapshot links to (best effort: another
        process may share the cache). Returns the bytes freed."""
        snapshots = self.storage / "snapshots"
        candidates: set[str] = set()
        try:
            for folder in folders:
                candidates.update(os.path.realpath(p) for p in folder.rglob("*") if p.is_symlink())
                shutil.rmtree(folder, ignore_errors=True)
            if not candidates:
                return 0
            used = {os.path.realpath(p) for p in snapshots.rglob("*") if p.is_symlink()}
        except OSError as err:
            logger.debug("[HF] cache clean-up of %s stopped: %s", self.storage, err)
            return 0
        return sum(_unlink(Path(blob)) for blob in candidates - used)


def trim_cache(hub_cache: Path, keep: int = 2) -> int:
    """:meth:`RepoCache.trim` on every model repository of an HF hub cache folder; the bytes freed."""
    try:
        repos = [p for p in hub_cache.iterdir() if p.name.startswith("models--")]
    except OSError:
        return 0
    return sum(RepoCache(p).trim(keep) for p in repos)


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except OSError:
        return 0
    return size


def _link(blob: Path, pointer: Path) -> None:
    """``pointer`` -> ``blob`` as the HF cache links them (relative symlink; a copy where links fail)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), tmp)
    except OSError:
        shutil.copyfile(blob, tmp)
    os.replace(tmp, pointer)
