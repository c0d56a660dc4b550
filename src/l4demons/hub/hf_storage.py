"""Storage of a Hugging Face repository: its size, and pruning it (mixed into :class:`HFHub`).

The size is the repository's ``usedStorage`` as the Hub reports it (all of
history). Pruning follows :mod:`l4demons.hub.storage`: the LFS objects
(``list_lfs_files``) that the head does not hold and that were stored under
a prunable name are deleted for good (``permanently_delete_lfs_files``,
rewriting history so that older commits no longer point at them: their
commit ids change, which other trainers see as a moved head and merge).
Squashing uses the Hub's ``super_squash_history``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from l4demons.hub.base import PruneReport
from l4demons.hub.hf_errors import RepoMissing
from l4demons.hub.storage import StoredObject, run_prune

if TYPE_CHECKING:
    from huggingface_hub import HfApi

logger = logging.getLogger("l4demons.hub.hf")


class HFStorageMixin:
    """Size and pruning of the repository of an :class:`HFHub`."""

    uri: str
    repo_id: str
    _api: HfApi

    def storage(self) -> int:
        """Bytes the repository holds, all of history (the Hub's ``usedStorage``); 0 when it does not exist."""
        try:
            info = self._call("read the repository size",
                              lambda: self._api.model_info(self.repo_id, expand=["usedStorage"]))
        except RepoMissing:
            return 0
        return int(info.used_storage or 0)

    def prune(self, limit: int, prunable: Callable[[str], bool], squash: bool = False,
              dry_run: bool = False) -> PruneReport:
        """Bring the repository under ``limit`` bytes (see :mod:`l4demons.hub.storage`)."""
        return run_prune(self, self.uri, limit, prunable, squash=squash, dry_run=dry_run)

    def stored_objects(self) -> list[StoredObject]:
        """Every LFS object of the repository, whatever commit holds it."""
        items = self._call("list LFS files", lambda: list(self._api.list_lfs_files(self.repo_id)))
        return [StoredObject(i.file_oid, int(i.size), frozenset([i.filename]) if i.filename else frozenset(),
                             i.pushed_at.timestamp()) for i in items]

    def head_oids(self) -> set[str]:
        """sha256 of the LFS files the head holds."""
        return {f.sha256 for f in self._files(None).values() if f.sha256}

    def delete_objects(self, objects: list[StoredObject]) -> None:
        """Delete LFS objects for good; history is rewritten so no commit points at them."""
        wanted = {o.oid for o in objects}
        items = self._call("list LFS files", lambda: list(self._api.list_lfs_files(self.repo_id)))
        doomed = [i for i in items if i.file_oid in wanted]
        self._call("delete LFS files", lambda: self._api.permanently_delete_lfs_files(
            self.repo_id, doomed, rewrite_history=True))
        self._files_of.clear()

    def squash(self) -> None:
        """The Hub's super-squash of ``main``: the head becomes the only commit."""
        self._call("squash the history", lambda: self._api.super_squash_history(
            self.repo_id, branch="main", commit_message="Squashed history (l4demons prune)"))
        self._files_of.clear()
