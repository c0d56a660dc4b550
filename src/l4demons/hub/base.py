"""The checkpoint hub: what every backend promises.

A hub is a linear history of commits, each a complete set of files
(``model.pt``, ``training_state.pt``, ``replay.npz``, ``metrics.jsonl``,
maybe ``model_best.pt``). Backends: :mod:`l4demons.hub.local` (a directory,
the zero-set-up default) and :mod:`l4demons.hub.hf` (the Hugging Face Hub).

Concurrency rule (lifecycle.md, "Several machines at once"): every commit
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
import os
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
    """The hub cannot be reached (network down, server error after retries)."""


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

    def commit(self, files: dict[str, Path], message: str, parent: str | None) -> CommitInfo:
        """Make one commit holding ``files`` (name -> local path) on top of ``parent``.

        Files of the parent commit not named here are carried over.

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
