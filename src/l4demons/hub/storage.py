"""Keeping a hub under a size: which stored contents to delete for good, and in what order.

Every commit of a training run adds weights, optimizer state and a replay
chunk, and history keeps them all, so a long run fills any quota (the
Hugging Face Hub's free private storage is 100 GB). The policy, shared by
both backends (:meth:`LocalHub.prune`, :meth:`HFHub.prune`):

1. Nothing happens while the hub is at or under the limit.
2. Candidates are stored contents (the Hub's LFS objects, the local hub's
   objects) that the head does not hold and that only ever were stored
   under a name the caller calls prunable (the lifecycle: ``optimizer.pt``
   and ``replay/*``, the heavy files no one rolls back to). ``model.pt``,
   ``model_best.pt`` and the training state are never candidates, so every
   commit's weights still download.
3. Candidates go oldest first, until the hub fits.
4. Still too big, and the user allowed it: the history is squashed into the
   head (one commit), and every content the head does not hold goes; this
   drops old ``model.pt`` versions, which is why it needs consent.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from l4demons.hub.base import PruneReport

logger = logging.getLogger("l4demons.hub")


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """One stored content of a hub."""

    oid: str
    """Its sha256 (hex)."""
    size: int
    """Bytes it takes."""
    names: frozenset[str]
    """The file names it was committed under, as far as the backend knows."""
    created_at: float
    """Unix time it was stored."""

    def label(self) -> str:
        return f"{sorted(self.names)[0] if self.names else '?'}@{self.oid[:8]}"


class PruneBackend(Protocol):
    """What a hub offers :func:`run_prune`."""

    def storage(self) -> int: ...

    def stored_objects(self) -> list[StoredObject]:
        """Every stored content, whoever references it."""

    def head_oids(self) -> set[str]:
        """Contents the head commit holds."""

    def delete_objects(self, objects: list[StoredObject]) -> None:
        """Delete these contents for good (older commits no longer hold them)."""

    def squash(self) -> None:
        """Make the head the only commit of the history."""


def plan_prune(objects: Iterable[StoredObject], keep: set[str], size: int, limit: int,
               prunable: Callable[[str], bool]) -> list[StoredObject]:
    """Candidates to delete, oldest first, just enough to reach ``limit`` (all of them if it cannot be reached)."""
    candidates = sorted(
        (o for o in objects if o.oid not in keep and o.names and all(prunable(n) for n in o.names)),
        key=lambda o: (o.created_at, o.oid),
    )
    plan: list[StoredObject] = []
    for obj in candidates:
        if size <= limit:
            break
        plan.append(obj)
        size -= obj.size
    return plan


def run_prune(hub: PruneBackend, uri: str, limit: int, prunable: Callable[[str], bool], squash: bool = False,
              dry_run: bool = False) -> PruneReport:
    """The policy of the module docstring on one hub."""
    before = hub.storage()
    if before <= limit:
        return PruneReport(before, before, limit)
    keep = hub.head_oids()
    objects = hub.stored_objects()
    plan = plan_prune(objects, keep, before, limit, prunable)
    deleted = [o.label() for o in plan]
    if dry_run:
        after = before - sum(o.size for o in plan)
        return PruneReport(before, after, limit, tuple(deleted))
    if plan:
        hub.delete_objects(plan)
        logger.info("[HUB] %s: deleted %d old optimizer states and replay chunks (%s) for good",
                    uri, len(plan), format_bytes(sum(o.size for o in plan)))
    after = hub.storage() if plan else before
    squashed = False
    if after > limit and squash:
        logger.warning("[HUB] %s holds %s, over its limit of %s: squashing its history into the head "
                       "(older model.pt versions go)", uri, format_bytes(after), format_bytes(limit))
        hub.squash()
        squashed = True
        keep = hub.head_oids()
        orphans = [o for o in hub.stored_objects() if o.oid not in keep]
        if orphans:
            hub.delete_objects(orphans)
            deleted += [o.label() for o in orphans]
        after = hub.storage()
    if after > limit:
        logger.warning("[HUB] %s holds %s, over its limit of %s, with nothing left to prune but model.pt history%s",
                       uri, format_bytes(after), format_bytes(limit),
                       "" if squash else " (allow --squash-history, or raise --max-repo-gb)")
    return PruneReport(before, after, limit, tuple(deleted), squashed)


def format_bytes(n: int | float) -> str:
    """``1.5 GB``-style sizes for log lines (powers of 1000, as the Hub counts)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
