"""The checkpoint hub: what every backend promises.

A hub is a linear history of commits, each a complete set of files
(``model.pt``, ``training_state.pt``, ``replay.npz``, ``metrics.jsonl``,
maybe ``model_best.pt``). Backends: :mod:`l4demons.hub.local` (a directory,
the zero-set-up default) and :mod:`l4demons.hub.hf` (the Hugging Face Hub).

Concurrency rule (docs/lifecycle.md, "Several trainers at once"): every commit
names the head it started from (``parent``). If the hub's head moved in
between, the backend raises :class:`HubConflict` and writes nothing; the
caller pulls the new head, merges and retries. Files a commit does not name
are carried over from the parent commit, so a cycle uploads only what
changed.

Downloads are verified (size and sha256 where the backend knows them) and
land in a local cache by write-to-temp-then-rename, so a reader never sees
half a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol, runtime_checkable


class HubError(Exception):
    """Base class of hub failures; the message says what to do."""


class HubConflict(HubError):
    """The hub's head is not the commit this upload started from."""

    def __init__(self, message: str, head: str | None = None) -> None:
        super().__init__(message)
        self.head = head
        """The head the hub holds now, when the backend knows it."""


class HubNotFound(HubError, FileNotFoundError):
    """The repository, revision or file does not exist."""


class HubAuthError(HubError, PermissionError):
    """The token is missing or lacks the access the operation needs."""


class HubUnavailable(HubError, ConnectionError):
    """The hub cannot be reached (network down, a transfer or server error after retries, a rate limit)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the hub asked to be left alone (HTTP 429/503 ``Retry-After``), when it said."""


class CorruptFile(HubError, ValueError):
    """A downloaded file failed its size/hash check or does not load."""


@dataclasses.dataclass(frozen=True)
class CommitInfo:
    """One commit of the hub's history."""

    id: str
    """Opaque commit id (hex); what ``parent`` and ``revision`` take."""
    message: str
    """The commit title, e.g. ``"Training cycle 3, Elo ~120, Loss 4.21"``."""
    parent: str | None
    """The commit this one was made on top of; None for the first."""
    created_at: float
    """Unix time of the commit."""
    files: tuple[str, ...] = ()
    """Names of the files the commit holds (after carrying over)."""


@dataclasses.dataclass(frozen=True)
class PruneReport:
    """What :meth:`Hub.prune` found and did."""

    size_before: int
    """Bytes the hub held before (all of history, as the hub counts its storage)."""
    size_after: int
    """Bytes it holds now."""
    limit: int
    """The size asked for, in bytes."""
    deleted: tuple[str, ...] = ()
    """What was deleted for good, as ``name@sha256-prefix``, oldest first."""
    squashed: bool = False
    """Whether the history was squashed into one commit (old ``model.pt`` versions dropped)."""

    @property
    def within(self) -> bool:
        """Whether the hub is now at or under the limit."""
        return self.size_after <= self.limit


@runtime_checkable
class Hub(Protocol):
    """A checkpoint hub. Implementations: LocalHub, HFHub."""

    uri: str
    """How the user names this hub (a path, or ``hf://owner/repo``)."""

    def head(self) -> str | None:
        """The newest commit id, or None when the hub holds no commit."""

    def download(self, filename: str, revision: str | None = None) -> Path | None:
        """A verified local copy of ``filename`` at ``revision`` (default head).

        Returns None when the file is not in that commit.

        :raises HubNotFound: the revision does not exist.
        :raises CorruptFile: the file failed verification.
        """

    def commit(
        self, files: dict[str, Path], message: str, parent: str | None, delete: Collection[str] = ()
    ) -> CommitInfo:
        """Make one commit holding ``files`` (name -> local path) on top of ``parent``.

        Files of the parent commit not named here are carried over, except
        those named in ``delete`` (names the parent does not hold are ignored).

        :raises HubConflict: the head is no longer ``parent``; nothing was written.
        """

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        """Commits, newest first."""

    def list_files(self, revision: str | None = None) -> list[str]:
        """File names of a commit (default head); empty on an empty hub."""

    def rollback(self, revision: str, parent: str | None = None) -> CommitInfo:
        """A new commit whose files are exactly those of ``revision``.

        History is never rewritten.
        """

    def storage(self) -> int:
        """Bytes the hub holds, all of history included (what a storage quota counts)."""

    def prune(
        self, limit: int, prunable: Callable[[str], bool], squash: bool = False, dry_run: bool = False
    ) -> PruneReport:
        """Bring the hub under ``limit`` bytes by deleting old contents for good.

        Deleted, oldest first, until the hub fits: contents of files whose name
        ``prunable`` accepts and that the head does not hold (their older
        commits then no longer hold them). Everything else stays, so every
        commit's ``model.pt`` still downloads. With ``squash`` (and the hub
        still too big), the history is squashed into the head as one commit
        and what only older commits held is deleted too.
        """


def default_local_hub_path() -> Path:
    """The local hub used when neither ``--hub`` nor ``L4D_HUB`` is given."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "l4demons" / "hub"


def resolve_hub_uri(uri: str | None) -> str:
    """``--hub`` if given, else ``L4D_HUB``, else the default local hub path."""
    return uri or os.environ.get("L4D_HUB") or str(default_local_hub_path())


def open_hub(uri: str | None = None, *, token: str | None = None) -> Hub:
    """Open the hub a user named: ``hf://owner/repo`` or a local directory.

    :raises HubError: the hub cannot be opened (message says why).
    """
    uri = resolve_hub_uri(uri)
    if uri.startswith("hf://"):
        from l4demons.hub.hf import HFHub

        return HFHub(uri, token=token)
    from l4demons.hub.local import LocalHub

    return LocalHub(uri)


# ---------------------------------------------------------------------------
# Helpers shared by the backends (additions; the protocol above is unchanged).

_HASH_CHUNK = 1 << 20


def short_id(commit_id: str) -> str:
    """The first 8 hex digits of a commit id, as printed in log lines."""
    return commit_id[:8]


def rollback_message(revision: str, original_message: str) -> str:
    """The message of the commit :meth:`Hub.rollback` makes."""
    return f"Rollback to {short_id(revision)}: {original_message}"


def validate_filename(name: str) -> str:
    """Check a file name used inside a hub commit and return it.

    Names are relative POSIX paths (``model.pt``, ``replay/000123.npz``): no
    leading ``/``, no ``..`` or empty parts, no backslashes.

    :raises ValueError: the name cannot be stored in a hub.
    """
    parts = name.split("/")
    if not name or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"Invalid hub file name {name!r}: use a relative path like 'model.pt' or 'replay/0001.npz'.")
    return name


def check_local_files(files: dict[str, Path]) -> dict[str, Path]:
    """Validate the ``files`` argument of :meth:`Hub.commit`: names, and sources that exist.

    :raises ValueError: a name is invalid.
    :raises FileNotFoundError: a local source file is missing.
    """
    checked: dict[str, Path] = {}
    for name, src in files.items():
        validate_filename(name)
        src = Path(src)
        if not src.is_file():
            raise FileNotFoundError(f"Cannot commit {name!r}: local file {src} does not exist.")
        checked[name] = src
    return checked


def sha256_file(path: Path) -> tuple[str, int]:
    """``(sha256 hex digest, size in bytes)`` of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
